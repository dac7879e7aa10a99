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
reproduces the uninterrupted run exactly.

Scale (docs/performance.md): with more than one device the batch is sharded over a 1-D
``data`` mesh and parameters are replicated (``train.batch_size`` must divide by the device
count). ``train.num_seeds=S`` and ``train.vmap_key``/``train.vmap_values`` train several
members (seeds x values of one scalar ``model.*`` hyperparameter) as one jitted program
(``train.members_exec``: ``jax.vmap`` or, on CPU by default, the members' steps unrolled side
by side); each member writes an ordinary run directory ``workdir/<member>/`` equal (up to
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
    mesh: Mesh | None = None  # data-parallel mesh when more than one device is present

    def model(self, params: nnx.State | None = None) -> Method:
        return nnx.merge(self.graphdef, self.params if params is None else params, self.rest)


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
    """Dataset, freshly initialised model (from ``train.seed``) and optimizer.

    With more than one device, params and optimizer state are replicated on the data mesh.
    """
    dataset = dataset or get_dataset(config.data.name, **config.data.get("options", {}))
    mesh = data_mesh(config.train.batch_size)
    model = build_model(config.model, DataSpec.of(dataset), nnx.Rngs(config.train.seed))
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    tx = make_optimizer(config.train)
    params, rest = replicate(params, mesh), replicate(rest, mesh)
    return Setup(config, dataset, graphdef, params, rest, tx, replicate(tx.init(params), mesh),
                 mesh)


def step_key(seed: int, step) -> jax.Array:
    """The key of step ``step``: data and noise depend only on (seed, step)."""
    return jax.random.fold_in(jax.random.key(seed), step)


def _update(graphdef: nnx.GraphDef, tx: optax.GradientTransformation, sampler, batch_size: int,
            mesh: Mesh | None, hyper_name: str = "") -> Callable:
    """One member's update ``(params, opt_state, rest, bad_step, seed, hyper, step, x)``.

    ``hyper`` replaces the model attribute ``hyper_name`` (a vmapped scalar
    hyperparameter) when ``hyper_name`` is set.
    """

    def update(params, opt_state, rest, bad_step, seed, hyper, step, x=None):
        data_key, noise_key = jax.random.split(step_key(seed, step))
        if x is None:
            _, x = sampler(data_key, batch_size)
        x = shard_batch(x, mesh)

        def loss_fn(p):
            model = nnx.merge(graphdef, p, rest)
            if hyper_name:  # the traced value of this member (the module is ephemeral)
                object.__setattr__(model, hyper_name, hyper)
            return model.loss(x, noise_key)

        (loss, terms), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, new_opt = tx.update(grads, opt_state, params)
        # The update is applied even when this step is bad: the loop raises at its next
        # sync before logging or saving anything, so no later state is ever kept. Selecting
        # old vs new state here (a freeze) made XLA copy the Adam moments every step: 1.40x
        # slower for the 14M-parameter MLP, 1.02x for conv64 (docs/performance.md).
        finite = jnp.isfinite(loss) & jnp.isfinite(optax.global_norm(grads))
        bad_step = jnp.where(finite, bad_step, jnp.minimum(bad_step, step))
        logs = {"loss": loss, **terms}
        return optax.apply_updates(params, updates), new_opt, bad_step, logs

    return update


def make_train_step(s: Setup) -> Callable:
    """``step(params, opt_state, bad_step, step[, x]) -> (params, opt_state, bad_step, logs)``.

    With a device sampler the batch is drawn inside the step; otherwise ``x`` is passed.
    ``bad_step`` holds the first step whose loss or gradients were not finite. With a data
    mesh (``s.mesh``) the batch is sharded over it inside the step.
    """
    update = _update(s.graphdef, s.tx, s.dataset.device_sampler(), s.config.train.batch_size,
                     s.mesh)
    seed, rest = s.config.train.seed, s.rest

    def step_fn(params, opt_state, bad_step, step, x=None):
        return update(params, opt_state, rest, bad_step, seed, None, step, x)

    return xla_options.jit(step_fn, donate_argnums=(0, 1))


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


# Keys added to base_config after runs were written: absent in an old config.json means this.
_ADDED_DEFAULTS = {"train.num_seeds": 1, "train.vmap_key": "", "train.vmap_values": []}
# Keys that choose how a run is executed, not what it computes: may change on resume.
_EXECUTION_KEYS = ("train.steps", "train.members_exec")


def check_config_matches(workdir: Path, config: ml_collections.ConfigDict,
                         name: str = "config.json") -> None:
    """Refuse to resume a run dir written by a different config.

    ``train.steps`` may differ (to extend a run), ``train.members_exec`` (how members are
    executed, not what they compute) and ``eval.*`` (evaluation settings do not change what
    is trained).
    """
    path = workdir / name
    if not path.exists():
        return
    old = {**_ADDED_DEFAULTS, **config_lib.flatten(json.loads(path.read_text()))}
    new = {**_ADDED_DEFAULTS, **config_lib.flatten(json.loads(config_lib.to_json(config)))}
    diff = sorted(k for k in old.keys() | new.keys()
                  if k not in _EXECUTION_KEYS and not k.startswith("eval.")
                  and old.get(k) != new.get(k))
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
    """Train (or resume) the run in ``workdir``; returns the run directory.

    With ``train.num_seeds > 1`` or ``train.vmap_values`` the members are trained as one
    program (:func:`make_members_step`) into ``workdir/<member>/`` (see :func:`member_configs`).
    """
    workdir = Path(workdir)
    resolve_members_exec(config.train.get("members_exec", "auto"))  # a typo fails every run
    if len(member_configs(config)) > 1:
        return train_members(config, workdir, progress=progress)
    check_config_matches(workdir, config)
    tc = config.train
    s = setup(config)  # config errors surface here, before anything is written
    workdir.mkdir(parents=True, exist_ok=True)
    primary = jax.process_index() == 0  # multi-host: only process 0 writes logs and configs
    if primary:
        (workdir / "config.json").write_text(config_lib.to_json(config))

    manager = checkpoint_manager(workdir, tc.get("keep_checkpoints", 3))
    bad_step = jnp.asarray(NO_BAD_STEP, jnp.int32)
    restored = restore_checkpoint(manager, _target(s, bad_step))
    start = 0
    if restored is not None:
        start, state = restored
        s.params, s.opt_state = state["params"], state["opt_state"]
    log_path = workdir / "metrics.jsonl"
    if primary:
        _truncate_log(log_path, start)
    if start >= tc.steps:
        manager.close()
        return workdir

    hosts = None if s.dataset.device_sampler() is not None else [
        HostBatches(s.dataset, tc.batch_size, tc.seed)]
    _train_loop(make_train_step(s), (s.params, s.opt_state, bad_step), start=start, tc=tc,
                dirs=[workdir], managers=[manager], members_exec=None, hosts=hosts,
                mesh=s.mesh, progress=progress and primary, primary=primary)
    return workdir


def _train_loop(train_step: Callable, state: tuple, *, start: int, tc, dirs: list[Path],
                managers: list, members_exec: str | None, hosts: list | None,
                mesh: Mesh | None, progress: bool, primary: bool) -> None:
    """Steps ``start + 1 .. tc.steps`` of one run (``members_exec=None``, one dir) or of
    members (one dir each; state laid out by :func:`members_state` for that execution,
    ``bad`` and logs stacked on a leading axis): log every ``log_every``, checkpoint every
    ``checkpoint_every`` and at the end, raise :class:`NonFiniteLossError` at the first
    sync after a bad step. Closes the managers."""
    params, opt_state, bad = state
    n, stacked = len(dirs), members_exec is not None
    pick = _member if stacked else (lambda tree, i: tree)
    pick_state = ((lambda tree, i: member_state(tree, i, members_exec)) if stacked
                  else pick)
    saved = [start if start else None] * n  # last checkpoint step of each dir
    bar = _progress(start, tc.steps, dirs[0].parent if stacked else dirs[0], progress)
    t_last, step_last = time.perf_counter(), start
    logs_files = [open(d / "metrics.jsonl" if primary else os.devnull, "a") for d in dirs]
    try:
        for step in range(start + 1, tc.steps + 1):
            args = (params, opt_state, bad, jnp.asarray(step, jnp.int32))
            if hosts is not None and stacked:
                x = np.stack([h.get(step, tc.steps) for h in hosts])
                args += (shard_batch(x, mesh, batch_axis=1),)
            elif hosts is not None:
                args += (shard_batch(hosts[0].get(step, tc.steps), mesh),)
            params, opt_state, bad, logs = train_step(*args)
            bar.update(1)
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
                    "Lower train.learning_rate or check the data.")
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
                bar.set_postfix(loss=f"{float(np.mean(host_logs['loss'])):.4g}",
                                img_s=f"{rate * n:.0f}")
            if is_ckpt:
                for i, m in enumerate(managers):
                    m.save(step, args=ocp.args.StandardSave(
                        {"params": pick_state(params, i),
                         "opt_state": pick_state(opt_state, i),
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


MEMBERS_EXEC = ("auto", "vmap", "unroll")


def resolve_members_exec(how: str, backend: str | None = None) -> str:
    """``train.members_exec``: 'vmap' (one batched program: convolutions become grouped
    convolutions, best on accelerators), 'unroll' (the members' ordinary steps side by side
    in one program, independent ops running concurrently: best on CPU,
    benchmarks/vmap_seeds.py), 'auto' = 'unroll' on CPU, else 'vmap'."""
    if how not in MEMBERS_EXEC:
        raise ConfigError(f"train.members_exec={how!r}; accepted: {', '.join(MEMBERS_EXEC)}")
    if how == "auto":
        return "unroll" if (backend or jax.default_backend()) == "cpu" else "vmap"
    return how


def members_state(setups: list[Setup], how: str = "auto") -> tuple:
    """``(params, opt_state, bad_step [S])`` of the members, laid out for
    :func:`make_members_step` with the same ``how``.

    ``vmap``: every parameter and optimizer leaf stacked on a leading member axis.
    ``unroll``: tuples of the members' own trees. Stacked, the unrolled program would slice
    each member out and stack the results again every step, copying every parameter and
    Adam moment (for a 2.2M-parameter MLP, a third of the step).
    """
    gather = _stack if resolve_members_exec(how) == "vmap" else tuple
    return (gather([s.params for s in setups]), gather([s.opt_state for s in setups]),
            jnp.full((len(setups),), NO_BAD_STEP, jnp.int32))


def member_state(tree: Any, i: int, how: str) -> Any:
    """Member i's params or optimizer state out of the :func:`members_state` layout."""
    return _member(tree, i) if resolve_members_exec(how) == "vmap" else tree[i]


def make_members_step(setups: list[Setup], hyper_name: str = "", how: str = "auto"
                      ) -> Callable:
    """The step of S members as one jitted program.

    ``step(params, opt_state, bad_step [S], step[, x [S, B, ...]]) -> (params, opt_state,
    bad_step, logs [S])`` with params and opt_state laid out as :func:`members_state`
    (stacked for ``vmap``, tuples of member trees for ``unroll``); member m uses its own
    seed (``setups[m].config.train.seed``), its own non-parameter state and, if
    ``hyper_name``, its own value of that attribute. ``how``: :func:`resolve_members_exec`
    (both give the same numbers up to float reassociation).
    """
    s0 = setups[0]
    sampler = s0.dataset.device_sampler()
    rest = _stack([s.rest for s in setups])
    seeds = jnp.asarray([s.config.train.seed for s in setups], jnp.int32)
    hypers = jnp.asarray([float(s.config.model[hyper_name]) if hyper_name else 0.0
                          for s in setups], jnp.float32)
    update = _update(s0.graphdef, s0.tx, sampler, s0.config.train.batch_size, s0.mesh,
                     hyper_name)
    if resolve_members_exec(how) == "vmap":
        batched = jax.vmap(update,
                           in_axes=(0, 0, 0, 0, 0, 0, None, 0 if sampler is None else None))
    else:
        def batched(params, opt_state, rest, bad, seeds, hypers, step, x):
            outs = [update(params[i], opt_state[i], _member(rest, i), bad[i], seeds[i],
                           hypers[i], step, None if x is None else x[i])
                    for i in range(len(setups))]
            new_params, new_opt, new_bad, logs = zip(*outs)
            return tuple(new_params), tuple(new_opt), jnp.stack(new_bad), _stack(list(logs))

    def step_fn(params, opt_state, bad, step, x=None):
        return batched(params, opt_state, rest, bad, seeds, hypers, step, x)

    return xla_options.jit(step_fn, donate_argnums=(0, 1))


def train_members(config: ml_collections.ConfigDict, workdir: str | Path, *,
                  progress: bool = True) -> Path:
    """Train the members of ``config`` as one program; returns ``workdir``.

    Every member ``m`` gets the run directory ``workdir/m`` (config.json with its own seed
    and value, metrics.jsonl, checkpoints) that ``disentangle evaluate`` and ``load_run``
    read like any run. One jitted :func:`make_members_step` advances all member states
    (laid out by :func:`members_state`); member m's batch and noise at step t come
    from ``fold_in(key(seed_m), t)``, as in its separate run. ``workdir/sweep.json`` holds
    the sweep config; a rerun resumes all members from their latest common checkpoint.
    """
    workdir = Path(workdir)
    check_config_matches(workdir, config, "sweep.json")
    members = member_configs(config)
    for name, member in members.items():
        check_config_matches(workdir / name, member)
    tc = config.train
    how = resolve_members_exec(tc.get("members_exec", "auto"))
    dataset = get_dataset(config.data.name, **config.data.get("options", {}))
    setups = [setup(member, dataset) for member in members.values()]
    hyper_name = _hyper_name(config, setups)
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
            _truncate_log(d / "metrics.jsonl", start)
    if start >= tc.steps:
        for m in managers:
            m.close()
        return workdir

    sampler = dataset.device_sampler()
    state = members_state(setups, how)
    hosts = None if sampler is not None else [
        HostBatches(dataset, tc.batch_size, m.train.seed) for m in members.values()]
    _train_loop(make_members_step(setups, hyper_name, how), state, start=start, tc=tc,
                dirs=dirs, managers=managers, members_exec=how, hosts=hosts,
                mesh=setups[0].mesh, progress=progress and primary, primary=primary)
    return workdir


def _progress(start: int, total: int, workdir: Path, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=start, desc=workdir.name, unit="step", disable=not enabled,
                dynamic_ncols=True, mininterval=0.5)
