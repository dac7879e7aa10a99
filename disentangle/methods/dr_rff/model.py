"""DR-RFF: disentangled RF fingerprints under unknown channels (Xie et al., IEEE TCOM 2023),
and its two baselines, trained by the one trainer (``disentangle.train``).

Three networks on I/Q signals x [n, T, 2] (see shared/PAPERS.md); labels y are the device
factor of the batch, ``batch.factors[:, 0]``, K classes:

- F, the fingerprint extractor: a 1-D conv net with features h = F_h(x) [n, E] (512 in the
  paper) and the fingerprint z = h / |h|, followed by a hypersphere softmax head with
  cosine logits ``logit_k = s cos(z, w_k)`` (|logit_k| <= s).
- Q removes the device from the signal: x_bar = Q(x), an encoder-decoder with Gaussian
  noise N(0, sigma^2) added at its bottleneck.
- G rebuilds a signal from the device-free signal and a fingerprint: x_hat = G(x_bar, z).

Objectives (one optimizer per parameter group ``f`` and ``qg``), alpha = beta = 10:

- ``ml_loss`` (group f): CE(F(a(x)), y), a the method's augmentation (identity; AWGN for
  ``ml_rff_awgn``).
- ``qg_loss`` (group qg, F fixed): L_Q + L_G with
  ``L_Q = alpha max(0, mean_n log p_F(y_n | x_bar_n) - log(1/K)) + ||x_bar - x||^2`` and
  ``L_G = ||G(x_bar, F(x)) - x||^2 + beta d(F_h(x_hat), F_h(x))``, x_hat = G(x_bar, F(x)).
- ``f_loss`` (group f, shuffle augmentation): x_hat_ij = G(Q(x_j), F(x_i)), j = perm(i)
  (channel of signal j, device of signal i);
  ``L_F = (1 - lambda) CE(F(x_i), y_i) + lambda CE(F(x_hat_ij), y_shuffle)``, lambda = 0.5.

Registered methods (one class per variant, each overriding the schedule or objective):

- ``ml_rff``: maximum likelihood, ``ml_loss`` on F alone at every step.
- ``ml_rff_awgn``: the same with extra AWGN at an SNR drawn uniformly from ``awgn_snr_db``.
- ``dr_rff``: ``warmup_steps`` ML steps on F, then every step a QG update and an F update.
  Every method makes one F update per training step.

Where the paper's text and the authors' code differ, a config key chooses; the default is
the authors' code (it produced the published numbers):

=================== ============================== ======================================
key                 authors' code (default)        paper's text / earlier choice here
=================== ============================== ======================================
shuffle_label       ``channel_donor``: y_j, label  ``fingerprint_donor``: y_i, the device
                    of the signal that went         whose fingerprint G was given
                    through Q
g_loss_to_q         True: L_G's gradient reaches   False: x_bar enters G through a
                    Q through x_bar                 stop-gradient (Q minimises L_Q only)
fingerprint_distance ``feature_mse``: mean over     ``unit_sq_distance``: sum over the
                    the E unnormalised features     unit-norm dims, |z_a - z_b|^2
                    of (h_a - h_b)^2
awgn_snr_db         (5, 30) dB                     (0, 20) dB
q_noise_std         1.0: N(0, 1) at Q's bottleneck 0.1
=================== ============================== ======================================

Other choices the paper leaves open (written down here): ``||a - b||^2`` of signals is the
squared error averaged over batch and T x 2 elements; in the F step x_hat is an augmented
input (stop-gradient), so F learns from it only through CE(F(x_hat), .); Q is a plain
conv encoder-decoder (the authors use a U-Net; not built here).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
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


# --------------------------------------------------------------------------- networks
class FingerprintExtractor(nnx.Module):
    """F: [n, T, 2] -> (fingerprint z [n, E] with ||z|| = 1, cosine logits [n, K]).

    Per block a stride-2 Conv1d (kernel k, 'SAME') and ReLU; flatten, linear to the E
    features h, z = h / |h|.
    """

    def __init__(self, length: int, num_classes: int, embed_dim: int = 512,
                 channels: tuple[int, ...] = (32, 48, 64, 64), kernel: int = 7,
                 scale: float = 16.0, *, rngs: nnx.Rngs):
        chans = (2, *channels)
        self.convs = nnx.List([nnx.Conv(a, b, (kernel,), strides=2, rngs=rngs)
                               for a, b in zip(chans, chans[1:])])
        pooled = -(-length // 2 ** len(channels))
        self.fc = nnx.Linear(pooled * channels[-1], embed_dim, rngs=rngs)
        self.head = nnx.Param(jax.random.normal(rngs.params(), (embed_dim, num_classes)))
        self.scale = scale
        self.num_classes = num_classes

    def features(self, x: jax.Array) -> jax.Array:
        """Unnormalised features h [n, E]."""
        h = x
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        return self.fc(h.reshape(h.shape[0], -1))

    def embed(self, x: jax.Array) -> jax.Array:
        """Fingerprints z [n, E], unit L2 norm."""
        return l2_normalise(self.features(x))

    def logits(self, z: jax.Array) -> jax.Array:
        return hypersphere_logits(z, self.head[...], self.scale)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = self.embed(x)
        return z, self.logits(z)


class DeviceRemover(nnx.Module):
    """Q: [n, T, 2] -> x_bar [n, T, 2]; conv encoder (2 stride-2 convs), bottleneck
    b + N(0, noise_std^2) in training, transposed-conv decoder. T must divide by 4."""

    def __init__(self, width: int = 32, bottleneck: int = 8, kernel: int = 7,
                 noise_std: float = 1.0, *, rngs: nnx.Rngs):
        self.enc = nnx.List([
            nnx.Conv(2, width, (kernel,), rngs=rngs),
            nnx.Conv(width, width, (kernel,), strides=2, rngs=rngs),
            nnx.Conv(width, width, (kernel,), strides=2, rngs=rngs),
        ])
        self.to_bottleneck = nnx.Conv(width, bottleneck, (1,), rngs=rngs)
        self.dec = nnx.List([
            nnx.ConvTranspose(bottleneck, width, (kernel,), strides=(2,), rngs=rngs),
            nnx.ConvTranspose(width, width, (kernel,), strides=(2,), rngs=rngs),
        ])
        self.out = nnx.Conv(width, 2, (kernel,), rngs=rngs)
        self.noise_std = noise_std

    def bottleneck(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        """b [n, T/4, C]; with ``key`` (training) plus noise_std * N(0, 1)."""
        h = x
        for conv in self.enc:
            h = jax.nn.relu(conv(h))
        b = self.to_bottleneck(h)
        if key is not None:
            b = b + self.noise_std * jax.random.normal(key, b.shape, b.dtype)
        return b

    def decode(self, b: jax.Array) -> jax.Array:
        h = b
        for deconv in self.dec:
            h = jax.nn.relu(deconv(h))
        return self.out(h)

    def __call__(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        return self.decode(self.bottleneck(x, key))


class SignalGenerator(nnx.Module):
    """G: (x_bar [n, T, 2], z [n, E]) -> x_hat [n, T, 2] = x_bar + conv(x_bar, W z)."""

    def __init__(self, embed_dim: int, width: int = 32, cond: int = 16, kernel: int = 7,
                 depth: int = 3, *, rngs: nnx.Rngs):
        self.cond = nnx.Linear(embed_dim, cond, rngs=rngs)
        chans = (2 + cond, *([width] * depth))
        self.convs = nnx.List([nnx.Conv(a, b, (kernel,), rngs=rngs)
                               for a, b in zip(chans, chans[1:])])
        self.out = nnx.Conv(width, 2, (kernel,), rngs=rngs)

    def __call__(self, x_bar: jax.Array, z: jax.Array) -> jax.Array:
        c = jnp.broadcast_to(self.cond(z)[:, None, :], (*x_bar.shape[:2], self.cond.out_features))
        h = jnp.concatenate([x_bar, c], axis=-1)
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        return x_bar + self.out(h)


class QG(nnx.Module):
    """The pair updated by the QG step (parameter group ``qg``)."""

    def __init__(self, q: DeviceRemover, g: SignalGenerator):
        self.q, self.g = q, g


# --------------------------------------------------------------------------- losses
def l2_normalise(v: jax.Array, axis: int = -1, eps: float = 1e-12) -> jax.Array:
    return v / jnp.sqrt(jnp.sum(v * v, axis=axis, keepdims=True) + eps)


def hypersphere_logits(z: jax.Array, weights: jax.Array, scale: float) -> jax.Array:
    """Cosine logits ``s * <z / |z|, w_k / |w_k|>``: z [n, E], weights [E, K] -> [n, K]."""
    return scale * l2_normalise(z) @ l2_normalise(weights, axis=0)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean over n of -log softmax(logits)[y]."""
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def signal_sq_error(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a - b||^2 of signals: squared error averaged over batch and T x 2 elements."""
    return jnp.mean(jnp.square(a - b))


def feature_mse(h_a: jax.Array, h_b: jax.Array) -> jax.Array:
    """mean_{n, e} (h_a - h_b)^2 over the unnormalised features [n, E] (authors' code)."""
    return jnp.mean(jnp.square(h_a - h_b))


def unit_sq_distance(h_a: jax.Array, h_b: jax.Array) -> jax.Array:
    """mean_n sum_e (z_a - z_b)^2 with z = h / |h| (= 2 - 2 cos), over [n, E]."""
    return jnp.mean(jnp.sum(jnp.square(l2_normalise(h_a) - l2_normalise(h_b)), axis=-1))


# The beta term's distance d(F_h(x_hat), F_h(x)) of features [n, E] (``fingerprint_distance``).
FINGERPRINT_DISTANCES: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "feature_mse": feature_mse, "unit_sq_distance": unit_sq_distance}

# Label of the shuffled sample x_hat_ij = G(Q(x_j), F(x_i)), from the labels y [n] and the
# permutation perm [n] (j = perm[i]) (``shuffle_label``).
SHUFFLE_LABELS: dict[str, Callable[[jax.Array, jax.Array], jax.Array]] = {
    "channel_donor": lambda y, perm: y[perm],  # y_j: authors' code
    "fingerprint_donor": lambda y, perm: y,  # y_i: paper's text
}


def q_loss(logits_bar: jax.Array, labels: jax.Array, x_bar: jax.Array, x: jax.Array,
           alpha: float = 10.0) -> tuple[jax.Array, jax.Array]:
    """L_Q = alpha max(0, mean_n log p_F(y_n | x_bar_n) - log(1/K)) + ||x_bar - x||^2.

    Returns (L_Q, hinge). logits_bar [n, K]: F's logits on x_bar.
    """
    k = logits_bar.shape[-1]
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits_bar), labels[:, None], axis=-1)
    hinge = jnp.maximum(0.0, jnp.mean(log_p) - math.log(1.0 / k))
    return alpha * hinge + signal_sq_error(x_bar, x), hinge


