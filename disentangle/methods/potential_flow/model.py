"""Latent traversals as potential flows (Song, Keller, Sebe, Welling; ICML 2023).

K scalar potentials u_k(z, t) over the latent space of a frozen generator G (a trained
method's decoder). A traversal of code z_0 along direction k is the gradient flow

    z_{i+1} = z_i + grad_z u_k(z_i, i),   i = 0..H-1.

Each potential is an MLP of [z, emb(t)] (emb: sinusoidal features of t) with a bounded
output u_k = A tanh(MLP_k(z, emb(t))) and smooth (SiLU) hidden units, so its Hessian exists.
Training minimises

    L = w_cls  CE(classifier(G(z_0), G(z_H)), k)               which potential moved it
      + w_pde  mean (d^2u_k/dt^2 - c_k^2 laplacian_z u_k)^2     wave equation, speed c_k
      + w_ic   mean ||grad_z u_k(z_0, 0)||^2                    initial condition
      + w_chg  mean -log(eps + change)                          reward images changing

with change = ||J_G(z_i) (z_{i+1} - z_i)|| / sqrt(pixels) (decoder JVP along the flow, at a
random step i, in image space sigmoid(G)) or ||G(z_H) - G(z_0)|| / sqrt(pixels) ('difference').
laplacian_z u = tr(Hessian) exactly, or by Hutchinson's estimator E_v[v^T H v] with
Rademacher v (unbiased; H v by forward-over-reverse autodiff). c_k = exp(log_c_k) is
learned. Adam 1e-4 for potentials and classifier (the paper's setting; overridable).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from disentangle import xla_options
from disentangle.methods.base import Method
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

    def flow(self, z0: jax.Array, k: jax.Array, num_steps: int) -> jax.Array:
        """Trajectory z_0..z_H of z_{i+1} = z_i + grad u_k(z_i, i): [n, L] -> [H+1, n, L]."""
        zs = [z0]
        for i in range(num_steps):
            t = jnp.full(z0.shape[:1], float(i), z0.dtype)
            zs.append(zs[-1] + self.velocity(zs[-1], t, k))
        return jnp.stack(zs)


class PairClassifier(nnx.Module):
    """Which of K potentials turned image x into x': [n, *obs] x 2 -> logits [n, K].

    The pair is stacked on the channel axis; the network is the dataset's encoder family.
    """

    def __init__(self, observation_shape, num_potentials: int, *, rngs: nnx.Rngs):
        shape = tuple(observation_shape)
        if len(shape) == 3:
            pair_shape, network = (*shape[:2], 2 * shape[2]), "conv64"
            if shape[:2] != (64, 64):
                network = "mlp_small"
        else:
            pair_shape, network = (*shape[:-1], 2 * shape[-1]), "mlp_small"
        self.net = build_encoder(network, pair_shape, num_potentials, rngs)

    def __call__(self, x: jax.Array, x_after: jax.Array) -> jax.Array:
        return self.net(jnp.concatenate([x, x_after], axis=-1))


class FlowModel(nnx.Module):
    """The trainable part: potentials and the pair classifier."""

    def __init__(self, latent_dim, observation_shape, config: PotentialFlowConfig, *,
                 rngs: nnx.Rngs):
        self.potentials = PotentialFlow(latent_dim, config.num_potentials, config.hidden,
                                        config.time_features, config.output_scale,
                                        config.init_speed, rngs=rngs)
        self.classifier = PairClassifier(observation_shape, config.num_potentials, rngs=rngs)


@dataclasses.dataclass
class PotentialFlowConfig:
    """Settings of potential-flow training (defaults: the paper's VAE setting)."""

    num_potentials: int = 16  # K
    num_steps: int = 10  # H
    hidden: int = 128
    time_features: int = 16
    output_scale: float = 1.0  # A in u = A tanh(.)
    init_speed: float = 1.0
    learning_rate: float = 1e-4  # Adam, potentials and classifier
    batch_size: int = 32
    train_steps: int = 5000
    laplacian: str = "exact"  # or "hutchinson"
    num_probes: int = 4  # Hutchinson probes per point
    change: str = "jvp"  # or "difference"
    weight_classification: float = 1.0
    weight_pde: float = 1.0
    weight_ic: float = 1.0
    weight_change: float = 0.1
    change_eps: float = 1e-3
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> PotentialFlowConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            from disentangle.errors import ConfigError
            raise ConfigError(f"unknown potential-flow settings {sorted(unknown)}; "
                              f"accepted: {sorted(names)}")
        return cls(**d)


# --------------------------------------------------------------------------------------
# Loss and training.
# --------------------------------------------------------------------------------------

def flow_loss(flow: FlowModel, decode: Callable[[jax.Array], jax.Array], z0: jax.Array,
              k: jax.Array, key: jax.Array, config: PotentialFlowConfig,
              ) -> tuple[jax.Array, dict[str, jax.Array]]:
    """The training objective on a batch of codes z0 [n, L] and directions k [n] int."""
    n = z0.shape[0]
    h = config.num_steps
    pot = flow.potentials
    key_t, key_i, key_pde, key_j = jax.random.split(key, 4)
    traj = pot.flow(z0, k, h)  # [H+1, n, L]
    image = lambda z: jax.nn.sigmoid(decode(z))  # G in image space [0, 1]
    x0, x_end = image(traj[0]), image(traj[-1])
    pixels = math.prod(x0.shape[1:])

    # Classifier: which potential produced (G(z_0), G(z_H)).
    logits = flow.classifier(x0, x_end)
    classification = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, k))
    accuracy = jnp.mean(jnp.argmax(logits, -1) == k)

    # Wave equation at trajectory points (no gradient into the points) and random times.
    step = jax.random.randint(key_i, (n,), 0, h + 1)
    z_col = jax.lax.stop_gradient(traj[step, jnp.arange(n)])
    t_col = jax.random.uniform(key_t, (n,), minval=0.0, maxval=float(h))
    residual = batch_wave_residual(pot.potential, z_col, t_col, k, pot.speed[k],
                                   config.laplacian, key_pde, config.num_probes)
    pde = jnp.mean(jnp.square(residual))

    # Initial condition: grad_z u_k(z_0, 0) = 0.
    ic = jnp.mean(jnp.sum(jnp.square(pot.velocity(z0, jnp.zeros((n,)), k)), -1))

    # Image change along the flow.
    if config.change == "jvp":
        i = jax.random.randint(key_j, (n,), 0, h)
        z_i = traj[i, jnp.arange(n)]
        dz = traj[i + 1, jnp.arange(n)] - z_i  # the flow step, grad u_k(z_i, i)
        _, tangent = jax.jvp(image, (z_i,), (dz,))  # J_G(z_i) dz: [n, *obs]
        change = jnp.sqrt(jnp.sum(jnp.square(tangent.reshape(n, -1)), -1) / pixels)
    elif config.change == "difference":
        change = jnp.sqrt(jnp.sum(jnp.square((x_end - x0).reshape(n, -1)), -1) / pixels)
    else:
        raise ValueError(f"change {config.change!r}: accepted values are 'jvp', 'difference'")
    change_loss = -jnp.mean(jnp.log(config.change_eps + change))

    loss = (config.weight_classification * classification + config.weight_pde * pde
            + config.weight_ic * ic + config.weight_change * change_loss)
    moved = jnp.mean(jnp.linalg.norm(traj[-1] - traj[0], axis=-1))
    return loss, {"loss": loss, "classification": classification, "accuracy": accuracy,
                  "pde": pde, "ic": ic, "change": jnp.mean(change), "latent_moved": moved,
                  "speed_mean": jnp.mean(pot.speed)}


