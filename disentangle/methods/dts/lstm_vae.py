"""Recurrent VAEs for time series: the LSTM-VAE and beta-TCVAE baselines of DTS.

Li et al., "Towards Learning Disentangled Representations for Time Series" (KDD 2022)
build on a recurrent VAE over observations ``x`` of shape ``[n, T, C]``:

- encoder: an LSTM (or GRU) reads x_1..x_T; its last hidden state h_T gives
  ``(mu, log sigma^2) = Linear(h_T)``, q(z|x) = N(mu, diag sigma^2), z in R^L;
- decoder: a second LSTM/GRU whose initial state is ``tanh(Linear(z))``. With
  ``decoder_input="autoregressive"`` its input at step t is ``[x_{t-1}, z]`` (teacher
  forcing in the loss, its own previous output in :meth:`RecurrentVAE.decode`); with
  ``decoder_input="z"`` the input is z at every step. The autoregressive decoder is the
  setting where KL vanishing appears: it can predict x_t from x_{t-1} and ignore z.
- likelihood: Gaussian with fixed std ``obs_std``,
  ``-log p(x|z) = sum_{t,c} (x_tc - xhat_tc)^2 / (2 obs_std^2)`` + const.
  ``decode`` returns the mean series xhat (not logits).

Both the time loops are ``jax.lax.scan`` over flax nnx cells (split/merge inside the scan).

Methods here (``loss(x, key)``, z ~ q(z|x) by reparameterisation):

- ``lstm_vae``: recon + beta * KL(q(z|x) || N(0, I)) (beta = 1: the plain LSTM-VAE);
- ``lstm_beta_tcvae``: recon + KL + (beta - 1) * TC (Chen et al., 2018, MWS estimate).

Every method logs the same diagnostics of KL vanishing: the analytic KL per latent
dimension ``kl_0 .. kl_{L-1}`` (batch means), the number of active units in the batch
``active_units = #{j : Var_x E[z_j|x] > 0.01}`` (Burda et al., 2016), and the MWS terms
``mi`` (I(x;z)), ``tc``, ``dimwise_kl``, ``kl_mc``. :func:`kl_diagnostics` computes them on
a larger evaluation set. DTS itself is :mod:`disentangle.methods.dts.dts`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from disentangle import xla_options
from disentangle.errors import ConfigError
from disentangle.methods.base import DataSpec, Method, Representation, register_model
from disentangle.methods.gaussian import kl_to_standard_normal, mws_decomposition

CELLS = {"lstm": nnx.LSTMCell, "gru": nnx.GRUCell}
DECODER_INPUTS = ("autoregressive", "z")
ACTIVE_UNIT_THRESHOLD = 0.01  # Cov_x(E[z_j | x]) above this: unit j is active


def make_cell(kind: str, in_features: int, hidden: int, rngs: nnx.Rngs) -> nnx.Module:
    if kind not in CELLS:
        raise ConfigError(f"model.cell={kind!r}; accepted: {', '.join(map(repr, CELLS))}")
    return CELLS[kind](in_features, hidden, rngs=rngs)


def carry_from_hidden(kind: str, h: jax.Array):
    """A cell carry whose hidden state is h [n, H] (LSTM memory cell starts at 0)."""
    return (jnp.zeros_like(h), h) if kind == "lstm" else h


def hidden_of(carry) -> jax.Array:
    """The hidden state h [n, H] of an LSTM carry (c, h) or a GRU carry h."""
    return carry[1] if isinstance(carry, tuple) else carry


def scan_cell(cell: nnx.Module, carry, inputs: jax.Array):
    """Run ``cell`` over time with ``jax.lax.scan``: inputs [n, T, F] -> (carry, h [n, T, H])."""
    graphdef, state = nnx.split(cell)

    def step(c, x_t):
        return nnx.merge(graphdef, state)(c, x_t)

    carry, hs = jax.lax.scan(step, carry, jnp.swapaxes(inputs, 0, 1))
    return carry, jnp.swapaxes(hs, 0, 1)


class RecurrentEncoder(nnx.Module):
    """x [n, T, C] -> Linear(h_T) [n, out_features]."""

    def __init__(self, channels: int, hidden: int, out_features: int, cell: str = "lstm", *,
                 rngs: nnx.Rngs):
        self.kind, self.hidden = cell, hidden
        self.cell = make_cell(cell, channels, hidden, rngs)
        self.head = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        h0 = jnp.zeros((x.shape[0], self.hidden), x.dtype)
        carry, _ = scan_cell(self.cell, carry_from_hidden(self.kind, h0), x)
        return self.head(hidden_of(carry))


class RecurrentDecoder(nnx.Module):
    """z [n, L] -> mean series [n, T, C]; teacher-forced when given x (autoregressive mode)."""

    def __init__(self, latent_dim: int, length: int, channels: int, hidden: int,
                 cell: str = "lstm", decoder_input: str = "autoregressive", *, rngs: nnx.Rngs):
        if decoder_input not in DECODER_INPUTS:
            raise ConfigError(f"model.decoder_input={decoder_input!r}; accepted: "
                              f"{', '.join(map(repr, DECODER_INPUTS))}")
        self.kind, self.length, self.channels = cell, length, channels
        self.autoregressive = decoder_input == "autoregressive"
        in_features = latent_dim + (channels if self.autoregressive else 0)
        self.init = nnx.Linear(latent_dim, hidden, rngs=rngs)
        self.cell = make_cell(cell, in_features, hidden, rngs)
        self.readout = nnx.Linear(hidden, channels, rngs=rngs)

    def initial_carry(self, z):
        return carry_from_hidden(self.kind, jnp.tanh(self.init(z)))

    def __call__(self, z: jax.Array, x: jax.Array | None = None) -> jax.Array:
        n = z.shape[0]
        zs = jnp.broadcast_to(z[:, None, :], (n, self.length, z.shape[-1]))
        if not self.autoregressive:
            _, hs = scan_cell(self.cell, self.initial_carry(z), zs)
            return self.readout(hs)
        if x is not None:  # teacher forcing: input x_{t-1}, with x_0 := 0
            prev = jnp.concatenate([jnp.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
            _, hs = scan_cell(self.cell, self.initial_carry(z), jnp.concatenate([prev, zs], -1))
            return self.readout(hs)
        return self.free_run(z)

    def free_run(self, z: jax.Array) -> jax.Array:
        """Generation: the input at step t is the decoder's own output at t - 1."""
        graphdef, state = nnx.split(self)

        def step(carry, _):
            c, prev = carry
            dec = nnx.merge(graphdef, state)
            c, h = dec.cell(c, jnp.concatenate([prev, z], -1))
            y = dec.readout(h)
            return (c, y), y

        start = (self.initial_carry(z), jnp.zeros((z.shape[0], self.channels), z.dtype))
        _, ys = jax.lax.scan(step, start, None, length=self.length)
        return jnp.swapaxes(ys, 0, 1)


