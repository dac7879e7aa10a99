"""Thread budget of the metrics in one process, so that evaluations side by side share the
cores instead of oversubscribing them.

``thread_budget()`` is ``DISENTANGLE_THREADS`` when set (``disentangle sweep --workers W``
sets it to ``max(1, cores // W)`` in each member's process), else the number of CPUs this
process may run on. The numba tree kernels of DCI use at most that many threads; BLAS is
held to one thread while metrics run (the metrics' matmuls are small: OpenBLAS threads only
add wake-up and spin time, ~10x slower on a busy 2-core machine). JAX programs (the
logistic fits) use XLA's intra-op pool, which is fixed when JAX starts; a process that
should use one core sets ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1"`` before importing JAX.
"""

from __future__ import annotations

import contextlib
import os

ENV = "DISENTANGLE_THREADS"


def thread_budget() -> int:
    """Threads the metrics of this process may use (>= 1)."""
    value = os.environ.get(ENV, "").strip()
    if value:
        try:
            return max(1, int(value))
        except ValueError:
            from metrics._common import MetricInputError

            raise MetricInputError(
                f"{ENV}={value!r} in the environment is not an integer; set it to the number "
                "of threads the metrics may use (e.g. 1), or unset it") from None
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def single_threaded_blas():
    """BLAS held to one thread inside the block (no-op without threadpoolctl)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")
