"""SCAN: Symbol-Concept Association Network over a frozen beta-VAE (Higgins et al., ICLR 2018).

A beta-VAE (``beta_vae`` in this package, trained first and then frozen) gives the visual
posterior q(z_x | x). SCAN is a VAE over k-hot symbol vectors y whose latent space is tied
to the visual one. Its loss, minimised over SCAN's parameters only, is

    L = -E_{q(z_y|y)} log p(y | z_y)  +  beta * KL(q(z_y|y) || N(0, I))
        + lambda * KL(q(z_x|x) || q(z_y|y))                                      (SCAN eq. 2)

with Bernoulli p(y | z_y) and the *forward* KL from the visual posterior to the concept
posterior: averaged over all images that fit a symbol, it makes q(z_y | y) cover them, so
the concept posterior stays broad (prior-like) on the factors the symbol leaves
unspecified. Paper appendix: beta = 1, lambda = 10.

Inference both ways: symbol -> z_y ~ q(z_y|y) -> beta-VAE decoder -> images, and
image -> z_x = mean of q(z_x|x) -> SCAN decoder -> Bernoulli probabilities of the units.

Recombination (SCAN section 3): operators AND (union of the symbols' value sets),
IN COMMON (intersection) and IGNORE (difference) act on two concept posteriors. As in
the paper, the operator is a small network applied to every latent dimension with shared
weights (the paper's "conditional convolutional module"): it reads the two posteriors'
parameters (mu_1, log s_1^2, mu_2, log s_2^2) of that dimension together with the
operator's one-hot code r and outputs (mu_r, log s_r^2). It is trained, with SCAN frozen, by

    L_r = KL( q(z_r | z_y1, z_y2, r) || q(z_y | y_r) ),   y_r = y_1 op y_2 on the k-hot sets.

Symbols come from a dataset's ground-truth factors (:class:`SymbolVocabulary`): one unit
per (factor, value), optionally after binning a factor's values; a training symbol names
a random subset of the factor values of its image.

The beta-VAE_DAE variant (reconstruction in the feature space of a denoising AE) is not
implemented here; see docs/scan_eeg.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from disentangle import xla_options
from disentangle.errors import ConfigError
from disentangle.methods.base import Representation
from disentangle.methods.gaussian import kl_normal, kl_to_standard_normal
from disentangle.nn.mlp import MLP

OPERATORS = ("AND", "IN_COMMON", "IGNORE")


# ----------------------------------------------------------------------------- symbols
@dataclasses.dataclass(frozen=True)
class SymbolVocabulary:
    """The k-hot vocabulary: one unit per (factor, value) of the chosen factors.

    Attributes:
      factor_names: names of the vocabulary's factors (a subset of the dataset's).
      columns: column of each vocabulary factor in the dataset's factor array.
      factor_sizes: number of dataset values of each vocabulary factor.
      bins: number of symbol values of each factor (== factor_sizes unless binned);
        dataset value v of a factor of size S maps to symbol value floor(v * bins / S).
    """

    factor_names: tuple[str, ...]
    columns: tuple[int, ...]
    factor_sizes: tuple[int, ...]
    bins: tuple[int, ...]

    @classmethod
    def from_dataset(cls, dataset, factors: Sequence[str] | None = None,
                     bins: dict[str, int] | None = None) -> SymbolVocabulary:
        """Vocabulary over ``factors`` (default: all) of a ``GroundTruthData``."""
        names = tuple(dataset.factor_names)
        chosen = tuple(factors) if factors is not None else names
        for name in chosen:
            if name not in names:
                raise ConfigError(f"symbol factor {name!r} is not a factor of {dataset.name!r}; "
                                  f"accepted: {', '.join(names)}")
        bins = dict(bins or {})
        for name, b in bins.items():
            size = dataset.factor_sizes[names.index(name)] if name in names else None
            if name not in chosen or not (1 <= int(b) <= size):
                raise ConfigError(f"symbol bins {name}={b}: the factor must be one of "
                                  f"{chosen} and 1 <= bins <= its number of values")
        columns = tuple(names.index(n) for n in chosen)
        sizes = tuple(int(dataset.factor_sizes[c]) for c in columns)
        return cls(chosen, columns, sizes,
                   tuple(int(bins.get(n, s)) for n, s in zip(chosen, sizes)))

    @property
    def num_factors(self) -> int:
        return len(self.columns)

    @property
    def num_units(self) -> int:
        return int(sum(self.bins))

    @property
    def offsets(self) -> np.ndarray:
        """First unit of each factor, int [K_v]."""
        return np.concatenate([[0], np.cumsum(self.bins)[:-1]]).astype(np.int64)

    @property
    def unit_factor(self) -> np.ndarray:
        """The vocabulary factor each unit belongs to, int [num_units]."""
        return np.repeat(np.arange(self.num_factors), self.bins)

    def values(self, factors: np.ndarray) -> np.ndarray:
        """Dataset factors int [n, K] -> symbol values int [n, K_v] (binned)."""
        f = np.asarray(factors)[:, list(self.columns)]
        return (f * np.asarray(self.bins)) // np.asarray(self.factor_sizes)

    def khot(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """k-hot symbols float32 [n, num_units] naming value ``values[:, k]`` where mask."""
        values, mask = np.asarray(values), np.asarray(mask, bool)
        y = np.zeros((len(values), self.num_units), np.float32)
        rows, cols = np.nonzero(mask)
        y[rows, self.offsets[cols] + values[rows, cols]] = 1.0
        return y

    def random_masks(self, n: int, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
        """Which factors each symbol names: independent Bernoulli(p) per factor, bool [n, K_v]."""
        return rng.random((n, self.num_factors)) < p

    def symbols(self, factors: np.ndarray, rng: np.random.Generator, p: float = 0.5
                ) -> tuple[np.ndarray, np.ndarray]:
        """Training symbols for images with ``factors`` [n, K]: (k-hot [n, U], mask [n, K_v])."""
        mask = self.random_masks(len(factors), rng, p)
        return self.khot(self.values(factors), mask), mask

    def split_units(self, probs: np.ndarray) -> list[np.ndarray]:
        """Per-unit array [n, U] -> one [n, bins_k] block per factor."""
        return np.split(np.asarray(probs), np.cumsum(self.bins)[:-1], axis=-1)

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """Most probable value of each factor from unit probabilities [n, U] -> int [n, K_v]."""
        return np.stack([b.argmax(-1) for b in self.split_units(probs)], axis=1)

    def describe(self, y: np.ndarray) -> str:
        """A readable name of one k-hot symbol, e.g. '{shape=1, pos_x=3}'."""
        on = np.flatnonzero(np.asarray(y) > 0.5)
        uf, off = self.unit_factor, self.offsets
        return "{" + ", ".join(f"{self.factor_names[uf[u]]}={u - off[uf[u]]}" for u in on) + "}"


def set_operation(y1: jax.Array, y2: jax.Array, op: jax.Array) -> jax.Array:
    """k-hot result of AND (union), IN_COMMON (intersection), IGNORE (y1 minus y2).

    ``op`` int [n] indexes :data:`OPERATORS`; y1, y2 float [n, U] in {0, 1}.
    """
    xp = jnp if isinstance(y1, jax.Array) else np
    union = xp.maximum(y1, y2)
    common = y1 * y2
    ignore = y1 * (1.0 - y2)
    op = xp.asarray(op)[:, None]
    return xp.where(op == 0, union, xp.where(op == 1, common, ignore))


# ----------------------------------------------------------------------------- SCAN
def scan_objective(y: jax.Array, logits: jax.Array, mean_y: jax.Array, logvar_y: jax.Array,
                   mean_x: jax.Array, logvar_x: jax.Array, beta: float = 1.0,
                   lam: float = 10.0) -> tuple[jax.Array, dict[str, jax.Array]]:
    """SCAN's loss (eq. 2) for one Monte-Carlo sample z_y, averaged over the batch.

    Args:
      y: k-hot symbols [n, U]; logits: SCAN decoder output at z_y ~ q(z_y|y), [n, U].
      mean_y, logvar_y: concept posterior q(z_y|y), [n, L].
      mean_x, logvar_x: frozen visual posterior q(z_x|x) of the paired images, [n, L].
    Returns:
      (loss, terms) with the batch means of the three terms.
    """
    # -log p(y|z_y) = sum_u BCE(logits_u, y_u)
    reconstruction = jnp.sum(optax.sigmoid_binary_cross_entropy(logits, y), axis=-1)
    # KL(q(z_y|y) || N(0, I))
    kl_prior = jnp.sum(kl_to_standard_normal(mean_y, logvar_y), axis=-1)
    # KL(q(z_x|x) || q(z_y|y)): forward, visual -> concept
    kl_visual = jnp.sum(kl_normal(mean_x, logvar_x, mean_y, logvar_y), axis=-1)
    loss = jnp.mean(reconstruction + beta * kl_prior + lam * kl_visual)
    return loss, {"reconstruction": jnp.mean(reconstruction), "kl_prior": jnp.mean(kl_prior),
                  "kl_visual": jnp.mean(kl_visual)}


class SCAN(nnx.Module):
    """Symbol VAE: k-hot [n, U] -> q(z_y|y) over the beta-VAE's L latents -> Bernoulli logits.

    Encoder and decoder are MLPs (ReLU) with ``hidden`` units.
    """

    def __init__(self, num_units: int, latent_dim: int, hidden: Sequence[int] = (128, 128),
                 beta: float = 1.0, lam: float = 10.0, *, rngs: nnx.Rngs):
        self.num_units, self.latent_dim = int(num_units), int(latent_dim)
        self.beta, self.lam = float(beta), float(lam)
        self.encoder = MLP((num_units, *hidden, 2 * latent_dim), rngs=rngs)
        self.decoder = MLP((latent_dim, *hidden[::-1], num_units), rngs=rngs)

    def encode(self, y: jax.Array) -> Representation:
        mean, logvar = jnp.split(self.encoder(y), 2, axis=-1)
        return Representation(mean=mean, logvar=logvar)

    def decode(self, z: jax.Array) -> jax.Array:
        """Unit logits [n, U]."""
        return self.decoder(z)

    def symbol_probs(self, z_x: jax.Array) -> jax.Array:
        """image -> symbol: Bernoulli probabilities [n, U] at visual latents z_x [n, L]."""
        return jax.nn.sigmoid(self.decode(z_x))

    def loss(self, y: jax.Array, visual: Representation, key: jax.Array
             ) -> tuple[jax.Array, dict[str, jax.Array]]:
        rep = self.encode(y)
        logits = self.decode(rep.sample(key))
        return scan_objective(y, logits, rep.mean, rep.logvar, visual.mean, visual.logvar,
                              self.beta, self.lam)


def make_optimizer(model: nnx.Module, learning_rate: float = 1e-3) -> nnx.Optimizer:
    """SCAN's (and the recombiner's) own Adam optimizer."""
    return nnx.Optimizer(model, optax.adam(learning_rate), wrt=nnx.Param)


@xla_options.nnx_jit
def scan_train_step(scan: SCAN, optimizer: nnx.Optimizer, y: jax.Array, mean_x: jax.Array,
                    logvar_x: jax.Array, key: jax.Array) -> dict[str, jax.Array]:
    """One Adam step on SCAN's loss; the visual posterior is data (beta-VAE frozen)."""
    visual = Representation(jax.lax.stop_gradient(mean_x), jax.lax.stop_gradient(logvar_x))

    def loss_fn(model):
        return model.loss(y, visual, key)

    (loss, terms), grads = nnx.value_and_grad(loss_fn, has_aux=True)(scan)
    optimizer.update(scan, grads)
    return {"loss": loss, **terms}


