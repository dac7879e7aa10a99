"""DR-RFF: disentangled RF fingerprints under unknown channels (Xie et al., IEEE TCOM 2023).

Three networks on I/Q signals x [n, T, 2] (see shared/PAPERS.md):

- F, the fingerprint extractor: a 1-D conv net whose output z = F(x) is L2-normalised
  (512-d in the paper), followed by a hypersphere softmax head with cosine logits
  ``logit_k = s cos(z, w_k)`` (|logit_k| <= s).
- Q removes the device from the signal: x_bar = Q(x), an encoder-decoder with Gaussian
  noise N(0, sigma^2) added at its bottleneck.
- G rebuilds a signal from the device-free signal and a fingerprint: x_hat = G(x_bar, z).

Two steps, each its own jitted function with its own optax optimizer:

QG step (updates Q and G, F frozen), alpha = beta = 10, K classes:
    L_Q = alpha max(0, mean_n log p_F(y_n | x_bar_n) - log(1/K)) + ||x_bar - x||^2
    L_G = ||G(x_bar, F(x)) - x||^2 + beta ||F(x_hat) - F(x)||^2,  x_hat = G(x_bar, F(x))
F step (shuffle augmentation; updates F, Q and G frozen), lambda = 0.5:
    x_hat_ij = G(Q(x_j), F(x_i))   (channel of signal j = perm(i), device of signal i)
    L_F = (1 - lambda) CE(F(x_i), y_i) + lambda CE(F(x_hat_ij), y_i)
lambda = 0 is the maximum-likelihood baseline (``ml_step``: F alone); ``ml_step`` with an
AWGN range is the AWGN-augmentation baseline.

Choices the paper leaves open (written down here):
- ``||a - b||^2`` of signals is the squared error averaged over the T x 2 elements (and
  over the batch), so alpha and beta weigh against per-element errors of unit-RMS signals;
  of fingerprints it is the squared Euclidean distance (2 - 2 cos for unit vectors),
  averaged over the batch.
- In the QG step Q receives the gradient of L_Q only and G that of L_G (x_bar enters G
  through a stop-gradient), so Q is not pulled towards keeping the device for G.
- In the F step x_hat is an augmented input (stop-gradient): F learns from it only
  through CE(F(x_hat), y).
- F is warmed up with ``warmup_steps`` maximum-likelihood steps before the alternation,
  so that the hinge of L_Q is measured against a classifier that knows the devices.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from disentangle import xla_options
from disentangle.methods.base import DataSpec, Method, Representation, register_model


# --------------------------------------------------------------------------- networks
class FingerprintExtractor(nnx.Module):
    """F: [n, T, 2] -> (fingerprint z [n, E] with ||z|| = 1, cosine logits [n, K]).

    Per block a stride-2 Conv1d (kernel k, 'SAME') and ReLU; flatten, linear to E,
    L2-normalise.
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

    def embed(self, x: jax.Array) -> jax.Array:
        """Fingerprints z [n, E], unit L2 norm."""
        h = x
        for conv in self.convs:
            h = jax.nn.relu(conv(h))
        z = self.fc(h.reshape(h.shape[0], -1))
        return l2_normalise(z)

    def logits(self, z: jax.Array) -> jax.Array:
        return hypersphere_logits(z, self.head[...], self.scale)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        z = self.embed(x)
        return z, self.logits(z)


class DeviceRemover(nnx.Module):
    """Q: [n, T, 2] -> x_bar [n, T, 2]; conv encoder (2 stride-2 convs), noisy bottleneck,
    transposed-conv decoder. T must be a multiple of 4."""

    def __init__(self, width: int = 32, bottleneck: int = 8, kernel: int = 7,
                 noise_std: float = 0.1, *, rngs: nnx.Rngs):
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

    def __call__(self, x: jax.Array, key: jax.Array | None = None) -> jax.Array:
        h = x
        for conv in self.enc:
            h = jax.nn.relu(conv(h))
        b = self.to_bottleneck(h)
        if key is not None:  # training: Gaussian noise at the bottleneck
            b = b + self.noise_std * jax.random.normal(key, b.shape, b.dtype)
        h = b
        for deconv in self.dec:
            h = jax.nn.relu(deconv(h))
        return self.out(h)


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
    """The pair updated by the QG step."""

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


