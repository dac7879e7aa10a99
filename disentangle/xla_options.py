"""XLA compiler options of the workbench's training programs (one home for them).

XLA:CPU (jaxlib 0.10) hands convolutions, dots, reductions and element-wise fusions to
YNNPACK by default. For the conv64 networks its convolutions ran on one core (a forward
4x4/2 convolution took the same time pinned to one core as on two), while XLA's own
(Eigen) convolutions use the whole intra-op thread pool. :func:`compiler_options` keeps
YNNPACK for single dots and reductions only::

    xla_cpu_experimental_ynn_fusion_type = INDIVIDUAL_DOT,REDUCE

which made the conv64 beta-VAE train step ~1.3x faster on 2 cores
(``benchmarks/train_step.py``, variant ``jax_xla_default``; docs/performance.md). The
options are passed per program (``jax.jit(..., compiler_options=...)``), never through the
process-wide ``XLA_FLAGS``; a user who sets the same flag in ``XLA_FLAGS`` keeps theirs.
On other backends, or if this jaxlib does not know the option, nothing is passed.
"""

from __future__ import annotations

import contextlib
import functools
import os

import jax

YNN_FUSION_TYPE = "xla_cpu_experimental_ynn_fusion_type"
CPU_OPTIONS = {YNN_FUSION_TYPE: "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"}
_use_options = True


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
    if not _use_options or backend != "cpu" or YNN_FUSION_TYPE in os.environ.get("XLA_FLAGS", ""):
        return None
    return dict(CPU_OPTIONS) if _accepted(backend) else None


@contextlib.contextmanager
def xla_defaults():
    """Programs jitted inside this block get XLA's default options (for comparisons)."""
    global _use_options
    saved, _use_options = _use_options, False
    try:
        yield
    finally:
        _use_options = saved


def jit(fun, **kwargs):
    """``jax.jit(fun, **kwargs)`` with :func:`compiler_options` (the training steps)."""
    return jax.jit(fun, compiler_options=compiler_options(), **kwargs)
