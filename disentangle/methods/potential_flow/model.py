"""Latent traversals as potential flows (Song, Keller, Sebe, Welling; ICML 2023).

K scalar potentials u_k(z, t) over the latent space of a frozen generator G (the decoder
of a trained run, ``model.base_run``). The flow of code z_0 along direction k is

    z_{i+1} = z_i + grad_z u_k(z_i, i),   i = 0..T-1,   T = H / 2,

and a traversal is two-sided, z_{-T}..z_0..z_T (H + 1 frames; the backward half descends
the potential), as in the authors' code. Each potential is an MLP of [z, emb(t)] (emb:
sinusoidal features of t) with a bounded output u_k = A tanh(MLP_k(z, emb(t))) and smooth
(SiLU) hidden units, so its Hessian exists. The objective (``loss``), on start codes z_0
drawn inside it (the base run's encoding ``encode(x).mean`` of the batch, or N(0, I)) and
directions k ~ U{0..K-1}:

    L = w_cls  CE(classifier(G(z_a), G(z_b)), k)               which potential moved it
      + w_pde  mean (d^2u_k/dt^2 - c_k^2 laplacian_z u_k)^2     wave equation, speed c_k
      + w_ic   mean ||grad_z u_k(z_0, 0)||^2                    initial condition
      + w_chg  mean -log(eps + change)                          reward images changing

Classifier pairs (``classifier_pairs``): 'consecutive' (the authors' code) shows two
consecutive steps (z_a, z_b) = (z_{t+1}, z_{t+2}) at t ~ U{0..T-2}, with probability 1/2
mirrored through z_0, (2 z_0 - z_{t+2}, 2 z_0 - z_{t+1}) (same latent displacement, on
the other side); 'endpoints' shows (z_0, z_T). change = ||J_G(z_i) (z_{i+1} - z_i)|| /
sqrt(pixels) (decoder JVP along the flow at a random step i, image space sigmoid(G)) or
||G(z_T) - G(z_0)|| / sqrt(pixels) ('difference'). laplacian_z u = tr(Hessian) exactly, or
by Hutchinson's estimator E_v[v^T H v] with Rademacher v (unbiased; H v by
forward-over-reverse autodiff). c_k = exp(log_c_k) is learned. Potentials and classifier
form one parameter group ``flow`` (Adam 1e-4 in the paper); the base run's parameters are
in no group, so they stay frozen. Trained by :func:`disentangle.train.train_and_evaluate`
(``configs/potential_flow.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

from disentangle import xla_options
from disentangle.errors import ConfigError
from disentangle.methods.base import (
    Batch,
    DataSpec,
    Method,
    Representation,
    Update,
    register_model,
)
from disentangle.nn import build_encoder
from disentangle.traverse.common import Traversals, decode_images

# --------------------------------------------------------------------------------------
# The wave-equation residual, for any scalar u(z [L], t []) -> [].
# --------------------------------------------------------------------------------------

ScalarField = Callable[[jax.Array, jax.Array], jax.Array]


def laplacian(u: ScalarField, z: jax.Array, t: jax.Array, mode: str = "exact",
              key: jax.Array | None = None, num_probes: int = 1) -> jax.Array:
    """laplacian_z u(z, t) for one point z [L]: exact Hessian trace or Hutchinson estimate.

    exact:       sum_j d^2 u / dz_j^2 = tr(H)
    hutchinson:  (1/M) sum_m v_m^T H v_m,  v_m ~ Rademacher^L  (E[v v^T] = I, so unbiased)
    """
    if mode == "exact":
        return jnp.trace(jax.hessian(u, argnums=0)(z, t))
    if mode == "hutchinson":
        if key is None:
            raise ValueError("hutchinson laplacian needs a PRNG key")
        v = jax.random.rademacher(key, (num_probes, z.shape[0]), dtype=z.dtype)
        grad_z = lambda zz: jax.grad(u, argnums=0)(zz, t)
        hv = jax.vmap(lambda vm: jax.jvp(grad_z, (z,), (vm,))[1])(v)  # H v_m: [M, L]
        return jnp.mean(jnp.sum(v * hv, axis=-1))
    raise ValueError(f"laplacian mode {mode!r}: accepted values are 'exact', 'hutchinson'")


def wave_residual(u: ScalarField, z: jax.Array, t: jax.Array, speed: jax.Array,
                  mode: str = "exact", key: jax.Array | None = None,
                  num_probes: int = 1) -> jax.Array:
    """u_tt - c^2 laplacian_z u at one point (z [L], t [], c [])."""
    u_tt = jax.grad(jax.grad(u, argnums=1), argnums=1)(z, t)
    return u_tt - jnp.square(speed) * laplacian(u, z, t, mode, key, num_probes)


def batch_wave_residual(u: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
                        z: jax.Array, t: jax.Array, k: jax.Array, speed: jax.Array,
                        mode: str = "exact", key: jax.Array | None = None,
                        num_probes: int = 1) -> jax.Array:
    """Residuals [n] of potentials u(z, t, k) at points z [n, L], t [n], k [n], c [n]."""
    keys = jax.random.split(key if key is not None else jax.random.key(0), z.shape[0])

    def one(zi, ti, ki, ci, kk):
        return wave_residual(lambda zz, tt: u(zz, tt, ki), zi, ti, ci, mode, kk, num_probes)

    return jax.vmap(one)(z, t, k, speed, keys)


# --------------------------------------------------------------------------------------
# The K potentials.
# --------------------------------------------------------------------------------------

def sinusoidal_embedding(t: jax.Array, num_features: int, max_period: float = 100.0) -> jax.Array:
    """[sin(w_j t), cos(w_j t)] with w_j = max_period^(-j / (F/2)), j < F/2: [] -> [F]."""
    half = num_features // 2
    freqs = jnp.exp(-math.log(max_period) * jnp.arange(half) / max(half, 1))
    angles = t * freqs
    return jnp.concatenate([jnp.sin(angles), jnp.cos(angles)])


class PotentialFlow(nnx.Module):
    """K potentials u_k(z, t) = A tanh(MLP_k([z, emb(t)])) and learnable speeds c_k.

    Parameters of the K MLPs are stacked along a leading K axis, so one potential is
    evaluated by indexing them with k (vmap-friendly).
    """

    def __init__(self, latent_dim: int, num_potentials: int = 16, hidden: int = 128,
                 time_features: int = 16, output_scale: float = 1.0, init_speed: float = 1.0,
                 *, rngs: nnx.Rngs):
        self.latent_dim = latent_dim
        self.num_potentials = num_potentials
        self.time_features = time_features
        self.output_scale = output_scale
        k, d_in = num_potentials, latent_dim + time_features
        init = nnx.initializers.lecun_normal()
        self.w1 = nnx.Param(jax.vmap(lambda r: init(r, (d_in, hidden)))(
            jax.random.split(rngs.params(), k)))
        self.b1 = nnx.Param(jnp.zeros((k, hidden)))
        self.w2 = nnx.Param(jax.vmap(lambda r: init(r, (hidden, hidden)))(
            jax.random.split(rngs.params(), k)))
        self.b2 = nnx.Param(jnp.zeros((k, hidden)))
        self.w3 = nnx.Param(jax.vmap(lambda r: init(r, (hidden, 1)))(
            jax.random.split(rngs.params(), k))[..., 0])
        self.b3 = nnx.Param(jnp.zeros((k,)))
        self.log_speed = nnx.Param(jnp.full((k,), math.log(init_speed)))  # c_k = exp(.)

    @property
    def speed(self) -> jax.Array:
        """c_k, [K]."""
        return jnp.exp(self.log_speed[...])

    def potential(self, z: jax.Array, t: jax.Array, k: jax.Array) -> jax.Array:
        """u_k(z, t) for one point: z [L], t [], k [] int -> []."""
        h = jnp.concatenate([z, sinusoidal_embedding(t, self.time_features)])
        h = jax.nn.silu(h @ self.w1[...][k] + self.b1[...][k])
        h = jax.nn.silu(h @ self.w2[...][k] + self.b2[...][k])
        return self.output_scale * jnp.tanh(h @ self.w3[...][k] + self.b3[...][k])

    def velocity(self, z: jax.Array, t: jax.Array, k: jax.Array) -> jax.Array:
        """grad_z u_k(z, t) for a batch: z [n, L], t [n], k [n] -> [n, L]."""
        return jax.vmap(jax.grad(self.potential, argnums=0))(z, t, k)

    def flow(self, z0: jax.Array, k: jax.Array, num_steps: int,
             step_size: float | jax.Array = 1.0) -> jax.Array:
        """z_{i+1} = z_i + s grad_z u_k(z_i, i), i < num_steps: [n, L] -> [num_steps+1, n, L].

        ``step_size`` s = 1 is the trained flow; s = -1 descends the potential (the
        traversal's backward half); other s rescale the steps (length matching).
        """
        zs = [z0]
        for i in range(num_steps):
            t = jnp.full(z0.shape[:1], float(i), z0.dtype)
            zs.append(zs[-1] + step_size * self.velocity(zs[-1], t, k))
        return jnp.stack(zs)

    def traversal(self, z0: jax.Array, k: jax.Array, half_steps: int,
                  step_size: float | jax.Array = 1.0) -> jax.Array:
        """Two-sided traversal z_{-T}..z_0..z_T (T = half_steps): [n, L] -> [2T+1, n, L].

        z_{+i} follow the flow with step s, z_{-i} the flow with step -s (as the reference
        code's positive and negative directions).
        """
        forward = self.flow(z0, k, half_steps, step_size)
        backward = self.flow(z0, k, half_steps, -step_size)
        return jnp.concatenate([backward[:0:-1], forward])


class PairClassifier(nnx.Module):
    """Which of K potentials turned image x into x': [n, *obs] x 2 -> logits [n, K].

    The pair is stacked on the channel axis. ``network`` is an encoder of the registry;
    '' picks conv64 for 64x64 images and mlp_small otherwise.
    """

    def __init__(self, observation_shape: Sequence[int], num_potentials: int,
                 network: str = "", *, rngs: nnx.Rngs):
        shape = tuple(observation_shape)
        pair_shape = (*shape[:-1], 2 * shape[-1])
        if not network:
            network = "conv64" if len(shape) == 3 and shape[:2] == (64, 64) else "mlp_small"
        self.net = build_encoder(network, pair_shape, num_potentials, rngs)

    def __call__(self, x: jax.Array, x_after: jax.Array) -> jax.Array:
        return self.net(jnp.concatenate([x, x_after], axis=-1))


PAIRS = ("consecutive", "endpoints")
STARTS = ("encoded", "prior")
LAPLACIANS = ("exact", "hutchinson")
CHANGES = ("jvp", "difference")


def classifier_pairs(traj: jax.Array, mode: str, key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The codes (z_a, z_b) [n, L] whose images the pair classifier sees.

    Args:
      traj: flows z_0..z_T, [T+1, n, L].
      mode: 'consecutive': (z_{t+1}, z_{t+2}), t ~ U{0..T-2} per example, mirrored with
        probability 1/2 to (2 z_0 - z_{t+2}, 2 z_0 - z_{t+1}); 'endpoints': (z_0, z_T).
    """
    if mode == "endpoints":
        return traj[0], traj[-1]
    if mode != "consecutive":
        raise ConfigError(f"model.classifier_pairs={mode!r}; accepted: {', '.join(PAIRS)}")
    horizon, n = traj.shape[0] - 1, traj.shape[1]
    key_t, key_m = jax.random.split(key)
    t = jax.random.randint(key_t, (n,), 0, horizon - 1)
    rows = jnp.arange(n)
    za, zb = traj[t + 1, rows], traj[t + 2, rows]
    mirror = jax.random.bernoulli(key_m, 0.5, (n, 1))
    z0 = traj[0]
    return jnp.where(mirror, 2 * z0 - zb, za), jnp.where(mirror, 2 * z0 - za, zb)


def _choice(name: str, value: str, accepted: Sequence[str]) -> str:
    if value not in accepted:
        raise ConfigError(f"model.{name}={value!r}; accepted: {', '.join(accepted)}")
    return value


@register_model("potential_flow")
class PotentialFlows(Method):
    """K potentials and the pair classifier on the frozen run ``base`` (see module doc).

    ``encode``/``decode`` are the base run's, so the flow run traverses like its base.
    """

    def __init__(self, base: Method, observation_shape: Sequence[int], *,
                 num_potentials: int = 16, num_steps: int = 10, hidden: int = 128,
                 time_features: int = 16, output_scale: float = 1.0, init_speed: float = 1.0,
                 classifier_network: str = "", laplacian: str = "exact", num_probes: int = 4,
                 change: str = "jvp", change_eps: float = 1e-3,
                 weight_classification: float = 1.0, weight_pde: float = 1.0,
                 weight_ic: float = 1.0, weight_change: float = 0.1, start: str = "encoded",
                 classifier_pairs: str = "consecutive", rngs: nnx.Rngs):
        self.classifier_pairs = _choice("classifier_pairs", classifier_pairs, PAIRS)
        self.start = _choice("start", start, STARTS)
        self.laplacian = _choice("laplacian", laplacian, LAPLACIANS)
        self.change = _choice("change", change, CHANGES)
        least = 4 if classifier_pairs == "consecutive" else 2
        if num_steps < least or num_steps % 2:
            raise ConfigError(
                f"model.num_steps={num_steps}: the traversal length H must be even and >= "
                f"{least} (flows are trained over H/2 steps; consecutive pairs need H/2 >= 2)")
        if num_potentials < 2:
            raise ConfigError(f"model.num_potentials={num_potentials}; accepted: >= 2")
        self.base = base
        self.latent_dim = base.latent_dim
        self.num_steps = int(num_steps)
        self.num_probes = int(num_probes)
        self.change_eps = float(change_eps)
        self.weights = (float(weight_classification), float(weight_pde), float(weight_ic),
                        float(weight_change))
        self.potentials = PotentialFlow(base.latent_dim, num_potentials, hidden, time_features,
                                        output_scale, init_speed, rngs=rngs)
        self.classifier = PairClassifier(observation_shape, num_potentials, classifier_network,
                                         rngs=rngs)

    @property
    def horizon(self) -> int:
        """T = H / 2, the number of trained flow steps."""
        return self.num_steps // 2

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs):
        from disentangle.runs import load_run  # runs imports the trainer, which imports us

        if not config.get("base_run"):
            raise ConfigError("model.base_run is empty; name the trained run whose decoder the "
                              "flows traverse, e.g. model.base_run=runs/beta_vae_dsprites")
        base = load_run(config.base_run)
        base_shape = tuple(base.dataset.observation_shape)
        if base_shape != tuple(spec.observation_shape):
            raise ConfigError(
                f"model.base_run={config.base_run!r} was trained on {base.config.data.name!r} "
                f"(observations {base_shape}) but this config's data section gives "
                f"{tuple(spec.observation_shape)}; set data.name={base.config.data.name}")
        keys = ("num_potentials", "num_steps", "hidden", "time_features", "output_scale",
                "init_speed", "classifier_network", "laplacian", "num_probes", "change",
                "change_eps", "weight_classification", "weight_pde", "weight_ic",
                "weight_change", "start", "classifier_pairs")
        settings = {k: config[k] for k in keys if k in config}
        return cls(base.model, spec.observation_shape, **settings, rngs=rngs)

    def param_groups(self):
        return {"flow": nnx.All(nnx.Param, nnx.Not(nnx.PathContains("base")))}

    def schedule(self, step: int) -> tuple[Update, ...]:
        return (Update("flow", "loss"),)

    def encode(self, x: jax.Array) -> Representation:
        return self.base.encode(x)

    def decode(self, z: jax.Array) -> jax.Array:
        return self.base.decode(z)

    def image(self, z: jax.Array) -> jax.Array:
        """G in image space, sigmoid(decode(z)) in [0, 1] (the base decodes logits)."""
        return jax.nn.sigmoid(self.base.decode(z))

    def start_codes(self, x: jax.Array, key: jax.Array) -> jax.Array:
        """z_0 [n, L]: ``encode(x).mean`` of the frozen base ('encoded') or N(0, I) ('prior')."""
        if self.start == "prior":
            return jax.random.normal(key, (x.shape[0], self.latent_dim), x.dtype)
        return jax.lax.stop_gradient(self.base.encode(x).mean)

    def loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        key_z, key_k, key_loss = jax.random.split(key, 3)
        z0 = self.start_codes(batch.x, key_z)
        k = jax.random.randint(key_k, z0.shape[:1], 0, self.potentials.num_potentials)
        return self.flow_loss(z0, k, key_loss)

    def flow_loss(self, z0: jax.Array, k: jax.Array, key: jax.Array
                  ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """The objective on start codes z0 [n, L] and directions k [n] int."""
        n, horizon, pot = z0.shape[0], self.horizon, self.potentials
        key_t, key_i, key_pde, key_j, key_pair = jax.random.split(key, 5)
        traj = pot.flow(z0, k, horizon)  # [T+1, n, L]

        # Classifier: which potential produced the pair.
        za, zb = classifier_pairs(traj, self.classifier_pairs, key_pair)
        logits = self.classifier(self.image(za), self.image(zb))
        classification = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, k))
        accuracy = jnp.mean(jnp.argmax(logits, -1) == k)

        # Wave equation at trajectory points (no gradient into the points), random times.
        step = jax.random.randint(key_i, (n,), 0, horizon + 1)
        z_col = jax.lax.stop_gradient(traj[step, jnp.arange(n)])
        t_col = jax.random.uniform(key_t, (n,), minval=0.0, maxval=float(horizon))
        residual = batch_wave_residual(pot.potential, z_col, t_col, k, pot.speed[k],
                                       self.laplacian, key_pde, self.num_probes)
        pde = jnp.mean(jnp.square(residual))

        # Initial condition: grad_z u_k(z_0, 0) = 0.
        ic = jnp.mean(jnp.sum(jnp.square(pot.velocity(z0, jnp.zeros((n,)), k)), -1))

        # Image change along the flow.
        if self.change == "jvp":
            i = jax.random.randint(key_j, (n,), 0, horizon)
            z_i = traj[i, jnp.arange(n)]
            dz = traj[i + 1, jnp.arange(n)] - z_i  # the flow step, grad u_k(z_i, i)
            _, tangent = jax.jvp(self.image, (z_i,), (dz,))  # J_G(z_i) dz: [n, *obs]
        else:
            tangent = self.image(traj[-1]) - self.image(traj[0])
        pixels = math.prod(tangent.shape[1:])
        # + 1e-12: d sqrt(s)/ds is infinite at s = 0, so a zero tangent (a stalled flow, or
        # a decoder flat at z_i) made the gradients NaN (a QLAE flow of the --cpu study).
        change = jnp.sqrt(jnp.sum(jnp.square(tangent.reshape(n, -1)), -1) / pixels + 1e-12)
        change_loss = -jnp.mean(jnp.log(self.change_eps + change))

        w_cls, w_pde, w_ic, w_chg = self.weights
        loss = w_cls * classification + w_pde * pde + w_ic * ic + w_chg * change_loss
        moved = jnp.mean(jnp.linalg.norm(traj[-1] - traj[0], axis=-1))
        return loss, {"classification": classification, "accuracy": accuracy, "pde": pde,
                      "ic": ic, "change": jnp.mean(change), "latent_moved": moved,
                      "speed_mean": jnp.mean(pot.speed)}


