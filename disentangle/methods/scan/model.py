"""SCAN: Symbol-Concept Association Network over a frozen beta-VAE (Higgins et al., ICLR 2018).

A beta-VAE run (``model.visual_run``, trained first with ``disentangle train`` and frozen)
gives the visual posterior q(z_x | x). SCAN is a VAE over k-hot symbol vectors y whose
latent space is tied to the visual one. Its loss, minimised over SCAN's parameters only, is

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

The registered method ``scan`` (:class:`SCAN`) trains both with the one trainer: parameter
groups ``scan`` (the symbol VAE) and ``recombiner``; steps 1..``model.scan_steps`` update
SCAN on ``scan_loss``, the remaining steps up to ``train.steps`` the recombiner on
``recombination_loss``. The visual model is a submodule in no group (frozen); its encoder
and decoder are the run's ``encode`` / ``decode``.

Symbols come from a batch's ground-truth factors (:class:`SymbolVocabulary`): one unit per
(factor, value), optionally after binning a factor's values; a training symbol names each
factor value of its image independently with probability ``p_name``. Sparse labels
(:class:`LabelMask`): a factor's label may be available for only a fraction of the values
of a grouping factor (e.g. of the participants); unavailable labels are never named.

The beta-VAE_DAE variant (reconstruction in the feature space of a denoising AE) is not
implemented here; see docs/scan_eeg.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from disentangle.errors import ConfigError
from disentangle.methods.base import (
    Batch,
    DataSpec,
    Method,
    Representation,
    Update,
    register_model,
)
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
    def from_names(cls, names: Sequence[str], sizes: Sequence[int],
                   factors: Sequence[str] | None = None, bins: dict[str, int] | None = None,
                   where: str = "symbol") -> SymbolVocabulary:
        """Vocabulary over ``factors`` (default: all) of a dataset with factor ``names`` and
        ``sizes``; ``where`` names the source in errors (e.g. ``model.symbols``)."""
        names = tuple(names)
        chosen = tuple(factors) if factors else names
        for name in chosen:
            if name not in names:
                raise ConfigError(f"{where} factor {name!r} is not a factor of the dataset; "
                                  f"accepted: {', '.join(names)}")
        bins = dict(bins or {})
        for name, b in bins.items():
            size = sizes[names.index(name)] if name in names else None
            if name not in chosen or not (1 <= int(b) <= size):
                raise ConfigError(f"{where} bins {name}={b}: the factor must be one of "
                                  f"{chosen} and 1 <= bins <= its number of values")
        columns = tuple(names.index(n) for n in chosen)
        sizes = tuple(int(sizes[c]) for c in columns)
        return cls(chosen, columns, sizes,
                   tuple(int(bins.get(n, s)) for n, s in zip(chosen, sizes)))

    @classmethod
    def from_dataset(cls, dataset, factors: Sequence[str] | None = None,
                     bins: dict[str, int] | None = None) -> SymbolVocabulary:
        """Vocabulary over ``factors`` (default: all) of a ``GroundTruthData``."""
        return cls.from_names(dataset.factor_names, dataset.factor_sizes, factors, bins)

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

    def values(self, factors):
        """Dataset factors int [n, K] -> symbol values int [n, K_v] (binned); numpy or jax."""
        xp = jnp if isinstance(factors, jax.Array) else np
        f = xp.asarray(factors)[:, list(self.columns)]
        return (f * xp.asarray(self.bins)) // xp.asarray(self.factor_sizes)

    def khot(self, values: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """k-hot symbols float32 [n, num_units] naming value ``values[:, k]`` where mask."""
        values, mask = np.asarray(values), np.asarray(mask, bool)
        y = np.zeros((len(values), self.num_units), np.float32)
        rows, cols = np.nonzero(mask)
        y[rows, self.offsets[cols] + values[rows, cols]] = 1.0
        return y

    def khot_device(self, values: jax.Array, mask: jax.Array) -> jax.Array:
        """Jit-traceable :meth:`khot`: int [n, K_v], bool [n, K_v] -> float [n, U]."""
        units = jnp.asarray(self.offsets, jnp.int32) + values.astype(jnp.int32)
        return jnp.sum(jax.nn.one_hot(units, self.num_units) * mask[..., None], axis=1)

    def random_masks(self, n: int, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
        """Which factors each symbol names: independent Bernoulli(p) per factor, bool [n, K_v]."""
        return rng.random((n, self.num_factors)) < p

    def split_units(self, probs: np.ndarray) -> list[np.ndarray]:
        """Per-unit array [n, U] -> one [n, bins_k] block per factor."""
        return np.split(np.asarray(probs), np.cumsum(self.bins)[:-1], axis=-1)

    def predict(self, probs: np.ndarray) -> np.ndarray:
        """Most probable value of each factor from unit probabilities [n, U] -> int [n, K_v]."""
        return np.stack([b.argmax(-1) for b in self.split_units(probs)], axis=1)

    def named(self, y: np.ndarray) -> np.ndarray:
        """Which factors the k-hot symbols [n, U] name, bool [n, K_v]."""
        return np.stack([b.max(1) > 0.5 for b in self.split_units(y)], axis=1)

    def describe(self, y: np.ndarray) -> str:
        """A readable name of one k-hot symbol, e.g. '{shape=1, pos_x=3}'."""
        on = np.flatnonzero(np.asarray(y) > 0.5)
        uf, off = self.unit_factor, self.offsets
        return "{" + ", ".join(f"{self.factor_names[uf[u]]}={u - off[uf[u]]}" for u in on) + "}"


@dataclasses.dataclass(frozen=True)
class LabelMask:
    """Sparse labels: the label of vocabulary factor k is available for a value g of the
    grouping factor (e.g. a participant) iff u(seed, k, g) < ``fraction``, u uniform on
    [0, 1) from ``fold_in(fold_in(key(seed), k), g)``; factors not in ``sparse`` are always
    available. ``group_column`` is the grouping factor's column in the dataset (-1: no
    sparse labels)."""

    sparse: tuple[int, ...] = ()
    group_column: int = -1
    fraction: float = 1.0
    seed: int = 0

    def available_for_groups(self, groups, num_factors: int) -> jax.Array:
        """bool [n, K_v]: availability of each vocabulary factor's label for groups int [n]."""
        groups = jnp.asarray(groups, jnp.int32)
        out = jnp.ones((groups.shape[0], num_factors), bool)
        for k in self.sparse:
            key = jax.random.fold_in(jax.random.key(self.seed), k)
            u = jax.vmap(lambda g, key=key: jax.random.uniform(jax.random.fold_in(key, g)))(groups)
            out = out.at[:, k].set(u < self.fraction)
        return out

    def available(self, factors: jax.Array, num_factors: int) -> jax.Array:
        """bool [n, K_v]: availability for the rows of dataset factors int [n, K]."""
        if self.group_column < 0:
            return jnp.ones((factors.shape[0], num_factors), bool)
        return self.available_for_groups(factors[:, self.group_column], num_factors)


