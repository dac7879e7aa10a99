"""XLA compiler options of the workbench's programs (one home for them).

Applied only where :func:`disentangle.backend.cpu_tuned` (XLA:CPU); on GPU and TPU
:func:`jit` is plain ``jax.jit`` and :func:`set_process_flags` adds nothing that matters
(its flags are XLA:CPU's).

XLA:CPU (jaxlib 0.10) hands convolutions, dots, reductions and element-wise fusions to
YNNPACK by default. For the conv64 networks its convolutions ran on one core (a forward
4x4/2 convolution took the same time pinned to one core as on two), while XLA's own
(Eigen) convolutions use the whole intra-op thread pool. :func:`compiler_options` keeps
YNNPACK for single dots and reductions only::

    xla_cpu_experimental_ynn_fusion_type = INDIVIDUAL_DOT,REDUCE

which made the conv64 train steps ~1.5x faster on 2 cores (``benchmarks/train_step.py``,
``jax`` vs ``jax_xla_default``; docs/performance.md). The options are passed per program
(``jax.jit(..., compiler_options=...)``), never through the process-wide ``XLA_FLAGS``; a
user who sets the same flag in ``XLA_FLAGS`` keeps theirs. If this jaxlib does not know
the option, nothing is passed. :func:`jit` (training steps), :func:`jit_apply`
(evaluation programs) and :func:`jit_apply` apply them, looked up when the program runs.

Some flags XLA takes only from the environment (a per-program value is accepted and
ignored), and reads them once, when JAX initialises its backends. :func:`set_process_flags`
adds those of :data:`PROCESS_FLAGS` to ``XLA_FLAGS``; it must run before anything touches
a JAX backend (the ``disentangle`` CLI and the benchmarks call it first thing; library
users may call it themselves). On this CPU, turning off XLA:CPU's concurrency-optimised
scheduler made the conv64 train step ~6% faster (docs/performance.md).

:func:`enable_compilation_cache` switches on JAX's persistent compilation cache: a program
built again by a later run, seed or process is loaded instead of compiled. The CLI and the
studies set their process up with both (:func:`prepare_process`).
"""

from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

import jax

from disentangle import backend as backend_lib
from disentangle.cache import cache_dir

YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"
CPU_OPTIONS = {YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}
_use_options = True
# Flags read only from XLA_FLAGS (CPU-only; harmless elsewhere). XLA aborts the process on
# an unknown flag, so they are set only on the jaxlib series they were verified with.
PROCESS_FLAGS = {"xla_cpu_enable_concurrency_optimized_scheduler": "false"}
PROCESS_FLAGS_JAXLIB = "0.10."
CACHE_ENV = "DISENTANGLE_COMPILATION_CACHE"


@functools.cache
def _accepted(backend: str) -> bool:
    """This jaxlib compiles a trivial program with :data:`CPU_OPTIONS`."""
    try:
        jax.jit(lambda x: x + 1, compiler_options=CPU_OPTIONS, backend=backend).lower(
            1.0).compile()
    except Exception:  # an unknown option name or value: leave XLA's defaults
        return False
    return True


def compiler_options(backend: str | None = None) -> dict[str, str] | None:
    """Options for ``jax.jit(..., compiler_options=...)`` on ``backend`` (default backend
    when None): :data:`CPU_OPTIONS` on CPU unless ``XLA_FLAGS`` already sets them."""
    backend = backend or jax.default_backend()
    if (not _use_options or not backend_lib.cpu_tuned(backend)
            or YNN_FUSION_TYPE in os.environ.get("XLA_FLAGS", "")):
        return None
    return dict(CPU_OPTIONS) if _accepted(backend) else None


def set_process_flags() -> list[str]:
    """Append the :data:`PROCESS_FLAGS` the user has not set to ``XLA_FLAGS``; returns the
    flags added. Call it before anything runs on a JAX backend: XLA reads ``XLA_FLAGS``
    once, when JAX initialises its backends, so a later call changes only the environment
    of child processes. Does nothing on a jaxlib outside :data:`PROCESS_FLAGS_JAXLIB` (a
    flag it does not know would abort the process)."""
    import jaxlib.version

    if not jaxlib.version.__version__.startswith(PROCESS_FLAGS_JAXLIB):
        return []
    current = os.environ.get("XLA_FLAGS", "")
    added = [f"--{name}={value}" for name, value in PROCESS_FLAGS.items()
             if name not in current]
    if added:
        os.environ["XLA_FLAGS"] = " ".join([current, *added]).strip()
    return added