# --------------------------------------------------------------------------------------
# Using a trained flow (pure evaluation programs).
# --------------------------------------------------------------------------------------

@xla_options.jit_apply(static_argnums=3)
def _traversal(potentials: PotentialFlow, z0: jax.Array, k: jax.Array, half_steps: int,
               step_size: jax.Array) -> jax.Array:
    return potentials.traversal(z0, k, half_steps, step_size)


def flow_codes(potentials: PotentialFlow, seed_codes: np.ndarray, half_steps: int,
               step_size: float = 1.0) -> np.ndarray:
    """Two-sided traversals of every direction from every seed: [s, L] -> [s, K, 2T+1, L]."""
    s, dim = seed_codes.shape
    kk = potentials.num_potentials
    z0 = jnp.repeat(jnp.asarray(seed_codes, jnp.float32), kk, axis=0)  # [s*K, L]
    k = jnp.tile(jnp.arange(kk), s)
    traj = np.asarray(_traversal(potentials, z0, k, half_steps,
                                 jnp.asarray(step_size, jnp.float32)))  # [2T+1, s*K, L]
    return np.transpose(traj.reshape(2 * half_steps + 1, s, kk, dim), (1, 2, 0, 3))


def traversal_length(latents: np.ndarray) -> float:
    """Mean end-to-end latent displacement ||z_last - z_first|| of traversals [..., S, L]."""
    return float(np.linalg.norm(latents[..., -1, :] - latents[..., 0, :], axis=-1).mean())