def _checkpoint_manager(workdir: Path) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(
        (workdir / "checkpoints").resolve(),
        options=ocp.CheckpointManagerOptions(max_to_keep=2, create=True))


def _trim_metrics(path: Path, last_step: int) -> None:
    """Drop log lines past the restored step so a resumed run does not repeat steps."""
    if not path.exists():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line).get("step", 0) <= last_step]
    path.write_text("".join(line + "\n" for line in keep))


def train_potential_flow(model: Method, codes: np.ndarray, observation_shape,
                         config: PotentialFlowConfig, workdir: str | Path,
                         log: Callable[[str], None] | None = print) -> FlowModel:
    """Train potentials and classifier on a frozen ``model``'s decoder; resumable.

    Args:
      model: the trained method; only ``decode`` is used, never updated.
      codes: float32 [n, L], encoded data (``encode(x).mean``); flows start from these.
      observation_shape: the dataset's observation shape (for the classifier).
      workdir: holds ``config.json``, ``metrics.jsonl`` and ``checkpoints/``; a rerun in the
        same directory resumes from the latest checkpoint.
    """
    log = log or (lambda msg: None)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "config.json"
    if config_path.exists():
        stored = json.loads(config_path.read_text())
        mismatch = {k: (v, getattr(config, k)) for k, v in stored.items()
                    if k not in ("train_steps", "log_every", "checkpoint_every")
                    and getattr(config, k, None) != v}
        if mismatch:
            from disentangle.errors import ConfigError
            raise ConfigError(f"{workdir} holds a potential flow trained with other settings "
                              f"(stored, requested): {mismatch}; use another directory")
    config_path.write_text(json.dumps(config.to_dict(), indent=2))

    flow = FlowModel(codes.shape[1], observation_shape, config, rngs=nnx.Rngs(config.seed))
    optimizer = nnx.Optimizer(flow, optax.adam(config.learning_rate), wrt=nnx.Param)
    manager = _checkpoint_manager(workdir)
    start = 0
    if manager.latest_step() is not None:
        start = manager.latest_step()
        restored = manager.restore(start, args=ocp.args.Composite(
            flow=ocp.args.StandardRestore(nnx.state(flow, nnx.Param)),
            optimizer=ocp.args.StandardRestore(nnx.state(optimizer, nnx.OptState))))
        nnx.update(flow, restored["flow"])
        nnx.update(optimizer, restored["optimizer"])
        _trim_metrics(workdir / "metrics.jsonl", start)
        log(f"potential flow: resumed from step {start} in {workdir}")

    decode = model.decode

    @xla_options.nnx_jit
    def train_step(flow, optimizer, z0, k, key):
        grad_fn = nnx.value_and_grad(
            lambda f: flow_loss(f, decode, z0, k, key, config), has_aux=True)
        (_, metrics), grads = grad_fn(flow)
        optimizer.update(flow, grads)
        return metrics

    codes = np.asarray(codes, np.float32)
    base = jax.random.key(config.seed)
    began = time.time()
    with open(workdir / "metrics.jsonl", "a") as metrics_file:
        for step in range(start + 1, config.train_steps + 1):
            key = jax.random.fold_in(base, step)
            key_b, key_k, key_l = jax.random.split(key, 3)
            idx = jax.random.randint(key_b, (config.batch_size,), 0, len(codes))
            k = jax.random.randint(key_k, (config.batch_size,), 0, config.num_potentials)
            metrics = train_step(flow, optimizer, jnp.asarray(codes)[idx], k, key_l)
            if step % config.log_every == 0 or step == config.train_steps:
                row = {"step": step, **{n: float(v) for n, v in metrics.items()},
                       "seconds": time.time() - began}
                metrics_file.write(json.dumps(row) + "\n")
                metrics_file.flush()
                log(f"potential flow: step {step}/{config.train_steps} "
                    + " ".join(f"{n} {row[n]:.4g}" for n in
                               ("loss", "classification", "accuracy", "pde", "ic", "change")))
            if step % config.checkpoint_every == 0 or step == config.train_steps:
                manager.save(step, args=ocp.args.Composite(
                    flow=ocp.args.StandardSave(nnx.state(flow, nnx.Param)),
                    optimizer=ocp.args.StandardSave(nnx.state(optimizer, nnx.OptState))))
    manager.wait_until_finished()
    manager.close()
    return flow