def g_loss(x_rec: jax.Array, x: jax.Array, h_rec: jax.Array, h: jax.Array,
           beta: float = 10.0, distance: str = "feature_mse") -> jax.Array:
    """L_G = ||x_rec - x||^2 + beta d(h_rec, h) with x_rec = G(x_bar, F(x)), h_rec =
    F_h(x_rec), h = F_h(x) (features [n, E]); d from :data:`FINGERPRINT_DISTANCES`."""
    return signal_sq_error(x_rec, x) + beta * FINGERPRINT_DISTANCES[distance](h_rec, h)


def f_loss(logits: jax.Array, logits_hat: jax.Array, labels: jax.Array,
           labels_hat: jax.Array, lam: float = 0.5) -> jax.Array:
    """L_F = (1 - lambda) CE(F(x_i), y_i) + lambda CE(F(x_hat_ij), labels_hat)."""
    return ((1.0 - lam) * cross_entropy(logits, labels)
            + lam * cross_entropy(logits_hat, labels_hat))


def add_awgn(x: jax.Array, key: jax.Array, snr_db: tuple[float, float]) -> jax.Array:
    """x + N(0, P / 10^(snr/10) / 2) per real component, snr ~ U(snr_db) per signal,
    P the signal's mean power |I|^2 + |Q|^2."""
    k1, k2 = jax.random.split(key)
    snr = jax.random.uniform(k1, (x.shape[0], 1, 1), minval=snr_db[0], maxval=snr_db[1])
    power = jnp.mean(jnp.sum(jnp.square(x), axis=-1, keepdims=True), axis=1, keepdims=True)
    sigma = jnp.sqrt(power / 10.0 ** (snr / 10.0) / 2.0)
    return x + sigma * jax.random.normal(k2, x.shape, x.dtype)