def set_operation(y1, y2, op):
    """k-hot result of AND (union), IN_COMMON (intersection), IGNORE (y1 minus y2).

    ``op`` int [n] indexes :data:`OPERATORS`; y1, y2 float [n, U] in {0, 1} (numpy or jax).
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
    return loss, {"symbol_reconstruction": jnp.mean(reconstruction),
                  "kl_prior": jnp.mean(kl_prior), "kl_visual": jnp.mean(kl_visual)}


class SymbolVAE(nnx.Module):
    """SCAN's symbol VAE: k-hot [n, U] -> q(z_y|y) over the visual model's L latents ->
    Bernoulli logits [n, U]. Encoder and decoder are MLPs (ReLU) with ``hidden`` units."""

    def __init__(self, num_units: int, latent_dim: int, hidden: Sequence[int] = (128, 128), *,
                 rngs: nnx.Rngs):
        self.encoder = MLP((num_units, *hidden, 2 * latent_dim), rngs=rngs)
        self.decoder = MLP((latent_dim, *tuple(hidden)[::-1], num_units), rngs=rngs)

    def encode(self, y: jax.Array) -> Representation:
        mean, logvar = jnp.split(self.encoder(y), 2, axis=-1)
        return Representation(mean=mean, logvar=logvar)

    def decode(self, z: jax.Array) -> jax.Array:
        """Unit logits [n, U]."""
        return self.decoder(z)


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


def recombination_objective(recombiner: Recombiner, symbols: SymbolVAE, y1: jax.Array,
                            y2: jax.Array, op: jax.Array
                            ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """L_r = KL(q(z_r | z_y1, z_y2, r) || q(z_y | y1 op y2)), summed over L, batch mean;
    terms: the mean KL of each operator's rows."""
    target = symbols.encode(set_operation(y1, y2, op))
    target = jax.tree.map(jax.lax.stop_gradient, target)
    out = recombiner(symbols.encode(y1), symbols.encode(y2), op)
    kl = jnp.sum(kl_normal(out.mean, out.logvar, target.mean, target.logvar), axis=-1)
    per_op = {f"kl_{name.lower()}": jnp.sum(kl * (op == i)) / jnp.maximum(jnp.sum(op == i), 1)
              for i, name in enumerate(OPERATORS)}
    return jnp.mean(kl), per_op