def load_potential_flow(workdir: str | Path, latent_dim: int, observation_shape) -> FlowModel:
    """The trained FlowModel at the latest checkpoint of ``workdir``."""
    workdir = Path(workdir)
    config = PotentialFlowConfig.from_dict(json.loads((workdir / "config.json").read_text()))
    flow = FlowModel(latent_dim, observation_shape, config, rngs=nnx.Rngs(config.seed))
    manager = _checkpoint_manager(workdir)
    step = manager.latest_step()
    if step is None:
        from disentangle.errors import UserError
        raise UserError(f"{workdir} has no potential-flow checkpoint; train it first")
    restored = manager.restore(step, args=ocp.args.Composite(
        flow=ocp.args.StandardRestore(nnx.state(flow, nnx.Param))))
    nnx.update(flow, restored["flow"])
    manager.close()
    return flow


# --------------------------------------------------------------------------------------
# Using a trained flow.
# --------------------------------------------------------------------------------------

@xla_options.jit_apply(static_argnums=3)
def _trajectories(potentials: PotentialFlow, z0: jax.Array, k: jax.Array, num_steps: int):
    return potentials.flow(z0, k, num_steps)


def flow_codes(potentials: PotentialFlow, seed_codes: np.ndarray, num_steps: int) -> np.ndarray:
    """Codes along every flow from every seed: [s, L] -> float32 [s, K, H+1, L]."""
    s, dim = seed_codes.shape
    kk = potentials.num_potentials
    z0 = jnp.repeat(jnp.asarray(seed_codes, jnp.float32), kk, axis=0)  # [s*K, L]
    k = jnp.tile(jnp.arange(kk), s)
    traj = np.asarray(_trajectories(potentials, z0, k, num_steps))  # [H+1, s*K, L]
    return np.transpose(traj.reshape(num_steps + 1, s, kk, dim), (1, 2, 0, 3))