def signal_sq_error(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a - b||^2 of signals: squared error averaged over batch and T x 2 elements."""
    return jnp.mean(jnp.square(a - b))


def fingerprint_sq_distance(a: jax.Array, b: jax.Array) -> jax.Array:
    """||a - b||^2 of fingerprints: squared Euclidean distance, averaged over the batch."""
    return jnp.mean(jnp.sum(jnp.square(a - b), axis=-1))


def q_loss(logits_bar: jax.Array, labels: jax.Array, x_bar: jax.Array, x: jax.Array,
           alpha: float = 10.0) -> tuple[jax.Array, jax.Array]:
    """L_Q = alpha max(0, mean_n log p_F(y_n | x_bar_n) - log(1/K)) + ||x_bar - x||^2.

    Returns (L_Q, hinge). logits_bar [n, K]: F's logits on x_bar.
    """
    k = logits_bar.shape[-1]
    log_p = jnp.take_along_axis(jax.nn.log_softmax(logits_bar), labels[:, None], axis=-1)
    hinge = jnp.maximum(0.0, jnp.mean(log_p) - math.log(1.0 / k))
    return alpha * hinge + signal_sq_error(x_bar, x), hinge


def g_loss(x_rec: jax.Array, x: jax.Array, z_rec: jax.Array, z: jax.Array,
           beta: float = 10.0) -> jax.Array:
    """L_G = ||G(x_bar, F(x)) - x||^2 + beta ||F(x_hat) - F(x)||^2 (x_rec = G(x_bar, F(x)),
    z_rec = F(x_rec), z = F(x))."""
    return signal_sq_error(x_rec, x) + beta * fingerprint_sq_distance(z_rec, z)


def f_loss(logits: jax.Array, logits_hat: jax.Array, labels: jax.Array,
           lam: float = 0.5) -> jax.Array:
    """L_F = (1 - lambda) CE(F(x_i), y_i) + lambda CE(F(x_hat_ij), y_i)."""
    return (1.0 - lam) * cross_entropy(logits, labels) + lam * cross_entropy(logits_hat, labels)


def add_awgn(x: jax.Array, key: jax.Array, snr_db: tuple[float, float]) -> jax.Array:
    """x + N(0, P / 10^(snr/10) / 2) per real component, snr ~ U(snr_db) per signal,
    P the signal's mean power |I|^2 + |Q|^2."""
    k1, k2 = jax.random.split(key)
    snr = jax.random.uniform(k1, (x.shape[0], 1, 1), minval=snr_db[0], maxval=snr_db[1])
    power = jnp.mean(jnp.sum(jnp.square(x), axis=-1, keepdims=True), axis=1, keepdims=True)
    sigma = jnp.sqrt(power / 10.0 ** (snr / 10.0) / 2.0)
    return x + sigma * jax.random.normal(k2, x.shape, x.dtype)


# --------------------------------------------------------------------------- train steps
@xla_options.nnx_jit(static_argnames=("alpha", "beta"))
def qg_step(f: FingerprintExtractor, qg: QG, opt: nnx.Optimizer, x: jax.Array, y: jax.Array,
            key: jax.Array, alpha: float = 10.0, beta: float = 10.0) -> dict[str, jax.Array]:
    """One QG step: Q minimises L_Q, G minimises L_G; F is not updated."""
    z = jax.lax.stop_gradient(f.embed(x))

    def loss_fn(qg: QG):
        x_bar = qg.q(x, key)
        lq, hinge = q_loss(f(x_bar)[1], y, x_bar, x, alpha)
        x_rec = qg.g(jax.lax.stop_gradient(x_bar), z)  # x_hat = G(x_bar, F(x))
        lg = g_loss(x_rec, x, f.embed(x_rec), z, beta)
        return lq + lg, {"loss_q": lq, "loss_g": lg, "hinge": hinge,
                         "recon_q": signal_sq_error(x_bar, x),
                         "recon_g": signal_sq_error(x_rec, x)}

    grads, metrics = nnx.grad(loss_fn, has_aux=True)(qg)
    opt.update(qg, grads)
    return metrics


@xla_options.nnx_jit(static_argnames=("lam",))
def f_step(f: FingerprintExtractor, qg: QG, opt: nnx.Optimizer, x: jax.Array, y: jax.Array,
           key: jax.Array, lam: float = 0.5) -> dict[str, jax.Array]:
    """One shuffle-augmented F step: x_hat_ij = G(Q(x_j), F(x_i)), j = perm(i)."""
    k_perm, k_noise = jax.random.split(key)
    perm = jax.random.permutation(k_perm, x.shape[0])
    x_hat = jax.lax.stop_gradient(qg.g(qg.q(x[perm], k_noise), f.embed(x)))

    def loss_fn(f: FingerprintExtractor):
        logits, logits_hat = f(x)[1], f(x_hat)[1]
        loss = f_loss(logits, logits_hat, y, lam)
        return loss, {"loss_f": loss, "acc": jnp.mean(jnp.argmax(logits, -1) == y),
                      "acc_shuffled": jnp.mean(jnp.argmax(logits_hat, -1) == y)}

    grads, metrics = nnx.grad(loss_fn, has_aux=True)(f)
    opt.update(f, grads)
    return metrics


@xla_options.nnx_jit(static_argnames=("awgn_snr_db",))
def ml_step(f: FingerprintExtractor, opt: nnx.Optimizer, x: jax.Array, y: jax.Array,
            key: jax.Array, awgn_snr_db: tuple[float, float] | None = None
            ) -> dict[str, jax.Array]:
    """Maximum likelihood (L_F with lambda = 0, F alone); with ``awgn_snr_db`` every signal
    first gets extra AWGN at an SNR drawn uniformly from that range (the AWGN baseline)."""
    if awgn_snr_db is not None:
        x = add_awgn(x, key, awgn_snr_db)

    def loss_fn(f: FingerprintExtractor):
        logits = f(x)[1]
        loss = cross_entropy(logits, y)
        return loss, {"loss_f": loss, "acc": jnp.mean(jnp.argmax(logits, -1) == y)}

    grads, metrics = nnx.grad(loss_fn, has_aux=True)(f)
    opt.update(f, grads)
    return metrics


# --------------------------------------------------------------------------- the method
@dataclasses.dataclass(frozen=True)
class DRRFFConfig:
    """Hyperparameters of DR-RFF and its baselines (paper values where it gives them)."""

    embed_dim: int = 512
    channels: tuple[int, ...] = (32, 48, 64, 64)
    scale: float = 16.0  # s of the hypersphere head
    alpha: float = 10.0
    beta: float = 10.0
    lam: float = 0.5
    q_width: int = 32
    q_bottleneck: int = 8
    q_noise_std: float = 0.1
    g_width: int = 32
    learning_rate: float = 1e-3
    qg_learning_rate: float = 1e-3
    batch_size: int = 64
    steps: int = 2000  # F steps, equal for every method
    warmup_steps: int = 500  # maximum-likelihood F steps before DR-RFF alternates
    awgn_snr_db: tuple[float, float] = (0.0, 20.0)


@register_model("dr_rff")
class DRRFF(Method):
    """F, Q and G of DR-RFF; ``encode`` gives the fingerprint z = F(x).

    Trained by :func:`train_rff` (alternating :func:`qg_step` and :func:`f_step`), not by
    the single-optimizer ``loss`` interface.
    """

    def __init__(self, length: int, num_classes: int, config: DRRFFConfig = DRRFFConfig(),
                 *, rngs: nnx.Rngs):
        self.config = config
        self.latent_dim = config.embed_dim
        self.f = FingerprintExtractor(length, num_classes, config.embed_dim, config.channels,
                                      scale=config.scale, rngs=rngs)
        self.qg = QG(DeviceRemover(config.q_width, config.q_bottleneck,
                                   noise_std=config.q_noise_std, rngs=rngs),
                     SignalGenerator(config.embed_dim, config.g_width, rngs=rngs))

    @classmethod
    def from_config(cls, config, spec: DataSpec, rngs: nnx.Rngs):
        fields = {f.name for f in dataclasses.fields(DRRFFConfig)}
        cfg = DRRFFConfig(**{k: tuple(v) if isinstance(v, list) else v
                             for k, v in config.to_dict().items() if k in fields})
        num_classes = config.get("num_classes", spec.factor_sizes[0])
        return cls(spec.observation_shape[0], num_classes, cfg, rngs=rngs)

    def encode(self, x: jax.Array) -> Representation:
        return Representation(mean=self.f.embed(x))

    def loss(self, x, key):
        raise NotImplementedError("dr_rff alternates two optimizers: train it with "
                                  "disentangle.methods.dr_rff.model.train_rff")


METHODS = ("dr_rff", "ml_rff", "ml_rff_awgn")


@functools.cache
def adam(learning_rate: float) -> optax.GradientTransformation:
    """One optax.adam per learning rate: the transformation is part of the jitted steps'
    static structure, so reusing it lets new models reuse the compiled steps."""
    return optax.adam(learning_rate)


def train_rff(method: str, x: np.ndarray, y: np.ndarray, num_classes: int,
              config: DRRFFConfig = DRRFFConfig(), seed: int = 0,
              log_every: int = 100, log: Callable[[str], None] | None = print
              ) -> tuple[DRRFF, list[dict[str, float]]]:
    """Train one of :data:`METHODS` on x float32 [n, T, 2], y int [n] in 0..K-1.

    ``dr_rff``: ``warmup_steps`` ML steps, then per step one QG step and one F step.
    ``ml_rff``: ML steps only. ``ml_rff_awgn``: ML steps on signals with extra AWGN.
    Every method makes ``config.steps`` F updates. Returns the model and a log history.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    model = DRRFF(x.shape[1], num_classes, config, rngs=nnx.Rngs(seed))
    opt_f = nnx.Optimizer(model.f, adam(config.learning_rate), wrt=nnx.Param)
    opt_qg = nnx.Optimizer(model.qg, adam(config.qg_learning_rate), wrt=nnx.Param)
    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    awgn = tuple(config.awgn_snr_db) if method == "ml_rff_awgn" else None
    history, start = [], time.time()
    for step in range(config.steps):
        idx = rng.integers(0, len(x), config.batch_size)
        xb, yb = jnp.asarray(x[idx]), jnp.asarray(y[idx], jnp.int32)
        key, k1, k2 = jax.random.split(key, 3)
        if method == "dr_rff" and step >= config.warmup_steps:
            metrics = dict(qg_step(model.f, model.qg, opt_qg, xb, yb, k1, config.alpha,
                                   config.beta))
            metrics |= f_step(model.f, model.qg, opt_f, xb, yb, k2, config.lam)
        else:
            metrics = ml_step(model.f, opt_f, xb, yb, k1, awgn)
        if (step + 1) % log_every == 0 or step + 1 == config.steps:
            row = {"step": step + 1, "seconds": time.time() - start,
                   **{k: float(v) for k, v in metrics.items()}}
            history.append(row)
            if log:
                log(f"[{method}] " + " ".join(f"{k}={v:.4g}" for k, v in row.items()))
    return model, history


@xla_options.jit_apply
def _forward(f: FingerprintExtractor, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return f(x)


def fingerprints(f: FingerprintExtractor, x: np.ndarray, batch_size: int = 256
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints z [n, E] and cosine logits [n, K] of x [n, T, 2], in batches."""
    zs, ls = [], []
    for i in range(0, len(x), batch_size):
        z, logits = _forward(f, jnp.asarray(x[i : i + batch_size]))
        zs.append(np.asarray(z))
        ls.append(np.asarray(logits))
    return np.concatenate(zs), np.concatenate(ls)
