"""The trainer: one jitted step, optax, orbax checkpoints, JSON-lines log, resume.

``train_and_evaluate(config, workdir)`` trains the method ``config.model.name`` on
``config.data.name`` and writes into ``workdir``:

- ``config.json``: the resolved config (a rerun with a different config is refused,
  except for ``train.steps``, so that a run can be extended);
- ``metrics.jsonl``: one JSON object per logged step with ``step``, ``loss``, every loss
  term, ``images_per_sec`` and ``time``;
- ``checkpoints/``: orbax checkpoints of parameters, optimizer state and step.

Randomness depends only on ``(train.seed, step)``: the batch and the method's noise at
step t come from ``fold_in(key(seed), t)``, so a run killed and resumed from a checkpoint
reproduces the uninterrupted run exactly. Host syncs happen only at log and checkpoint
steps. A non-finite loss freezes the parameters inside the step (no update is applied),
and the next sync raises :class:`NonFiniteLossError` naming the first bad step and the
last good checkpoint; nothing is saved from that state.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from disentangle import config as config_lib
from disentangle.data import GroundTruthData, get_dataset
from disentangle.errors import ConfigError, UserError
from disentangle.models import DataSpec, Method, build_model

NO_BAD_STEP = np.iinfo(np.int32).max


class NonFiniteLossError(UserError, FloatingPointError):
    """The loss became NaN or infinite."""


# ----------------------------------------------------------------------------- optimizer
def decay_labels(params: nnx.State) -> Any:
    """'decay' for kernels (weights), 'no_decay' for biases, norm scales and codebooks."""

    def label(path, _):
        names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        names = [n for n in names if isinstance(n, str) and n != "value"]
        return "decay" if names and names[-1] == "kernel" else "no_decay"

    return jax.tree_util.tree_map_with_path(label, params)


def make_optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam or AdamW with weight decay on weights only, optional element-wise clipping.

    ``train.optimizer``: 'adam' | 'adamw'; ``train.weight_decay`` applies to kernels only
    (optax.multi_transform), as QLAE requires; ``train.clip_value > 0`` clips each
    gradient element to [-clip, clip] first.
    """
    lr = train.learning_rate
    if train.optimizer == "adam":
        if train.get("weight_decay", 0.0):
            raise ConfigError("train.weight_decay needs train.optimizer='adamw'")
        core = optax.adam(lr)
    elif train.optimizer == "adamw":
        core = optax.multi_transform(
            {"decay": optax.adamw(lr, weight_decay=train.weight_decay),
             "no_decay": optax.adam(lr)},
            decay_labels)
    else:
        raise ConfigError(f"train.optimizer={train.optimizer!r}; accepted: 'adam', 'adamw'")
    clip = train.get("clip_value", 0.0)
    return optax.chain(optax.clip(clip), core) if clip else core


# ----------------------------------------------------------------------------- state
@dataclasses.dataclass
class Setup:
    """Everything the loop needs, built from a config."""

    config: ml_collections.ConfigDict
    dataset: GroundTruthData
    graphdef: nnx.GraphDef
    params: nnx.State
    rest: nnx.State
    tx: optax.GradientTransformation
    opt_state: Any

    def model(self, params: nnx.State | None = None) -> Method:
        return nnx.merge(self.graphdef, self.params if params is None else params, self.rest)


def setup(config: ml_collections.ConfigDict, dataset: GroundTruthData | None = None) -> Setup:
    """Dataset, freshly initialised model (from ``train.seed``) and optimizer."""
    dataset = dataset or get_dataset(config.data.name, **config.data.get("options", {}))
    model = build_model(config.model, DataSpec.of(dataset), nnx.Rngs(config.train.seed))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config.train)
    return Setup(config, dataset, graphdef, params, rest, tx, tx.init(params))


def step_key(seed: int, step) -> jax.Array:
    """The key of step ``step``: data and noise depend only on (seed, step)."""
    return jax.random.fold_in(jax.random.key(seed), step)


def make_train_step(s: Setup) -> Callable:
    """``step(params, opt_state, bad_step, step[, x]) -> (params, opt_state, bad_step, logs)``.

    With a device sampler the batch is drawn inside the step; otherwise ``x`` is passed.
    ``bad_step`` holds the first step whose loss or gradients were not finite.
    """
    sampler = s.dataset.device_sampler()
    batch_size, seed = s.config.train.batch_size, s.config.train.seed
    graphdef, rest, tx = s.graphdef, s.rest, s.tx

    def step_fn(params, opt_state, bad_step, step, x=None):
        data_key, noise_key = jax.random.split(step_key(seed, step))
        if x is None:
            _, x = sampler(data_key, batch_size)

        def loss_fn(p):
            return nnx.merge(graphdef, p, rest).loss(x, noise_key)

        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, new_opt = tx.update(grads, opt_state, params)
        new_params = optax.apply_updates(params, updates)
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.global_norm(grads))
        keep = lambda new, old: jax.tree.map(lambda a, b: jnp.where(finite, a, b), new, old)
        bad_step = jnp.where(finite, bad_step, jnp.minimum(bad_step, step))
        logs = {"loss": loss, **terms}
        return keep(new_params, params), keep(new_opt, opt_state), bad_step, logs

    return jax.jit(step_fn, donate_argnums=(0, 1))