def flow_traversals(flow: FlowModel, model: Method, seed_codes: np.ndarray,
                    num_steps: int) -> Traversals:
    """Decoded potential-flow traversals: images [s, K, H+1, *obs]."""
    z = flow_codes(flow.potentials, seed_codes, num_steps)
    return Traversals(images=decode_images(model, z), latents=z,
                      row_labels=[f"k{k}" for k in range(z.shape[1])], kind="potential_flow")


def classifier_accuracy(flow: FlowModel, model: Method, codes: np.ndarray, num_steps: int,
                        batch_size: int = 64) -> float:
    """Accuracy of the pair classifier on flows from the given codes, all K directions."""
    z = flow_codes(flow.potentials, codes, num_steps)  # [n, K, H+1, L]
    x0 = decode_images(model, z[:, :, 0])
    x1 = decode_images(model, z[:, :, -1])
    n, kk = z.shape[:2]
    x0, x1 = x0.reshape(n * kk, *x0.shape[2:]), x1.reshape(n * kk, *x1.shape[2:])
    labels = np.tile(np.arange(kk), n)
    pred = np.concatenate([np.asarray(_classify(flow.classifier, jnp.asarray(x0[i:i + batch_size]),
                                                jnp.asarray(x1[i:i + batch_size])))
                           for i in range(0, len(x0), batch_size)])
    return float(np.mean(pred == labels))


@xla_options.jit_apply
def _classify(classifier: PairClassifier, x0: jax.Array, x1: jax.Array) -> jax.Array:
    return jnp.argmax(classifier(x0, x1), axis=-1)