def khot_device(vocab: SymbolVocabulary, values: jax.Array, mask: jax.Array) -> jax.Array:
    """Jit-traceable :meth:`SymbolVocabulary.khot`: int [n, K_v], bool [n, K_v] -> [n, U]."""
    units = jnp.asarray(vocab.offsets, jnp.int32) + values.astype(jnp.int32)
    return jnp.sum(jax.nn.one_hot(units, vocab.num_units) * mask[..., None], axis=1)


def run_training_chunks(model: nnx.Module, optimizer: nnx.Optimizer, body, steps: int,
                        key: jax.Array, chunk: int = 100) -> list[dict[str, float]]:
    """Run ``steps`` updates ``body(model, optimizer, key) -> terms`` as jitted lax.scan chunks.

    Returns the mean of the terms over each chunk, tagged with the chunk's last step.
    """
    graphdef, state = nnx.split((model, optimizer))

    @xla_options.jit
    def run(state, keys):
        def one(state, k):
            m, o = nnx.merge(graphdef, state)
            terms = body(m, o, k)
            return nnx.state((m, o)), terms

        return jax.lax.scan(one, state, keys)

    log, done = [], 0
    while done < steps:
        n = min(chunk, steps - done)
        keys = jax.random.split(jax.random.fold_in(key, done), n)
        state, terms = run(state, keys)
        done += n
        log.append({"step": done, **{k: float(jnp.mean(v)) for k, v in terms.items()}})
    nnx.update((model, optimizer), state)
    return log