def latent_segments(sizes, latent_dim: int) -> tuple[tuple[int, ...], ...] | None:
    """Segment sizes (e.g. (4, 2, 2)) -> index tuples ((0..3), (4, 5), (6, 7)); () -> None."""
    sizes = tuple(int(s) for s in (sizes or ()))
    if not sizes:
        return None
    if sum(sizes) != latent_dim or min(sizes) < 1:
        raise ConfigError(f"model.latent_groups={sizes} must be positive sizes adding up to "
                          f"model.latent_dim={latent_dim}")
    bounds = np.cumsum((0, *sizes))
    return tuple(tuple(range(a, b)) for a, b in zip(bounds[:-1], bounds[1:], strict=True))


def active_units(mean: jax.Array, threshold: float = ACTIVE_UNIT_THRESHOLD) -> jax.Array:
    """Number of units j with Var_n(mean[n, j]) > threshold (mean [n, L] = E[z|x_n])."""
    return jnp.sum(jnp.var(mean, axis=0) > threshold).astype(jnp.float32)


class RecurrentVAE(Method):
    """Recurrent VAE skeleton; subclasses override :meth:`regularizer` only."""

    def __init__(self, spec: DataSpec, latent_dim: int = 8, cell: str = "lstm",
                 hidden: int = 64, decoder_input: str = "autoregressive", obs_std: float = 0.1,
                 latent_groups=(), *, rngs: nnx.Rngs):
        if len(spec.observation_shape) != 2:
            raise ConfigError(f"recurrent VAEs take series [T, C]; the dataset has observation "
                              f"shape {tuple(spec.observation_shape)}")
        length, channels = spec.observation_shape
        self.latent_dim, self.obs_std = latent_dim, float(obs_std)
        self.dataset_size = spec.dataset_size
        self.groups = latent_segments(latent_groups, latent_dim)
        self.encoder = RecurrentEncoder(channels, hidden, 2 * latent_dim, cell, rngs=rngs)
        self.decoder = RecurrentDecoder(latent_dim, length, channels, hidden, cell,
                                        decoder_input, rngs=rngs)

    @classmethod
    def config_kwargs(cls, config) -> dict:
        return dict(latent_dim=config.get("latent_dim", 8), cell=config.get("cell", "lstm"),
                    hidden=config.get("hidden", 64),
                    decoder_input=config.get("decoder_input", "autoregressive"),
                    obs_std=config.get("obs_std", 0.1),
                    latent_groups=tuple(config.get("latent_groups", ()) or ()))

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, **cls.config_kwargs(config), rngs=rngs)

    def encode(self, x: jax.Array) -> Representation:
        mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
        return Representation(mean=mean, logvar=logvar)

    def decode(self, z: jax.Array) -> jax.Array:
        """Mean series [n, T, C] generated from z (free-running if autoregressive)."""
        return self.decoder(z)

    def reconstruction_error(self, x: jax.Array) -> jax.Array:
        """Gaussian NLL sum (x - decode(mean))^2 / (2 obs_std^2) per series [n]."""
        x_hat = self.decode(self.encode(x).mean)
        return 0.5 * jnp.sum(jnp.square((x - x_hat) / self.obs_std), axis=(1, 2))

    def regularizer(self, z, rep: Representation, parts: dict) -> jax.Array:
        """The KL-side of the objective; ``parts`` holds the MWS terms and ``kl``."""
        return parts["kl"]

    def loss(self, batch, key):
        x = batch.x
        rep = self.encode(x)
        z = rep.sample(key)
        x_hat = self.decoder(z, x)
        # -log p(x|z) = sum_{t,c} (x - xhat)^2 / (2 obs_std^2), constant dropped
        recon = jnp.mean(0.5 * jnp.sum(jnp.square((x - x_hat) / self.obs_std), axis=(1, 2)))
        kl_dims = jnp.mean(kl_to_standard_normal(rep.mean, rep.logvar), axis=0)  # [L]
        parts = mws_decomposition(z, rep.mean, rep.logvar, max(self.dataset_size, z.shape[0]),
                                  groups=self.groups)
        parts["kl"] = kl_dims.sum()
        reg = self.regularizer(z, rep, parts)
        terms = {"reconstruction": recon, **parts, "elbo": -(recon + parts["kl"]),
                 "mse": jnp.mean(jnp.square(x - x_hat)),
                 "active_units": active_units(rep.mean),
                 **{f"kl_{j}": kl_dims[j] for j in range(self.latent_dim)}}
        return recon + reg, terms