# --------------------------------------------------------------------------- the methods
@dataclasses.dataclass(frozen=True)
class RFFConfig:
    """The ``model`` config section of ``ml_rff``, ``ml_rff_awgn`` and ``dr_rff``.

    F: ``embed_dim`` E, conv ``channels``, head ``scale`` s; ``num_classes`` K (0: the size
    of the dataset's device factor). Baseline: ``awgn_snr_db``. DR-RFF: ``alpha``,
    ``beta``, ``lam``, ``warmup_steps``, Q (``q_width``, ``q_bottleneck``,
    ``q_noise_std``), G (``g_width``) and the choices of the module docstring
    (``shuffle_label``, ``g_loss_to_q``, ``fingerprint_distance``).
    """

    embed_dim: int = 512
    channels: tuple[int, ...] = (32, 48, 64, 64)
    scale: float = 16.0
    num_classes: int = 0
    awgn_snr_db: tuple[float, float] = (5.0, 30.0)
    alpha: float = 10.0
    beta: float = 10.0
    lam: float = 0.5
    warmup_steps: int = 500
    q_width: int = 32
    q_bottleneck: int = 8
    q_noise_std: float = 1.0
    g_width: int = 32
    shuffle_label: str = "channel_donor"
    g_loss_to_q: bool = True
    fingerprint_distance: str = "feature_mse"

    @classmethod
    def from_section(cls, section: ml_collections.ConfigDict) -> RFFConfig:
        """From the ``model`` section (``name`` aside); unknown keys and names raise."""
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in section.to_dict().items() if k != "name"}
        if unknown := sorted(set(values) - fields):
            raise ConfigError(f"model {section.get('name')!r}: unknown key(s) "
                              f"{', '.join('model.' + k for k in unknown)}; accepted: "
                              f"{', '.join(sorted(fields))}")
        cfg = cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        for key, table in (("shuffle_label", SHUFFLE_LABELS),
                           ("fingerprint_distance", FINGERPRINT_DISTANCES)):
            if getattr(cfg, key) not in table:
                raise ConfigError(f"model.{key}={getattr(cfg, key)!r}; accepted: "
                                  f"{', '.join(map(repr, table))}")
        if len(cfg.awgn_snr_db) != 2 or cfg.awgn_snr_db[0] > cfg.awgn_snr_db[1]:
            raise ConfigError(f"model.awgn_snr_db={list(cfg.awgn_snr_db)}; accepted: a range "
                              "[lo, hi] in dB with lo <= hi")
        return cfg