def train_scan(scan: SCAN, vocab: SymbolVocabulary, values: np.ndarray, mean_x: np.ndarray,
               logvar_x: np.ndarray, steps: int, rng: np.random.Generator,
               batch_size: int = 128, learning_rate: float = 1e-3, p_name: float = 0.5,
               labelled: np.ndarray | None = None) -> list[dict[str, float]]:
    """Train SCAN on (symbol, visual posterior) pairs drawn from a fixed set of images.

    Args:
      values: symbol values of the images, int [N, K_v] (``vocab.values(factors)``).
      mean_x, logvar_x: their frozen visual posteriors, [N, L].
      p_name: probability that a symbol names each factor value of its image.
      labelled: optional bool [N, K_v]: which factor values may be named at all (sparse
        labels); unlabelled values are never named.
    Returns the mean loss terms of every chunk of 100 steps.
    """
    opt = make_optimizer(scan, learning_rate)
    values_d = jnp.asarray(values, jnp.int32)
    mean_d, logvar_d = jnp.asarray(mean_x), jnp.asarray(logvar_x)
    lab_d = jnp.ones(values.shape, bool) if labelled is None else jnp.asarray(labelled, bool)

    def body(model, optimizer, key):
        k_idx, k_mask, k_z = jax.random.split(key, 3)
        idx = jax.random.randint(k_idx, (batch_size,), 0, values_d.shape[0])
        mask = jax.random.bernoulli(k_mask, p_name, (batch_size, vocab.num_factors)) & lab_d[idx]
        y = khot_device(vocab, values_d[idx], mask)
        visual = Representation(mean_d[idx], logvar_d[idx])
        (loss, terms), grads = nnx.value_and_grad(
            lambda m: m.loss(y, visual, k_z), has_aux=True)(model)
        optimizer.update(model, grads)
        return {"loss": loss, **terms}

    return run_training_chunks(scan, opt, body, steps, jax.random.key(int(rng.integers(2**31))))