# ----------------------------------------------------------------------------- run dir
def checkpoint_manager(workdir: Path, keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager((workdir / "checkpoints").absolute(), options=options)


def _target(s: Setup, bad_step) -> dict:
    return {"params": s.params, "opt_state": s.opt_state, "bad_step": bad_step}


def restore_latest(manager: ocp.CheckpointManager, target: dict) -> tuple[int, dict] | None:
    """(step, state) of the latest finalised checkpoint, or None."""
    step = manager.latest_step()
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return step, manager.restore(step, args=ocp.args.StandardRestore(abstract))


def check_config_matches(workdir: Path, config: ml_collections.ConfigDict) -> None:
    """Refuse to resume a run dir written by a different config (steps may differ)."""
    path = workdir / "config.json"
    if not path.exists():
        return
    old = config_lib.flatten(json.loads(path.read_text()))
    new = config_lib.flatten(json.loads(config_lib.to_json(config)))
    diff = sorted(k for k in old.keys() | new.keys()
                  if k != "train.steps" and old.get(k) != new.get(k))
    if diff:
        shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:5])
        raise ConfigError(
            f"{workdir} holds a run with a different config ({shown}). Use another --workdir; "
            "the existing run is left untouched.")


def _truncate_log(path: Path, last_step: int) -> None:
    """Keep the log lines of steps <= last_step (the checkpoint a resume starts from)."""
    if not path.exists():
        return
    keep = [ln for ln in path.read_text().splitlines()
            if ln.strip() and json.loads(ln)["step"] <= last_step]
    path.write_text("".join(ln + "\n" for ln in keep))


def read_log(workdir: str | Path) -> list[dict]:
    path = Path(workdir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]


# ----------------------------------------------------------------------------- loop
class HostBatches:
    """Host-side batches for datasets without a device sampler, prefetched on a thread.

    The batch of step t comes from ``np.random.default_rng([seed, t])``.
    """

    def __init__(self, dataset: GroundTruthData, batch_size: int, seed: int, depth: int = 4):
        from concurrent.futures import ThreadPoolExecutor

        self.dataset, self.batch_size, self.seed, self.depth = dataset, batch_size, seed, depth
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.pending: dict[int, Any] = {}

    def _make(self, step: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, step])
        return self.dataset.sample(self.batch_size, rng)[1]

    def get(self, step: int, last: int) -> np.ndarray:
        for t in range(step, min(step + self.depth, last + 1)):
            if t not in self.pending:
                self.pending[t] = self.pool.submit(self._make, t)
        return self.pending.pop(step).result()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *,
                       progress: bool = True) -> Path:
    """Train (or resume) the run in ``workdir``; returns the run directory."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    check_config_matches(workdir, config)
    tc = config.train
    s = setup(config)
    (workdir / "config.json").write_text(config_lib.to_json(config))

    manager = checkpoint_manager(workdir, tc.get("keep_checkpoints", 3))
    bad_step = jnp.asarray(NO_BAD_STEP, jnp.int32)
    restored = restore_latest(manager, _target(s, bad_step))
    start = 0
    if restored is not None:
        start, state = restored
        s.params, s.opt_state = state["params"], state["opt_state"]
    log_path = workdir / "metrics.jsonl"
    _truncate_log(log_path, start)
    if start >= tc.steps:
        manager.close()
        return workdir

    train_step = make_train_step(s)
    host = None if s.dataset.device_sampler() is not None else HostBatches(
        s.dataset, tc.batch_size, tc.seed)
    params, opt_state = s.params, s.opt_state
    last_saved = start if restored is not None else None
    bar = _progress(start, tc.steps, workdir, progress)
    t_last, step_last = time.perf_counter(), start
    with open(log_path, "a") as log:
        for step in range(start + 1, tc.steps + 1):
            args = (params, opt_state, bad_step, jnp.asarray(step, jnp.int32))
            if host is not None:
                args += (jnp.asarray(host.get(step, tc.steps)),)
            params, opt_state, bad_step, logs = train_step(*args)
            bar.update(1)
            is_log = step % tc.log_every == 0 or step == tc.steps
            is_ckpt = step % tc.checkpoint_every == 0 or step == tc.steps
            if not (is_log or is_ckpt):
                continue
            first_bad = int(bad_step)  # host sync
            if first_bad != NO_BAD_STEP:
                manager.close()
                bar.close()
                where = (f"the last good checkpoint is step {last_saved} in "
                         f"{workdir / 'checkpoints'}" if last_saved is not None
                         else "no checkpoint was written")
                raise NonFiniteLossError(
                    f"non-finite loss or gradients at step {first_bad} of {workdir}; {where}. "
                    "Lower train.learning_rate or check the data.")
            if is_log:
                now = time.perf_counter()
                row = {"step": step, **{k: float(v) for k, v in jax.device_get(logs).items()},
                       "images_per_sec": (step - step_last) * tc.batch_size / (now - t_last),
                       "time": time.time()}
                t_last, step_last = now, step
                log.write(json.dumps(row) + "\n")
                log.flush()
                bar.set_postfix(loss=f"{row['loss']:.4g}", img_s=f"{row['images_per_sec']:.0f}")
            if is_ckpt:
                manager.save(step, args=ocp.args.StandardSave(
                    {"params": params, "opt_state": opt_state, "bad_step": bad_step}))
                manager.wait_until_finished()
                last_saved = step
    bar.close()
    manager.close()
    return workdir


def _progress(start: int, total: int, workdir: Path, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=workdir.name, unit="step", disable=not enabled,
                dynamic_ncols=True, mininterval=0.5)