def device_labels(batch: Batch) -> jax.Array:
    """The device factor of the batch, int [n]."""
    if batch.factors is None:
        raise ConfigError("RF fingerprinting trains on labelled captures: the dataset must "
                          "give factors with the device first (e.g. data.name=rf_zigbee)")
    return batch.factors[:, 0].astype(jnp.int32)


ML_STEP = (Update("f", "ml_loss"),)


@register_model("ml_rff")
class MLRFF(Method):
    """Maximum-likelihood fingerprint extractor F (group ``f``); ``encode`` gives z = F(x).

    Subclasses change the augmentation (:meth:`augment`) or add networks and stages.
    """

    def __init__(self, length: int, num_classes: int, config: RFFConfig = RFFConfig(),
                 *, rngs: nnx.Rngs):
        self.config = config
        self.latent_dim = config.embed_dim
        self.f = FingerprintExtractor(length, num_classes, config.embed_dim, config.channels,
                                      scale=config.scale, rngs=rngs)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs):
        cfg = RFFConfig.from_section(config)
        if len(spec.observation_shape) != 2 or spec.observation_shape[1] != 2:
            raise ConfigError(f"model {config.name!r} takes I/Q signals [T, 2]; the dataset "
                              f"gives observations of shape {spec.observation_shape}")
        if not spec.factor_sizes and not cfg.num_classes:
            raise ConfigError(f"model {config.name!r}: the dataset has no device factor; "
                              "set model.num_classes")
        return cls(spec.observation_shape[0], cfg.num_classes or spec.factor_sizes[0], cfg,
                   rngs=rngs)

    def param_groups(self) -> dict:
        return {"f": nnx.All(nnx.Param, nnx.PathContains("f"))}

    def schedule(self, step: int) -> tuple[Update, ...]:
        return ML_STEP

    def encode(self, x: jax.Array) -> Representation:
        return Representation(mean=self.f.embed(x))

    def augment(self, x: jax.Array, key: jax.Array) -> jax.Array:
        """The training signals F sees in ``ml_loss``: x itself."""
        return x

    def ml_loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict]:
        """CE(F(augment(x)), y)."""
        y = device_labels(batch)
        logits = self.f(self.augment(batch.x, key))[1]
        loss = cross_entropy(logits, y)
        return loss, {"ce": loss, "acc": accuracy(logits, y)}


