"""Thread budget of the metrics in one process.

``thread_budget()`` is ``DISENTANGLE_THREADS`` when set, else the number of CPUs this
process may run on. DCI's numba tree kernels and the jobs of :func:`thread_map` (the
logistic fits' label columns, :mod:`metrics._linear`; InfoE's per-factor log losses;
explicitness' per-factor AUCs; SAP's per-latent SVMs) use at most that many threads;
BLAS is held to one thread while they run (their matmuls are small: OpenBLAS threads only
add wake-up and spin time, ~10x slower on a busy 2-core machine). Two evaluations side by
side took 0.65x the time of one after the other, with the default budget and with a budget
of 1 each (2-core Zen 4 EPYC, ``benchmarks/results/metrics.json``'s ``pair``,
docs/metrics.md).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

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


def thread_map(fn: Callable, items: Iterable) -> list:
    """``[fn(item) for item in items]`` on up to :func:`thread_budget` threads (numpy's sorts,
    matmuls and large ufuncs release the GIL), BLAS held to one thread; results in the order
    of ``items``. Put the longest items first: the pool takes them in order."""
    items = list(items)
    workers = min(len(items), thread_budget())
    with single_threaded_blas():
        if workers <= 1:
            return [fn(item) for item in items]
        with ThreadPoolExecutor(workers) as pool:
            return list(pool.map(fn, items))