def sample_recombination_batch(vocab: SymbolVocabulary, values_a: np.ndarray,
                               values_b: np.ndarray, rng: np.random.Generator,
                               p_name: float = 0.5, op: np.ndarray | None = None
                               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Symbol pairs and operators whose results are valid symbols of some image (numpy; the
    same draw as :meth:`SCAN.recombination_loss`).

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


# ----------------------------------------------------------------------------- the method
@register_model("scan")
class SCAN(Method):
    """beta-VAE + SCAN + recombination operators, trained by the one trainer in two stages.

    Submodules: ``visual`` (the frozen run's model, in no parameter group), ``symbols``
    (:class:`SymbolVAE`, group ``scan``) and ``recombiner`` (:class:`Recombiner`, group
    ``recombiner``). ``encode`` / ``decode`` are the visual model's.
    """

    def __init__(self, visual: Method, vocab: SymbolVocabulary, labels: LabelMask = LabelMask(),
                 *, scan_steps: int, p_name: float = 0.5, beta: float = 1.0, lam: float = 10.0,
                 hidden: Sequence[int] = (128, 128), recombiner_hidden: int = 64,
                 rngs: nnx.Rngs):
        self.visual = visual
        self.latent_dim = int(visual.latent_dim)
        self.reconstruction = getattr(visual, "reconstruction", "bernoulli")
        self.vocab, self.labels = vocab, labels
        self.scan_steps, self.p_name = int(scan_steps), float(p_name)
        self.beta, self.lam = float(beta), float(lam)
        self.symbols = SymbolVAE(vocab.num_units, self.latent_dim, tuple(hidden), rngs=rngs)
        self.recombiner = Recombiner(int(recombiner_hidden), rngs=rngs)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs):
        from disentangle.runs import load_run  # runs -> train -> methods: import here

        path = config.get("visual_run", "")
        if not path or not (Path(path) / "config.json").is_file():
            raise ConfigError(
                f"model.visual_run={path!r} is not a run directory (no config.json); train the "
                "beta-VAE first (e.g. `disentangle train configs/beta_vae_mlp_dsprites.py "
                "--workdir runs/bvae`) and pass model.visual_run=runs/bvae")
        visual = load_run(path)
        if tuple(visual.dataset.observation_shape) != tuple(spec.observation_shape):
            raise ConfigError(
                f"model.visual_run={path!r} was trained on observations of shape "
                f"{tuple(visual.dataset.observation_shape)}; this run's dataset has "
                f"{tuple(spec.observation_shape)}: use the visual run's dataset")
        if int(config.scan_steps) < 1:
            raise ConfigError(f"model.scan_steps={config.scan_steps}; accepted: an integer >= 1 "
                              "(SCAN updates; the recombiner trains for train.steps - scan_steps)")
        sym = config.symbols
        vocab = SymbolVocabulary.from_names(spec.factor_names, spec.factor_sizes,
                                            tuple(sym.factors) or None, dict(sym.bins),
                                            where="model.symbols")
        return cls(visual.model, vocab, label_mask(sym, vocab, spec),
                   scan_steps=config.scan_steps, p_name=sym.p_name, beta=config.beta,
                   lam=config.lam, hidden=tuple(config.hidden),
                   recombiner_hidden=config.recombiner_hidden, rngs=rngs)

    # -- the trainer's interface
    def param_groups(self):
        return {"scan": nnx.All(nnx.Param, nnx.PathContains("symbols")),
                "recombiner": nnx.All(nnx.Param, nnx.PathContains("recombiner"))}

    def schedule(self, step: int) -> tuple[Update, ...]:
        """SCAN for steps 1..scan_steps, then the recombiner."""
        if step <= self.scan_steps:
            return (Update("scan", "scan_loss"),)
        return (Update("recombiner", "recombination_loss"),)

    def scan_loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        """SCAN eq. 2 on symbols naming random subsets (``p_name`` each, available labels
        only) of the batch's factor values, paired with q(z_x|x) of the batch's images."""
        k_mask, k_z = jax.random.split(key)
        y = self.training_symbols(batch.factors, k_mask)
        visual = self.visual.encode(batch.x)
        rep = self.symbols.encode(y)
        logits = self.symbols.decode(rep.sample(k_z))
        loss, terms = scan_objective(y, logits, rep.mean, rep.logvar, visual.mean,
                                     visual.logvar, self.beta, self.lam)
        return loss, {"scan_loss": loss, **terms}

    def training_symbols(self, factors: jax.Array, key: jax.Array) -> jax.Array:
        """k-hot symbols [n, U] naming each available factor value of dataset factors
        int [n, K] independently with probability ``p_name``."""
        values = self.vocab.values(factors)
        mask = (jax.random.bernoulli(key, self.p_name, values.shape)
                & self.labels.available(factors, self.vocab.num_factors))
        return self.vocab.khot_device(values, mask)

    def recombination_loss(self, batch: Batch, key: jax.Array
                           ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """L_r on symbol pairs from the batch's factors: image B is image A with each factor
        taken from another image of the batch w.p. 1/2; y1 names a random subset of A's
        values, y2 of B's (for AND only factors y1 leaves unnamed); operators uniform."""
        ks = jax.random.split(key, 5)
        va = self.vocab.values(batch.factors)
        n, k = va.shape
        other = va[jax.random.permutation(ks[0], n)]
        vb = jnp.where(jax.random.bernoulli(ks[1], 0.5, va.shape), va, other)
        op = jax.random.randint(ks[2], (n,), 0, len(OPERATORS))
        m1 = jax.random.bernoulli(ks[3], self.p_name, (n, k))
        m2 = jax.random.bernoulli(ks[4], self.p_name, (n, k))
        m2 = jnp.where((op == 0)[:, None], m2 & ~m1, m2)
        loss, terms = recombination_objective(self.recombiner, self.symbols,
                                              self.vocab.khot_device(va, m1),
                                              self.vocab.khot_device(vb, m2), op)
        return loss, {"recombination_loss": loss, **terms}

    # -- inference
    def encode(self, x: jax.Array) -> Representation:
        """The visual posterior q(z_x|x)."""
        return self.visual.encode(x)

    def decode(self, z: jax.Array) -> jax.Array:
        """The visual decoder's output (logits for Bernoulli) at latents z [n, L]."""
        return self.visual.decode(z)

    def concept(self, y: jax.Array) -> Representation:
        """symbol -> concept: q(z_y|y) of k-hot symbols [n, U]."""
        return self.symbols.encode(y)

    def symbol_probs(self, z: jax.Array) -> jax.Array:
        """latent -> symbol: Bernoulli probabilities [n, U] of the units at latents z [n, L]."""
        return jax.nn.sigmoid(self.symbols.decode(z))

    def image_symbol_probs(self, x: jax.Array) -> jax.Array:
        """image -> symbol: :meth:`symbol_probs` at the visual posterior mean."""
        return self.symbol_probs(self.encode(x).mean)

    def recombine(self, y1: jax.Array, y2: jax.Array, op: jax.Array) -> Representation:
        """The recombined concept q(z_r | z_y1, z_y2, r) of symbols [n, U] and op int [n]."""
        return self.recombiner(self.concept(y1), self.concept(y2), op)


def label_mask(symbols: ml_collections.ConfigDict, vocab: SymbolVocabulary,
               spec: DataSpec) -> LabelMask:
    """:class:`LabelMask` from ``model.symbols`` (``sparse``, ``label_group``,
    ``label_fraction``, ``label_seed``)."""
    sparse, group = tuple(symbols.get("sparse", ())), symbols.get("label_group", "")
    if not sparse:
        return LabelMask()
    unknown = [f for f in sparse if f not in vocab.factor_names]
    if unknown or group not in spec.factor_names:
        raise ConfigError(
            f"model.symbols.sparse={list(sparse)} with label_group={group!r}: sparse factors must "
            f"be symbol factors ({', '.join(vocab.factor_names)}) and label_group a dataset "
            f"factor ({', '.join(spec.factor_names)}), e.g. label_group='participant' with "
            "eeg_erp's participant_factor=True")
    fraction = float(symbols.label_fraction)
    if not 0.0 <= fraction <= 1.0:
        raise ConfigError(f"model.symbols.label_fraction={fraction}; accepted: 0..1")
    return LabelMask(tuple(vocab.factor_names.index(f) for f in sparse),
                     spec.factor_names.index(group), fraction, int(symbols.label_seed))


def scan_model_config(factors: Sequence[str] = (), bins: dict[str, int] | None = None
                      ) -> ml_collections.ConfigDict:
    """The ``model`` section of a SCAN config (paper appendix: beta = 1, lambda = 10)."""
    return ml_collections.ConfigDict({
        "name": "scan", "visual_run": "", "scan_steps": 10_000, "beta": 1.0, "lam": 10.0,
        "hidden": (128, 128), "recombiner_hidden": 64,
        "symbols": {"factors": tuple(factors), "bins": dict(bins or {}), "p_name": 0.5,
                    "sparse": (), "label_group": "", "label_fraction": 1.0, "label_seed": 0}})


__all__ = ["OPERATORS", "LabelMask", "Recombiner", "SCAN", "SymbolVAE", "SymbolVocabulary",
           "label_mask", "recombination_objective", "sample_recombination_batch",
           "scan_model_config", "scan_objective", "set_operation"]