@register_model("lstm_vae")
class LSTMVAE(RecurrentVAE):
    """recon + beta * KL; beta = 1 is the plain LSTM-VAE."""

    def __init__(self, spec: DataSpec, beta: float = 1.0, **kwargs):
        super().__init__(spec, **kwargs)
        self.beta = float(beta)

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, beta=config.get("beta", 1.0), **cls.config_kwargs(config), rngs=rngs)

    def regularizer(self, z, rep, parts):
        return self.beta * parts["kl"]


@register_model("lstm_beta_tcvae")
class LSTMBetaTCVAE(LSTMVAE):
    """recon + KL + (beta - 1) * TC with the MWS estimate of TC (beta is the TC weight)."""

    def regularizer(self, z, rep, parts):
        return parts["kl"] + (self.beta - 1.0) * parts["tc"]


@xla_options.jit_apply
def _encode(model: Method, x: jax.Array) -> Representation:
    return model.encode(x)


@jax.jit
def _exact_decomposition(z, mean, logvar):
    return mws_decomposition(z, mean, logvar, 1)


def kl_diagnostics(model: RecurrentVAE, x: np.ndarray, key: jax.Array, batch_size: int = 256,
                   mi_samples: int = 1024) -> dict[str, float]:
    """KL-vanishing diagnostics of ``model`` on observations x [n, T, C].

    Returns ``kl_j`` (analytic KL per dimension, averaged over x), ``kl``, ``active_units``
    (Var_x E[z_j|x] > 0.01 over all of x), ``au_var_j`` (that variance per unit), and
    ``mi``, ``tc``, ``dimwise_kl`` of the evaluation set itself: on its first m =
    ``mi_samples`` rows the aggregate posterior is q(z) = 1/m sum_n q(z|x_n) exactly, i.e.
    :func:`mws_decomposition` with dataset size 1 (log q(z_i) = logsumexp_n - log m), so
    ``mi`` is a plug-in estimate of I(x;z) bounded by log m (no MWS bias).
    """
    means, logvars = [], []
    for i in range(0, len(x), batch_size):
        rep = _encode(model, jnp.asarray(x[i:i + batch_size]))
        means.append(np.asarray(rep.mean))
        logvars.append(np.asarray(rep.logvar))
    mean, logvar = np.concatenate(means), np.concatenate(logvars)
    kl_dims = np.asarray(kl_to_standard_normal(mean, logvar)).mean(0)
    var = mean.var(0)
    m = min(mi_samples, len(x))
    z = mean[:m] + np.exp(0.5 * logvar[:m]) * np.asarray(
        jax.random.normal(key, (m, mean.shape[1])))
    parts = jax.device_get(_exact_decomposition(jnp.asarray(z), jnp.asarray(mean[:m]),
                                                jnp.asarray(logvar[:m])))
    out = {"kl": float(kl_dims.sum()), "active_units": int((var > ACTIVE_UNIT_THRESHOLD).sum()),
           "mi_max": float(np.log(m))}
    out.update({k: float(parts[k]) for k in ("mi", "tc", "dimwise_kl")})
    out.update({f"kl_{j}": float(v) for j, v in enumerate(kl_dims)})
    out.update({f"au_var_{j}": float(v) for j, v in enumerate(var)})
    return out