# ----------------------------------------------------------------------------- recombination
class Recombiner(nnx.Module):
    """The recombination operators as one per-dimension network conditioned on the operator.

    Per latent dimension d: [mu1_d, lv1_d, mu2_d, lv2_d, (mu1_d - mu2_d)^2, onehot(r)] -> MLP ->
    (mu_d, lv_d), the same weights for every d (a 1x1 convolution over the latent axis). The
    squared mean difference is a function of the four parameters given explicitly, so that
    "do the two concepts agree on this dimension" (what IN COMMON and IGNORE turn on) is one
    feature rather than something the small network must discover.
    """

    def __init__(self, hidden: int = 64, *, rngs: nnx.Rngs):
        self.net = MLP((5 + len(OPERATORS), hidden, hidden, 2), rngs=rngs)

    def __call__(self, a: Representation, b: Representation, op: jax.Array) -> Representation:
        """a, b: posteriors with mean/logvar [n, L]; op int [n] -> recombined posterior."""
        n, d = a.mean.shape
        feats = jnp.stack([a.mean, a.logvar, b.mean, b.logvar,
                           jnp.square(a.mean - b.mean)], axis=-1)  # [n, L, 5]
        r = jnp.broadcast_to(jax.nn.one_hot(op, len(OPERATORS))[:, None, :],
                             (n, d, len(OPERATORS)))
        out = self.net(jnp.concatenate([feats, r], axis=-1))  # [n, L, 2]
        return Representation(mean=out[..., 0], logvar=out[..., 1])


