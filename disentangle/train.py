"""The trainer: one jitted step, optax, orbax checkpoints, JSON-lines log, resume.

``train_and_evaluate(config, workdir)`` trains the method ``config.model.name`` on
``config.data.name`` and writes into ``workdir``. It is the one training loop of the
workbench: single-loss methods and methods with several optimizers or stages (SCAN on a
frozen beta-VAE, DR-RFF's Q/G and F steps, potential flows, FactorVAE's discriminator)
alike, through the method interface of :mod:`disentangle.methods.base` (parameter groups,
their optimizers, and the schedule of updates at each step). It writes:

- ``config.json``: the resolved config (a rerun with a different config is refused,
  except for ``train.steps``, so that a run can be extended);
- ``metrics.jsonl``: one JSON object per logged step with ``step``, ``loss``, every loss
  term, ``images_per_sec`` and ``time``;
- ``checkpoints/``: orbax checkpoints of every parameter group, its optimizer state, and
  the step.

Randomness depends only on ``(train.seed, step)``: the batch and the method's noise at
step t come from ``fold_in(key(seed), t)``, so a run killed and resumed from a checkpoint
reproduces the uninterrupted run exactly.

Scale (docs/performance.md): with more than one device the batch is sharded over a 1-D
``data`` mesh and parameters are replicated (``train.batch_size`` must divide by the device
count). ``train.num_seeds=S`` and ``train.vmap_key``/``train.vmap_values`` train several
members (seeds x values of one scalar ``model.*`` hyperparameter) as one ``jax.vmap``-ed
program; each member writes an ordinary run directory ``workdir/<member>/`` equal (up to
float tolerance) to the separate run of its own config. Host syncs happen only at log and checkpoint
steps. A non-finite loss or gradient records the first bad step inside the step, and the
next sync raises :class:`NonFiniteLossError` naming it and the last good checkpoint,
before anything from that state is logged or saved.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import warnings
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
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from disentangle import config as config_lib
from disentangle import xla_options
from disentangle.data import GroundTruthData, get_dataset
from disentangle.errors import ConfigError, UserError
from disentangle.methods import Batch, DataSpec, Method, Update, build_model
from disentangle.tracking import Tracker, read_log, truncate_log  # noqa: F401  (read_log: API)

NO_BAD_STEP = np.iinfo(np.int32).max


class NonFiniteLossError(UserError, FloatingPointError):
    """The loss became NaN or infinite."""


# ----------------------------------------------------------------------------- state
@dataclasses.dataclass
class Setup:
    """Everything the loop needs, built from a config.

    ``params`` and ``opt_state`` map each parameter group of the method to its state;
    ``rest`` holds everything else (frozen parameters, non-trainable variables).
    """

    config: ml_collections.ConfigDict
    dataset: GroundTruthData
    graphdef: nnx.GraphDef
    params: dict[str, nnx.State]
    rest: nnx.State
    txs: dict[str, optax.GradientTransformation]
    opt_state: dict[str, Any]
    schedule: Callable[[int], tuple[Update, ...]]
    mesh: Mesh | None = None  # data-parallel mesh when more than one device is present
    source: Any = None  # training batches: ``model.training_data(dataset)``

    def model(self, params: dict[str, nnx.State] | None = None) -> Method:
        params = self.params if params is None else params
        return nnx.merge(self.graphdef, *(params[g] for g in self.txs), self.rest)


def data_mesh(batch_size: int, devices: list | None = None) -> Mesh | None:
    """A 1-D ``data`` mesh over all devices (None for one device).

    The batch axis is sharded over it and parameters are replicated; ``batch_size`` must
    divide evenly over the devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    n = len(devices)
    if n == 1:
        return None
    if batch_size % n:
        ok = [k * n for k in range(max(1, batch_size // n - 1), batch_size // n + 3)]
        raise ConfigError(
            f"train.batch_size={batch_size} does not divide over the {n} devices of the data "
            f"mesh; accepted: multiples of {n} (e.g. {', '.join(map(str, ok))}).")
    return jax.make_mesh((n,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                         devices=devices)


def replicate(tree: Any, mesh: Mesh | None) -> Any:
    """Place every leaf of ``tree`` replicated on the mesh (no-op without a mesh)."""
    if mesh is None:
        return tree
    return jax.device_put(tree, NamedSharding(mesh, P()))


def shard_batch(x: jax.Array, mesh: Mesh | None, batch_axis: int = 0) -> jax.Array:
    """Shard axis ``batch_axis`` of ``x`` over the mesh's ``data`` axis (works in jit)."""
    if mesh is None:
        return x
    spec = NamedSharding(mesh, P(*([None] * batch_axis), "data"))
    if isinstance(x, jax.core.Tracer):
        return jax.lax.with_sharding_constraint(x, spec)
    return jax.device_put(x, spec)


def setup(config: ml_collections.ConfigDict, dataset: GroundTruthData | None = None) -> Setup:
    """Dataset, freshly initialised model (from ``train.seed``) and its optimizers.

    With more than one device, parameters and optimizer states are replicated on the data
    mesh.
    """
    dataset = dataset or get_dataset(config.data.name, **config.data.get("options", {}))
    mesh = data_mesh(config.train.batch_size)
    model = build_model(config.model, DataSpec.of(dataset), nnx.Rngs(config.train.seed))
    groups = model.param_groups()
    txs = model.optimizers(config.train)
    if set(txs) != set(groups):
        raise ConfigError(f"model {config.model.name!r}: optimizers {sorted(txs)} do not match "
                          f"its parameter groups {sorted(groups)}")
    txs = {g: txs[g] for g in groups}
    graphdef, *states, rest = nnx.split(model, *groups.values(), ...)
    params = replicate(dict(zip(groups, states)), mesh)
    opt_state = replicate({g: txs[g].init(params[g]) for g in groups}, mesh)
    return Setup(config, dataset, graphdef, params, replicate(rest, mesh), txs, opt_state,
                 model.schedule, mesh, model.training_data(dataset))


def step_key(seed: int, step) -> jax.Array:
    """The key of step ``step``: data and noise depend only on (seed, step)."""
    return jax.random.fold_in(jax.random.key(seed), step)


def _update(graphdef: nnx.GraphDef, txs: dict[str, optax.GradientTransformation], sampler,
            batch_size: int, mesh: Mesh | None, updates: tuple[Update, ...],
            hyper_name: str = "") -> Callable:
    """One member's step ``(params, opt_state, rest, bad_step, seed, hyper, step, batch)``.

    Applies ``updates`` in order: update i takes the gradient of the objective
    ``model.<objective>(batch, key_i)`` with respect to its group's parameters (the other
    groups as updated so far, held fixed) and one step of that group's optimizer. Key 0 is
    the step's noise key, key i > 0 ``fold_in(noise_key, i)``. ``hyper`` replaces the model
    attribute ``hyper_name`` (a vmapped scalar hyperparameter) when it is set.
    Logs: ``loss`` (the first update's objective), every objective by name when there are
    several, and every term.
    """
    groups = tuple(txs)

    def update(params, opt_state, rest, bad_step, seed, hyper, step, batch=None):
        data_key, noise_key = jax.random.split(step_key(seed, step))
        if batch is None:
            factors, x = sampler(data_key, batch_size)
            batch = Batch(x, factors)
        batch = jax.tree.map(lambda a: shard_batch(a, mesh), batch).replace(step=step)
        params, opt_state = dict(params), dict(opt_state)
        finite, logs = jnp.asarray(True), {}
        for i, u in enumerate(updates):
            key = noise_key if i == 0 else jax.random.fold_in(noise_key, i)

            def loss_fn(p, u=u, key=key):
                model = nnx.merge(graphdef, *(p if g == u.group else params[g] for g in groups),
                                  rest)
                if hyper_name:  # the traced value of this member (the module is ephemeral)
                    object.__setattr__(model, hyper_name, hyper)
                return getattr(model, u.objective)(batch, key)

            (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params[u.group])
            delta, opt_state[u.group] = txs[u.group].update(grads, opt_state[u.group],
                                                            params[u.group])
            params[u.group] = optax.apply_updates(params[u.group], delta)
            finite &= jnp.isfinite(loss) & jnp.isfinite(optax.global_norm(grads))
            logs.setdefault("loss", loss)
            if len(updates) > 1:
                logs[u.objective] = loss
            logs.update(terms)
        # The update is applied even when this step is bad: the loop raises at its next
        # sync before logging or saving anything, so no later state is ever kept. Selecting
        # old vs new state here (a freeze) made XLA copy the Adam moments every step: 1.40x
        # slower for the 14M-parameter MLP, 1.02x for conv64 (docs/performance.md).
        bad_step = jnp.where(finite, bad_step, jnp.minimum(bad_step, step))
        return params, opt_state, bad_step, logs

    return update


def make_train_step(s: Setup, updates: tuple[Update, ...]) -> Callable:
    """``step(params, opt_state, bad_step, step[, batch]) -> (params, opt_state, bad_step,
    logs)`` applying ``updates`` (one stage of the method's schedule).

    With a device sampler the batch is drawn inside the step; otherwise ``batch`` is passed.
    ``bad_step`` holds the first step whose loss or gradients were not finite. With a data
    mesh (``s.mesh``) the batch is sharded over it inside the step.
    """
    update = _update(s.graphdef, s.txs, s.source.device_sampler(), s.config.train.batch_size,
                     s.mesh, updates)
    return BoundStep(update, s.rest, jnp.asarray(s.config.train.seed, jnp.int32), None)


class BoundStep:
    """The jitted ``update(params, opt_state, rest, bad_step, seed, hyper, step, batch)`` of
    :func:`_update` with a run's ``rest, seed, hyper`` bound as *arguments*, called as
    ``step(params, opt_state, bad_step, step[, batch])`` (``lower`` likewise).

    Values a jitted function closes over become constants of its program when they are
    small (a seed, a hyperparameter), so every seed would compile a program of its own;
    passed as arguments, the seeds of a study or sweep run one program (which JAX's
    persistent compilation cache, when enabled, then compiles once). Parameters and
    optimizer states are donated.
    """

    def __init__(self, update: Callable, rest: Any, seed: jax.Array, hyper: jax.Array | None):
        def step_fn(params, opt_state, bad_step, step, rest, seed, hyper, batch=None):
            return update(params, opt_state, rest, bad_step, seed, hyper, step, batch)

        self.program = xla_options.jit(step_fn, donate_argnums=(0, 1))
        self.bound = (rest, seed, hyper)

    def __call__(self, params, opt_state, bad_step, step, batch=None):
        return self.program(params, opt_state, bad_step, step, *self.bound, batch)

    def lower(self, params, opt_state, bad_step, step, batch=None):
        return self.program.lower(params, opt_state, bad_step, step, *self.bound, batch)


# ----------------------------------------------------------------------------- run dir
def checkpoint_manager(workdir: Path, keep: int = 3) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                           enable_async_checkpointing=False)
    return ocp.CheckpointManager((workdir / "checkpoints").absolute(), options=options)


def _target(s: Setup, bad_step) -> dict:
    return {"params": s.params, "opt_state": s.opt_state, "bad_step": bad_step}


def restore_checkpoint(manager: ocp.CheckpointManager, target: dict,
                   step: int | None = None) -> tuple[int, dict] | None:
    """(step, state) of the given or latest finalised checkpoint, or None if there is none."""
    step = manager.latest_step() if step is None else step
    if step is None:
        return None
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, target)
    return step, manager.restore(step, args=ocp.args.StandardRestore(abstract))


DAMAGED = "checkpoints_damaged"


def restore_latest_good(workdir: Path, target: dict, keep: int = 3
                        ) -> tuple[ocp.CheckpointManager, tuple[int, dict] | None]:
    """The run's checkpoint manager and the newest checkpoint that restores.

    Checkpoints newer than that one which fail to restore (truncated file, missing
    metadata) are moved aside to ``WORKDIR/checkpoints_damaged/STEP`` (never deleted) with
    a warning that names each and its error. If none restores (e.g. checkpoints of another
    version of the model), nothing is moved and the error names them all: the run is not
    silently restarted from scratch.
    """
    manager = checkpoint_manager(workdir, keep)
    failed: list[tuple[int, Exception]] = []
    for step in sorted(manager.all_steps(), reverse=True):
        try:
            restored = restore_checkpoint(manager, target, step)
        except Exception as err:  # orbax raises many kinds for a damaged directory
            failed.append((step, err))
            continue
        if failed:
            manager.close()
            for bad, err in failed:
                _move_aside(workdir, bad, err)
            manager = checkpoint_manager(workdir, keep)
        return manager, restored
    manager.close()
    if failed:
        listed = "; ".join(f"step {st}: {type(e).__name__}: {_first_line(e)}" for st, e in failed)
        raise UserError(f"no checkpoint of {workdir} restores ({listed}); nothing was moved. "
                        "Use another --workdir, or move the checkpoints away to start over")
    return checkpoint_manager(workdir, keep), None


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else ""


def _move_aside(workdir: Path, step: int, err: Exception) -> None:
    aside = workdir / DAMAGED / str(step)
    while aside.exists():
        aside = aside.with_name(aside.name + "_")
    aside.parent.mkdir(exist_ok=True)
    (workdir / "checkpoints" / str(step)).rename(aside)
    warnings.warn(f"checkpoint {step} of {workdir} does not restore ({type(err).__name__}: "
                  f"{_first_line(err)}); moved it to {aside} and resuming from the previous "
                  "one", stacklevel=3)


# Keys added to base_config after runs were written: absent in an old config.json means this.
# Keys added to the config after runs were written without them: the value that reproduces
# what those runs did (a run dir without the key is compared as if it had this value).
_ADDED_DEFAULTS = {"train.num_seeds": 1, "train.vmap_key": "", "train.vmap_values": [],
                   "train.clip_scope": "all", "train.decay_scope": "kernels"}
# Keys that have no effect under the run's other settings (flat config -> inert): not compared,
# so a run without a clip is not "different" for its clip scope.
_INERT_WHEN: dict[str, Callable[[dict], bool]] = {
    "train.clip_scope": lambda c: not c.get("train.clip_value"),
    "train.decay_scope": lambda c: not c.get("train.weight_decay") and (
        not c.get("train.clip_value") or c.get("train.clip_scope") == "all"),
}
# Keys that choose how a run is executed, not what it computes: may change on resume.
_EXECUTION_KEYS = ("train.steps", "train.log_every", "train.checkpoint_every",
                   "train.log_to", "train.wandb_project")
# Keys that ``--allow-change`` may change when a run is continued (e.g. after a divergence):
# settings of the update rule that leave the optimizer state's structure as it is.
CHANGEABLE_KEYS = ("train.learning_rate", "train.clip_value", "train.weight_decay",
                   "train.keep_checkpoints")


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise UserError(f"{path} is not valid JSON ({err}); restore it from a backup or use "
                        "another --workdir") from None


def config_changes(workdir: Path, config: ml_collections.ConfigDict,
                   name: str = "config.json") -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs from the run already in ``workdir``: key -> (old, new).

    ``train.steps`` (to extend a run), the logging/checkpoint intervals and ``eval.*``
    (evaluation settings do not change what is trained) are not counted; a key the old run
    predates counts as its :data:`_ADDED_DEFAULTS` value, and a key inert in both configs
    (:data:`_INERT_WHEN`, e.g. the clip scope without a clip) is not compared.
    """
    path = workdir / name
    if not path.exists():
        return {}
    old = {**_ADDED_DEFAULTS, **config_lib.flatten(_load_json(path))}
    new = {**_ADDED_DEFAULTS, **config_lib.flatten(json.loads(config_lib.to_json(config)))}
    return {k: (old.get(k), new.get(k)) for k in sorted(old.keys() | new.keys())
            if k not in _EXECUTION_KEYS and not k.startswith("eval.")
            and old.get(k) != new.get(k)
            and not (k in _INERT_WHEN and _INERT_WHEN[k](old) and _INERT_WHEN[k](new))}


def check_config_matches(workdir: Path, config: ml_collections.ConfigDict,
                         name: str = "config.json", allow: tuple[str, ...] = ()) -> dict:
    """Refuse to resume a run dir written by a different config, except for the keys in
    ``allow`` (each one of :data:`CHANGEABLE_KEYS`); returns the allowed changes."""
    bad = [k for k in allow if k not in CHANGEABLE_KEYS]
    if bad:
        raise ConfigError(f"--allow-change {bad[0]}: only {', '.join(CHANGEABLE_KEYS)} may "
                          "change when a run is continued")
    diff = config_changes(workdir, config, name)
    refused = {k: v for k, v in diff.items() if k not in allow}
    if refused:
        shown = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(refused.items())[:5])
        hint = ("; to continue this run with new optimizer settings (e.g. after a divergence) "
                "pass --allow-change KEY" if set(refused) <= set(CHANGEABLE_KEYS) else "")
        raise ConfigError(
            f"{workdir} holds a run with a different config ({shown}). Use another --workdir"
            f"{hint}; the existing run is left untouched.")
    return diff


# ----------------------------------------------------------------------------- run-dir lock
class RunLock:
    """An exclusive lock on a run directory while a process trains in it.

    ``flock`` on ``WORKDIR/.lock`` (released by the OS when the process ends, even by
    SIGKILL, so a killed run never leaves a stale lock); the file names the holder.
    """

    def __init__(self, workdir: Path):
        self.path = Path(workdir) / ".lock"
        self.file = None

    def __enter__(self) -> RunLock:
        import fcntl
        import socket

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise UserError(f"{self.path.parent} is being trained by {holder}; wait for it to "
                            "finish or stop it, or use another --workdir") from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(f"pid {os.getpid()} on {socket.gethostname()} since "
                        f"{time.strftime('%Y-%m-%d %H:%M:%S')}")
        self.file.flush()
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        fcntl.flock(self.file, fcntl.LOCK_UN)
        self.file.close()


# ----------------------------------------------------------------------------- loop
class HostBatches:
    """Host-side batches for training sources (``Setup.source``: a dataset, or pairs of its
    observations) without a device sampler, prefetched on a thread.

    The batch of step t comes from ``np.random.default_rng([seed, t])``.
    """

    def __init__(self, dataset: GroundTruthData, batch_size: int, seed: int, depth: int = 4):
        from concurrent.futures import ThreadPoolExecutor

        self.dataset, self.batch_size, self.seed, self.depth = dataset, batch_size, seed, depth
        self.pool = ThreadPoolExecutor(max_workers=2)
        self.pending: dict[int, Any] = {}

    def _make(self, step: int) -> Batch:
        factors, x = self.dataset.sample(self.batch_size, np.random.default_rng([self.seed, step]))
        return Batch(x, np.asarray(factors, np.int32))

    def get(self, step: int, last: int) -> Batch:
        for t in range(step, min(step + self.depth, last + 1)):
            if t not in self.pending:
                self.pending[t] = self.pool.submit(self._make, t)
        return self.pending.pop(step).result()


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str | Path, *,
                       progress: bool = True, allow_changes: tuple[str, ...] = ()) -> Path:
    """Train (or resume) the run in ``workdir``; returns the run directory.

    With ``train.num_seeds > 1`` or ``train.vmap_values`` the members are trained as one
    program (:func:`make_members_step`) into ``workdir/<member>/`` (see :func:`member_configs`).
    ``allow_changes``: keys of :data:`CHANGEABLE_KEYS` that may differ from the run already
    in ``workdir`` (continuing it, e.g. with a lower learning rate after a divergence, from
    its latest checkpoint); each change is appended to ``WORKDIR/config_changes.jsonl``.
    The run directory is locked while this process trains in it (:class:`RunLock`).
    """
    workdir = Path(workdir)
    config_lib.validate(config)  # a refused config writes nothing
    if len(member_configs(config)) > 1:
        return train_members(config, workdir, progress=progress)
    changes = check_config_matches(workdir, config, allow=tuple(allow_changes))
    tc = config.train
    s = setup(config)  # config errors surface here, before anything is written
    primary = jax.process_index() == 0  # multi-host: only process 0 writes logs and configs
    with RunLock(workdir):
        bad_step = jnp.asarray(NO_BAD_STEP, jnp.int32)
        manager, restored = restore_latest_good(workdir, _target(s, bad_step),
                                                tc.get("keep_checkpoints", 3))
        start = 0
        if restored is not None:
            start, state = restored
            s.params, s.opt_state = state["params"], state["opt_state"]
        if start > tc.steps:
            manager.close()
            raise ConfigError(f"train.steps={tc.steps} is below the latest checkpoint of "
                              f"{workdir} (step {start}); pass train.steps >= {start}, or use "
                              "another --workdir (the run is left untouched)")
        if primary:
            if changes:
                with open(workdir / "config_changes.jsonl", "a") as f:
                    f.write(json.dumps({"step": start, "time": time.time(), "changes": {
                        k: {"old": a, "new": b} for k, (a, b) in changes.items()}}) + "\n")
            (workdir / "config.json").write_text(config_lib.to_json(config))
            truncate_log(workdir / "metrics.jsonl", start)
        if start >= tc.steps:
            manager.close()
            return workdir
        _train(s, manager, start, bad_step, workdir, progress and primary, primary)
    return workdir


def _train(s: Setup, manager, start: int, bad_step, workdir: Path, progress: bool,
           primary: bool) -> None:
    tc = s.config.train
    hosts = None if s.source.device_sampler() is not None else [
        HostBatches(s.source, tc.batch_size, tc.seed)]
    trackers = [Tracker(workdir, s.config, s.dataset, s.model, start, primary)]
    _train_loop(lambda updates: make_train_step(s, updates), s.schedule,
                (s.params, s.opt_state, bad_step), start=start, tc=tc, dirs=[workdir],
                managers=[manager], trackers=trackers, stacked=False, hosts=hosts,
                mesh=s.mesh, progress=progress, primary=primary)


def _train_loop(make_step: Callable, schedule: Callable, state: tuple, *, start: int, tc,
                dirs: list[Path], managers: list, trackers: list[Tracker], stacked: bool,
                hosts: list | None, mesh: Mesh | None, progress: bool, primary: bool) -> None:
    """Steps ``start + 1 .. tc.steps`` of one run (one dir) or of ``stacked`` members (one
    dir each; every state leaf, ``bad`` and the logs stacked on a leading member axis).

    Step t runs the compiled program of ``schedule(t)`` (``make_step(updates)``, compiled
    once per stage). Logs every ``log_every``, checkpoints every ``checkpoint_every`` and at
    the end, and raises :class:`NonFiniteLossError` at the first sync after a bad step.
    Each dir's :class:`~disentangle.tracking.Tracker` gets the logged rows and scores the
    parameters every ``eval.every`` steps. Closes the managers and trackers.
    """
    params, opt_state, bad = state
    n = len(dirs)
    pick = _member if stacked else (lambda tree, i: tree)
    programs: dict[tuple[Update, ...], Callable] = {}
    saved = [start if start else None] * n  # last checkpoint step of each dir
    bar = _progress(start, tc.steps, dirs[0].parent if stacked else dirs[0], progress)
    t_last, step_last = time.perf_counter(), start
    logs_files = [open(d / "metrics.jsonl" if primary else os.devnull, "a") for d in dirs]
    try:
        for step in range(start + 1, tc.steps + 1):
            updates = tuple(schedule(step))
            if updates not in programs:
                programs[updates] = make_step(updates)
            args = (params, opt_state, bad, jnp.asarray(step, jnp.int32))
            if hosts is not None and stacked:
                batch = jax.tree.map(lambda *b: np.stack(b),
                                     *[h.get(step, tc.steps) for h in hosts])
                args += (jax.tree.map(lambda a: shard_batch(a, mesh, batch_axis=1), batch),)
            elif hosts is not None:
                args += (jax.tree.map(lambda a: shard_batch(a, mesh),
                                      hosts[0].get(step, tc.steps)),)
            params, opt_state, bad, logs = programs[updates](*args)
            bar.update(1)
            for i, tracker in enumerate(trackers):  # slices a member only when it is due
                if tracker.due(step, step == tc.steps):
                    tracker.evaluate(step, pick(params, i))
            is_log = step % tc.log_every == 0 or step == tc.steps
            is_ckpt = step % tc.checkpoint_every == 0 or step == tc.steps
            if not (is_log or is_ckpt):
                continue
            first_bad = np.atleast_1d(np.asarray(bad))  # host sync
            if (first_bad != NO_BAD_STEP).any():
                i = int(np.argmax(first_bad != NO_BAD_STEP))
                where = (f"the last good checkpoint is step {saved[i]} in "
                         f"{dirs[i] / 'checkpoints'}" if saved[i] is not None
                         else "no checkpoint was written")
                raise NonFiniteLossError(
                    f"non-finite loss or gradients at step {int(first_bad[i])} of "
                    f"{'member ' if stacked else ''}{dirs[i]}; {where}. "
                    "Check the data, or continue from that checkpoint with a lower learning "
                    "rate: rerun with train.learning_rate=NEW --allow-change "
                    "train.learning_rate.")
            if is_log:
                now = time.perf_counter()
                rate = (step - step_last) * tc.batch_size / (now - t_last)
                t_last, step_last = now, step
                host_logs = jax.device_get(logs)
                for i, f in enumerate(logs_files):
                    row = {"step": step, **{k: float(pick(v, i)) for k, v in host_logs.items()},
                           "images_per_sec": rate, **({"vmapped_members": n} if stacked else {}),
                           "time": time.time()}
                    f.write(json.dumps(row) + "\n")
                    f.flush()
                    trackers[i].log(step, row)
                bar.set_postfix(loss=f"{float(np.mean(host_logs['loss'])):.4g}",
                                img_s=f"{rate * n:.0f}")
            if is_ckpt:
                for i, m in enumerate(managers):
                    m.save(step, args=ocp.args.StandardSave(
                        {"params": pick(params, i), "opt_state": pick(opt_state, i),
                         "bad_step": pick(bad, i)}))
                for m in managers:
                    m.wait_until_finished()
                saved = [step] * n
    finally:
        for f in logs_files:
            f.close()
        bar.close()
        for m in managers:
            m.close()
        for t in trackers:
            t.close()


# ----------------------------------------------------------------------------- vmapped sweeps
def member_configs(config: ml_collections.ConfigDict) -> dict[str, ml_collections.ConfigDict]:
    """Member name -> its own single-run config, for the vmapped members of ``config``.

    Members are every (value, seed) pair of ``train.vmap_values`` (of the key
    ``train.vmap_key``, a scalar ``model.*`` hyperparameter) and seeds ``train.seed + i``,
    ``i < train.num_seeds``. A member's config has that seed and value, ``num_seeds=1`` and
    no vmap keys: training it alone gives the same run. Names: ``seed3``, ``beta4_seed3``.
    """
    tc = config.train
    num_seeds = int(tc.get("num_seeds", 1))
    key, values = tc.get("vmap_key", ""), tuple(tc.get("vmap_values", ()))
    if num_seeds < 1:
        raise ConfigError(f"train.num_seeds={num_seeds}; accepted: an integer >= 1")
    if bool(key) != bool(values):
        raise ConfigError(
            f"train.vmap_key={key!r} with train.vmap_values={list(values)}: set both (e.g. "
            "train.vmap_key=model.beta train.vmap_values=[1,4,8]) or neither")
    if key and not key.startswith("model."):
        raise ConfigError(f"train.vmap_key={key!r}: only scalar model.* hyperparameters can be "
                          "vmapped (e.g. model.beta); sweep other keys with `disentangle sweep`")
    leaf = key.rpartition(".")[2]
    members = {}
    for value in values or (None,):
        for i in range(num_seeds):
            member = ml_collections.ConfigDict(config.to_dict())
            overrides = [("train.seed", tc.seed + i), ("train.num_seeds", 1),
                         ("train.vmap_key", ""), ("train.vmap_values", ())]
            if key:
                overrides.append((key, value))
            config_lib.apply_overrides(member, overrides, source="train.vmap_values")
            name = (f"{leaf}{value:g}_" if key else "") + f"seed{tc.seed + i}"
            members[name] = member
    return members


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *leaves: jnp.stack(leaves), *trees)


def _member(tree: Any, i: int) -> Any:
    return jax.tree.map(lambda a: a[i], tree)


def _hyper_name(config: ml_collections.ConfigDict, setups: list[Setup]) -> str:
    """The model attribute that holds the vmapped hyperparameter (checked on every member)."""
    key = config.train.get("vmap_key", "")
    if not key:
        return ""
    name = key.rpartition(".")[2]
    for s in setups:
        value = getattr(s.model(), name, None)
        if not isinstance(value, int | float) or value != s.config.model[name]:
            raise ConfigError(
                f"train.vmap_key={key!r}: model {config.model.name!r} does not keep "
                f"{name!r} as a scalar attribute equal to the config value, so it cannot be "
                "vmapped; sweep it with `disentangle sweep` instead")
    return name


def members_state(setups: list[Setup]) -> tuple:
    """``(params, opt_state, bad_step [S])`` of the members, every leaf stacked on a
    leading member axis (the layout of :func:`make_members_step`)."""
    return (_stack([s.params for s in setups]), _stack([s.opt_state for s in setups]),
            jnp.full((len(setups),), NO_BAD_STEP, jnp.int32))


def make_members_step(setups: list[Setup], updates: tuple[Update, ...],
                      hyper_name: str = "") -> Callable:
    """The step of S members as one ``jax.vmap``-ed program.

    ``step(params, opt_state, bad_step [S], step[, batch [S, B, ...]]) -> (params,
    opt_state, bad_step, logs [S])`` with the state laid out by :func:`members_state`;
    member m uses its own seed (``setups[m].config.train.seed``), its own non-parameter
    state and, if ``hyper_name``, its own value of that attribute.
    """
    s0 = setups[0]
    sampler = s0.source.device_sampler()
    rest = _stack([s.rest for s in setups])
    seeds = jnp.asarray([s.config.train.seed for s in setups], jnp.int32)
    hypers = jnp.asarray([float(s.config.model[hyper_name]) if hyper_name else 0.0
                          for s in setups], jnp.float32)
    update = _update(s0.graphdef, s0.txs, sampler, s0.config.train.batch_size, s0.mesh,
                     updates, hyper_name)
    batched = jax.vmap(update, in_axes=(0, 0, 0, 0, 0, 0, None, 0 if sampler is None else None))
    return BoundStep(batched, rest, seeds, hypers)


def train_members(config: ml_collections.ConfigDict, workdir: str | Path, *,
                  progress: bool = True) -> Path:
    """Train the members of ``config`` as one program; returns ``workdir``.

    Every member ``m`` gets the run directory ``workdir/m`` (config.json with its own seed
    and value, metrics.jsonl, checkpoints) that ``disentangle evaluate`` and ``load_run``
    read like any run. One jitted :func:`make_members_step` advances all member states;
    member m's batch and noise at step t come from ``fold_in(key(seed_m), t)``, as in its
    separate run. ``workdir/sweep.json`` holds the sweep config; a rerun resumes all
    members from their latest common checkpoint. ``workdir`` is locked while it trains.
    """
    workdir = Path(workdir)
    check_config_matches(workdir, config, "sweep.json")
    members = member_configs(config)
    for name, member in members.items():
        check_config_matches(workdir / name, member)
    tc = config.train
    dataset = get_dataset(config.data.name, **config.data.get("options", {}))
    setups = [setup(member, dataset) for member in members.values()]
    hyper_name = _hyper_name(config, setups)
    with RunLock(workdir):  # one process per sweep directory, as for a single run
        workdir.mkdir(parents=True, exist_ok=True)  # after every config error could surface
        primary = jax.process_index() == 0  # multi-host: only process 0 writes logs and configs
        if primary:
            (workdir / "sweep.json").write_text(config_lib.to_json(config))
        dirs = [workdir / name for name in members]
        managers = []
        for d, member in zip(dirs, members.values()):
            d.mkdir(exist_ok=True)
            if primary:
                (d / "config.json").write_text(config_lib.to_json(member))
            managers.append(checkpoint_manager(d, tc.get("keep_checkpoints", 3)))

        # Resume every member from the latest step all of them have a checkpoint of.
        bad_step = jnp.asarray(NO_BAD_STEP, jnp.int32)
        common = set.intersection(*(set(m.all_steps()) for m in managers))
        start = max(common) if common else 0
        for s, m in zip(setups, managers):
            if start:
                _, state = restore_checkpoint(m, _target(s, bad_step), start)
                s.params, s.opt_state = state["params"], state["opt_state"]
        for d in dirs:
            if primary:
                truncate_log(d / "metrics.jsonl", start)
        if start >= tc.steps:
            for m in managers:
                m.close()
            return workdir

        source = setups[0].source
        hosts = None if source.device_sampler() is not None else [
            HostBatches(source, tc.batch_size, m.train.seed) for m in members.values()]
        trackers = [Tracker(d, member, dataset, s.model, start, primary)
                    for d, member, s in zip(dirs, members.values(), setups)]
        _train_loop(lambda updates: make_members_step(setups, updates, hyper_name),
                    setups[0].schedule, members_state(setups), start=start, tc=tc, dirs=dirs,
                    managers=managers, trackers=trackers, stacked=True, hosts=hosts,
                    mesh=setups[0].mesh, progress=progress and primary, primary=primary)
        return workdir


def _progress(start: int, total: int, workdir: Path, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=workdir.name, unit="step", disable=not enabled,
                dynamic_ncols=True, mininterval=0.5)