@register_model("ml_rff_awgn")
class MLRFFAWGN(MLRFF):
    """Maximum likelihood on signals with extra AWGN, SNR ~ U(``awgn_snr_db``) per signal."""

    def augment(self, x: jax.Array, key: jax.Array) -> jax.Array:
        return add_awgn(x, key, self.config.awgn_snr_db)


@register_model("dr_rff")
class DRRFF(MLRFF):
    """DR-RFF: F (group ``f``) and Q, G (group ``qg``); ``warmup_steps`` ML steps, then per
    step a QG update and a shuffle-augmented F update."""

    STAGES = (ML_STEP, (Update("qg", "qg_loss"), Update("f", "f_loss")))

    def __init__(self, length: int, num_classes: int, config: RFFConfig = RFFConfig(),
                 *, rngs: nnx.Rngs):
        super().__init__(length, num_classes, config, rngs=rngs)
        if length % 4:
            raise ConfigError(f"dr_rff: Q halves the signal twice, so its length T={length} "
                              "must divide by 4")
        self.qg = QG(DeviceRemover(config.q_width, config.q_bottleneck,
                                   noise_std=config.q_noise_std, rngs=rngs),
                     SignalGenerator(config.embed_dim, config.g_width, rngs=rngs))
        # Scalars kept as attributes so that train.vmap_key can sweep them.
        self.alpha, self.beta, self.lam = config.alpha, config.beta, config.lam

    def param_groups(self) -> dict:
        return {**super().param_groups(), "qg": nnx.All(nnx.Param, nnx.PathContains("qg"))}

    def schedule(self, step: int) -> tuple[Update, ...]:
        return self.STAGES[step > self.config.warmup_steps]

    def qg_loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict]:
        """L_Q + L_G (module docstring); F is held fixed by the trainer."""
        x, y = batch.x, device_labels(batch)
        h = self.f.features(x)
        z = l2_normalise(h)
        x_bar = self.qg.q(x, key)
        lq, hinge = q_loss(self.f.logits(self.f.embed(x_bar)), y, x_bar, x, self.alpha)
        g_in = x_bar if self.config.g_loss_to_q else jax.lax.stop_gradient(x_bar)
        x_rec = self.qg.g(g_in, z)
        distance = FINGERPRINT_DISTANCES[self.config.fingerprint_distance](
            self.f.features(x_rec), h)
        recon_g = signal_sq_error(x_rec, x)
        lg = recon_g + self.beta * distance
        return lq + lg, {"loss_q": lq, "loss_g": lg, "hinge": hinge,
                         "recon_q": signal_sq_error(x_bar, x), "recon_g": recon_g,
                         "fingerprint_distance": distance}

    def shuffled(self, x: jax.Array, key: jax.Array) -> tuple[jax.Array, jax.Array]:
        """(x_hat [n, T, 2], perm [n]): x_hat_i = G(Q(x_perm(i)), F(x_i)), no gradient."""
        k_perm, k_noise = jax.random.split(key)
        perm = jax.random.permutation(k_perm, x.shape[0])
        x_hat = self.qg.g(self.qg.q(x[perm], k_noise), self.f.embed(x))
        return jax.lax.stop_gradient(x_hat), perm

    def f_loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict]:
        """L_F with the shuffled samples labelled by ``shuffle_label``."""
        x, y = batch.x, device_labels(batch)
        x_hat, perm = self.shuffled(x, key)
        y_hat = SHUFFLE_LABELS[self.config.shuffle_label](y, perm)
        logits, logits_hat = self.f(x)[1], self.f(x_hat)[1]
        loss = f_loss(logits, logits_hat, y, y_hat, self.lam)
        return loss, {"ce": cross_entropy(logits, y), "acc": accuracy(logits, y),
                      "ce_shuffled": cross_entropy(logits_hat, y_hat),
                      "acc_shuffled": accuracy(logits_hat, y_hat),
                      "shuffled_as_fingerprint_donor": accuracy(logits_hat, y)}