def recombination_loss(recombiner: Recombiner, scan: SCAN, y1: jax.Array, y2: jax.Array,
                       op: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_r = KL(q(z_r | z_y1, z_y2, r) || q(z_y | y1 op y2)), summed over L, batch mean."""
    target = scan.encode(set_operation(y1, y2, op))
    target = Representation(jax.lax.stop_gradient(target.mean),
                            jax.lax.stop_gradient(target.logvar))
    a, b = scan.encode(y1), scan.encode(y2)
    out = recombiner(a, b, op)
    kl = jnp.sum(kl_normal(out.mean, out.logvar, target.mean, target.logvar), axis=-1)
    per_op = {f"kl_{name.lower()}": jnp.sum(kl * (op == i)) / jnp.maximum(jnp.sum(op == i), 1)
              for i, name in enumerate(OPERATORS)}
    return jnp.mean(kl), per_op


@xla_options.nnx_jit
def recombiner_train_step(recombiner: Recombiner, optimizer: nnx.Optimizer, scan: SCAN,
                          y1: jax.Array, y2: jax.Array, op: jax.Array) -> dict[str, jax.Array]:
    """One Adam step of the recombiner with SCAN frozen (gradients w.r.t. the recombiner only)."""

    def loss_fn(model):
        return recombination_loss(model, scan, y1, y2, op)

    (loss, terms), grads = nnx.value_and_grad(loss_fn, has_aux=True)(recombiner)
    optimizer.update(recombiner, grads)
    return {"loss": loss, **terms}


def sample_recombination_batch(vocab: SymbolVocabulary, values_a: np.ndarray,
                               values_b: np.ndarray, rng: np.random.Generator,
                               p_name: float = 0.5, op: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbol pairs and operators whose results are valid symbols of some image.

    ``values_a`` are the symbol values of images A, ``values_b`` those of images B that share
    some values with A (e.g. A with a random subset of factors resampled). y1 names a subset of
    A's values; y2 names a subset of B's values; for AND, y2 names only factors y1 leaves
    unnamed, so the union describes an image. ``op`` (int [n]) is drawn uniformly unless
    given. Returns (y1, y2, op) with op int [n].
    """
    n = len(values_a)
    op = rng.integers(0, len(OPERATORS), n) if op is None else np.asarray(op)
    m1 = vocab.random_masks(n, rng, p_name)
    m2 = vocab.random_masks(n, rng, p_name)
    m2 = np.where((op == 0)[:, None], m2 & ~m1, m2)
    return vocab.khot(values_a, m1), vocab.khot(values_b, m2), op


def train_recombiner(recombiner: Recombiner, scan: SCAN, vocab: SymbolVocabulary,
                     values: np.ndarray, steps: int, rng: np.random.Generator,
                     batch_size: int = 128, learning_rate: float = 1e-3,
                     p_name: float = 0.5) -> list[dict[str, float]]:
    """Train the recombination operators on symbols of images with symbol ``values`` [N, K_v].

    Image B of each pair is image A with each factor taken from another image w.p. 1/2; the
    symbols follow :func:`sample_recombination_batch`. SCAN stays frozen.
    """
    opt = make_optimizer(recombiner, learning_rate)
    values_d = jnp.asarray(values, jnp.int32)
    k = vocab.num_factors
    scan_graph, scan_state = nnx.split(scan)

    def body(model, optimizer, key):
        ks = jax.random.split(key, 6)
        va = values_d[jax.random.randint(ks[0], (batch_size,), 0, values_d.shape[0])]
        other = values_d[jax.random.randint(ks[1], (batch_size,), 0, values_d.shape[0])]
        vb = jnp.where(jax.random.bernoulli(ks[2], 0.5, va.shape), va, other)
        op = jax.random.randint(ks[3], (batch_size,), 0, len(OPERATORS))
        m1 = jax.random.bernoulli(ks[4], p_name, (batch_size, k))
        m2 = jax.random.bernoulli(ks[5], p_name, (batch_size, k))
        m2 = jnp.where((op == 0)[:, None], m2 & ~m1, m2)
        y1, y2 = khot_device(vocab, va, m1), khot_device(vocab, vb, m2)
        frozen = nnx.merge(scan_graph, jax.lax.stop_gradient(scan_state))
        (loss, terms), grads = nnx.value_and_grad(
            lambda m: recombination_loss(m, frozen, y1, y2, op), has_aux=True)(model)
        optimizer.update(model, grads)
        return {"loss": loss, **terms}

    key = jax.random.key(int(rng.integers(2**31)))
    return run_training_chunks(recombiner, opt, body, steps, key)


__all__ = ["OPERATORS", "Recombiner", "SCAN", "SymbolVocabulary", "make_optimizer",
           "run_training_chunks",
           "recombination_loss", "recombiner_train_step", "sample_recombination_batch",
           "khot_device", "scan_objective", "scan_train_step", "set_operation",
           "train_recombiner",
           "train_scan"]