def matched_step_size(potentials: PotentialFlow, seed_codes: np.ndarray, half_steps: int,
                      target_length: float, iterations: int = 5) -> float:
    """Step size s whose flow traversals have mean end-to-end length ``target_length``.

    Fixed-point iteration s <- s * target / length(s) from s = 1 (the length is not exactly
    proportional to s, since the field is evaluated at the points reached).
    """
    step = 1.0
    for _ in range(iterations):
        length = traversal_length(flow_codes(potentials, seed_codes, half_steps, step))
        if length <= 0:
            break
        step *= target_length / length
    return step


def flow_traversals(flows: PotentialFlows, seed_codes: np.ndarray,
                    step_size: float = 1.0) -> Traversals:
    """Decoded two-sided traversals of a trained flow run: images [s, K, H+1, *obs]."""
    z = flow_codes(flows.potentials, seed_codes, flows.horizon, step_size)
    return Traversals(images=decode_images(flows.base, z), latents=z,
                      row_labels=[f"k{k}" for k in range(z.shape[1])], kind="potential_flow")


@xla_options.jit_apply
def _pair_predictions(flows: PotentialFlows, z0: jax.Array, k: jax.Array, key: jax.Array
                      ) -> jax.Array:
    traj = flows.potentials.flow(z0, k, flows.horizon)
    za, zb = classifier_pairs(traj, flows.classifier_pairs, key)
    return jnp.argmax(flows.classifier(flows.image(za), flows.image(zb)), axis=-1)


def classifier_accuracy(flows: PotentialFlows, codes: np.ndarray, seed: int = 0,
                        batch_size: int = 256) -> float:
    """Accuracy of the pair classifier on flows of all K directions from ``codes`` [n, L],
    with pairs drawn as in training (chance: 1/K)."""
    kk = flows.potentials.num_potentials
    z0 = np.repeat(np.asarray(codes, np.float32), kk, axis=0)
    k = np.tile(np.arange(kk), len(codes))
    key = jax.random.key(seed)
    pred = [np.asarray(_pair_predictions(flows, jnp.asarray(z0[i:i + batch_size]),
                                         jnp.asarray(k[i:i + batch_size]),
                                         jax.random.fold_in(key, i)))
            for i in range(0, len(z0), batch_size)]
    return float(np.mean(np.concatenate(pred) == k))