def enable_compilation_cache(path: str | os.PathLike | None = None, *,
                             min_compile_seconds: float | None = None) -> Path | None:
    """Switch on JAX's persistent compilation cache; returns its directory, or None when off.

    A program is keyed on its StableHLO, compile options, jaxlib and device kind, so a
    program compiled once is loaded, not compiled, by every later process and run that
    builds it again: the seeds of a study or sweep (their train steps take the seed as an
    argument, :class:`disentangle.train.BoundStep`), a resumed run, a rerun evaluation. The
    directory is ``path``, else ``$DISENTANGLE_COMPILATION_CACHE`` (``off`` switches the
    cache off), else the workbench cache's ``jax/`` (:func:`disentangle.cache.cache_dir`,
    default ``~/.cache/disentangle/jax``). A directory the user gave JAX
    (``JAX_COMPILATION_CACHE_DIR`` or ``jax_compilation_cache_dir``) is kept.
    ``min_compile_seconds``: cache only programs that took at least this long to compile
    (and of any size; JAX's defaults when None: 1 s). :func:`prepare_process` calls it;
    library users may.
    """
    if jax.config.jax_compilation_cache_dir:
        return Path(jax.config.jax_compilation_cache_dir)
    if path is None:
        path = os.environ.get(CACHE_ENV) or cache_dir("jax")
    if str(path).lower() == "off":
        return None
    jax.config.update("jax_compilation_cache_dir", str(path))
    if min_compile_seconds is not None:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", min_compile_seconds)
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return Path(path)


def prepare_process() -> None:
    """Set up a workbench process (the CLI, the studies) before anything runs on a JAX
    backend: :func:`set_process_flags` and :func:`enable_compilation_cache`."""
    set_process_flags()
    enable_compilation_cache()


@contextlib.contextmanager
def xla_defaults():
    """Programs of :func:`jit` / :func:`jit_apply` run inside this block get XLA's default
    options (for comparisons)."""
    global _use_options
    saved, _use_options = _use_options, False
    try:
        yield
    finally:
        _use_options = saved


def _options_key() -> tuple | None:
    options = compiler_options()
    return None if options is None else tuple(sorted(options.items()))


class _Jitted:
    """A jitted program compiled with the :func:`compiler_options` in force when it runs.

    Options are looked up at each call, not when the program is defined: module-level
    decorators must not initialise JAX's backends at import (that would come before
    :func:`set_process_flags`). One ``jax.jit`` is kept per set of options;
    ``lower``/``trace``/``eval_shape`` are those of the current one.
    """

    def __init__(self, make):
        self._make = make  # options dict | None -> jitted callable
        self._by_options: dict = {}

    def current(self):
        key = _options_key()
        if key not in self._by_options:
            self._by_options[key] = self._make(None if key is None else dict(key))
        return self._by_options[key]

    def __call__(self, *args, **kwargs):
        return self.current()(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self.current(), name)


def jit(fun, **kwargs):
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options` (the training steps); plain
    ``jax.jit`` where there are none (other backends, :func:`xla_defaults`)."""
    jitted = _Jitted(lambda options: jax.jit(fun, **kwargs) if options is None
                     else jax.jit(fun, compiler_options=options, **kwargs))
    functools.update_wrapper(jitted, fun, updated=())
    return jitted


def jit_apply(fun=None, *, static_argnums: int | tuple[int, ...] = ()):
    """Jit ``fun(module, *args)``, a program that only reads the NNX ``module`` (encoding,
    decoding, scoring), with :func:`compiler_options`.

    The module is split into ``(graphdef, state)`` outside the program and merged inside
    it; nothing is written back (training steps belong to the trainer). ``static_argnums``
    count positions from the module (0). Encoding a conv64 batch of 256 ran 1.8x and
    decoding 3.2x faster than under ``nnx.jit`` on 2 CPU cores (``benchmarks/programs.py``).
    """
    if fun is None:
        return functools.partial(jit_apply, static_argnums=static_argnums)
    from flax import nnx

    nums = (static_argnums,) if isinstance(static_argnums, int) else tuple(static_argnums)

    def program(graphdef, state, *args):
        return fun(nnx.merge(graphdef, state), *args)

    jitted = jit(program, static_argnums=(0, *(n + 1 for n in nums)))

    @functools.wraps(fun)
    def call(module, *args):
        graphdef, state = nnx.split(module)
        return jitted(graphdef, state, *args)

    call.lower = lambda module, *args: jitted.lower(*nnx.split(module), *args)
    return call
