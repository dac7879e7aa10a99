"""Time the metric suite against the plain scikit-learn references on the same codes.

    python benchmarks/metrics.py --json OUT.json [--n 10000] [--gbt-n N] [--skip-gbt]
                                 [--skip-references] [--skip-compile]

Codes: ``n x 10`` float codes, a noisy linear mix of dSprites-sized factors
(3, 6, 40, 32, 32) plus five nuisance latents. Suite: InfoMEC, MIG, DCI (default
``importance="gbt"``), SAP, modularity/explicitness. References:
:mod:`metrics.reference` (sklearn ``mutual_info_classif``/``LogisticRegression``/
``mutual_info_score``/``GradientBoostingClassifier``/``LinearSVC``). DCI's default
``importance="gbt"`` (compiled histogram boosting, :mod:`metrics._gbt`) is timed on its
first call in this process — which includes importing numba and loading the compiled
kernels from numba's on-disk cache — and again warm; the suite total uses the first call.
The one-off compilation (empty cache, as on a fresh checkout) is timed separately in a
subprocess with an empty ``NUMBA_CACHE_DIR`` (``--skip-compile`` skips it). The
``logistic`` option is timed too. The sklearn GradientBoostingClassifier reference is the
slow part (minutes) and can be run on a subsample (``--gbt-n``, then the default is timed on
the same subsample) or skipped (``--skip-gbt``; ``--skip-references`` skips every
reference, for quick iterations). BLAS is limited to one thread for both sides (on a shared
2-core machine threaded OpenBLAS makes these small matmuls ~10x slower); numba uses its
default thread count (the cores).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_json  # noqa: E402

import metrics  # noqa: E402
from metrics import reference  # noqa: E402

SIZES = (3, 6, 40, 32, 32)


def make_codes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)
    scaled = factors / (np.asarray(SIZES) - 1.0)
    mix = np.eye(5) + 0.25 * rng.random((5, 5)) * (rng.random((5, 5)) < 0.4)
    codes = np.concatenate([scaled @ mix + 0.05 * rng.standard_normal((n, 5)),
                            0.5 * rng.standard_normal((n, 5))], axis=1)
    return codes[:, rng.permutation(10)], factors


CPU_SECONDS: dict[int, float] = {}


def timed(fn, *args, **kwargs):
    """Result and wall seconds; the process CPU seconds go to ``CPU_SECONDS[id(result)]``
    (on a shared machine CPU time is the steadier figure)."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    CPU_SECONDS[id(out)] = time.process_time() - cpu
    return out, time.perf_counter() - start


_COMPILE_SNIPPET = """
import sys, time
sys.path.insert(0, {root!r})
import numpy as np
from metrics import _gbt
start = time.perf_counter()
_gbt.fit_gbt(np.arange(40.0)[:, None], np.arange(40) % 3, 3, n_stages=2)
print(time.perf_counter() - start)
"""


def compile_seconds() -> float:
    """Seconds for the first fit in a fresh process with an empty numba cache: numba import
    plus compiling the kernels (a fresh checkout pays this once; later processes load the
    kernels from the cache)."""
    root = str(Path(__file__).resolve().parents[1])
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        out = subprocess.run([sys.executable, "-c", _COMPILE_SNIPPET.format(root=root)],
                             env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.split()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="output file")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--gbt-n", type=int, default=None,
                        help="samples for the GBT (DCI default/reference) timing; default --n")
    parser.add_argument("--skip-gbt", action="store_true")
    parser.add_argument("--skip-references", action="store_true",
                        help="time only our metrics (no sklearn references at all)")
    parser.add_argument("--skip-compile", action="store_true",
                        help="do not time the cold numba compilation")
    args = parser.parse_args(argv)
    if args.skip_references:
        args.skip_gbt = True
    from threadpoolctl import threadpool_limits

    codes, factors = make_codes(args.n)
    suite = {
        "infomec": (lambda: metrics.infomec(codes, factors),
                    lambda: reference.infomec_reference(codes, factors),
                    ("infom", "infoe", "infoc")),
        "mig": (lambda: metrics.mig(codes, factors),
                lambda: reference.mig_reference(codes, factors), ("mig",)),
        "sap": (lambda: metrics.sap(codes, factors),
                lambda: reference.sap_reference(codes, factors), ("sap",)),
        "modularity_explicitness": (lambda: metrics.modularity_explicitness(codes, factors),
                                    lambda: reference.modularity_explicitness_reference(
                                        codes, factors), ("modularity", "explicitness")),
    }
    from metrics import _gbt

    results: dict = {"n": args.n, "num_latents": codes.shape[1], "factor_sizes": SIZES,
                     "load_average_start": os.getloadavg(), "cpu_count": os.cpu_count(),
                     "dci_backend": "numba" if _gbt.have_numba() else "numpy",
                     "metrics": {}}
    if _gbt.have_numba():
        import numba

        results.update({"numba_version": numba.__version__,
                        "numba_threads": numba.get_num_threads()})
    with threadpool_limits(limits=1, user_api="blas"):
        for name, (ours_fn, ref_fn, keys) in suite.items():
            ours, t_ours = timed(ours_fn)
            if args.skip_references:
                results["metrics"][name] = {"seconds": t_ours,
                                            "cpu_seconds": CPU_SECONDS[id(ours)],
                                            "values": {k: float(ours[k]) for k in keys}}
                print(f"{name:26s} ours {t_ours:7.2f}s (CPU {CPU_SECONDS[id(ours)]:.2f}s)",
                      flush=True)
                continue
            ref, t_ref = timed(ref_fn)
            diff = {k: abs(float(ours[k]) - float(ref[k])) for k in keys}
            results["metrics"][name] = {"seconds": t_ours, "reference_seconds": t_ref,
                                        "cpu_seconds": CPU_SECONDS[id(ours)],
                                        "reference_cpu_seconds": CPU_SECONDS[id(ref)],
                                        "speedup": t_ref / t_ours, "abs_diff": diff,
                                        "values": {k: float(ours[k]) for k in keys}}
            print(f"{name:26s} ours {t_ours:7.2f}s  sklearn {t_ref:7.2f}s  "
                  f"x{t_ref / t_ours:6.1f}  (CPU {CPU_SECONDS[id(ours)]:.2f}s vs "
                  f"{CPU_SECONDS[id(ref)]:.2f}s)  max|diff| {max(diff.values()):.4f}", flush=True)
        keys = ("disentanglement", "completeness", "informativeness")
        gbt_n = args.gbt_n or args.n
        ours, t_ours = timed(metrics.dci, codes[:gbt_n], factors[:gbt_n])  # first call
        warm, t_warm = timed(metrics.dci, codes[:gbt_n], factors[:gbt_n])
        fast, t_fast = timed(metrics.dci, codes, factors, importance="logistic")
        entry = {"seconds": t_ours, "cpu_seconds": CPU_SECONDS[id(ours)], "samples": gbt_n,
                 "timing": "first call in the process (numba import + cached kernels load)",
                 "warm_seconds": t_warm, "warm_cpu_seconds": CPU_SECONDS[id(warm)],
                 "values": {k: float(ours[k]) for k in keys},
                 "logistic_seconds": t_fast, "logistic_cpu_seconds": CPU_SECONDS[id(fast)],
                 "logistic_values": {k: float(fast[k]) for k in keys}}
        print(f"{'dci (default gbt)':26s} ours {t_ours:7.2f}s first call, {t_warm:.2f}s warm "
              f"({gbt_n} samples, CPU {CPU_SECONDS[id(ours)]:.2f}s / "
              f"{CPU_SECONDS[id(warm)]:.2f}s); logistic option {t_fast:.2f}s", flush=True)
        if not args.skip_gbt:
            ref, t_ref = timed(reference.dci_reference, codes[:gbt_n], factors[:gbt_n])
            entry.update({"reference_seconds": t_ref, "reference_samples": gbt_n,
                          "reference_cpu_seconds": CPU_SECONDS[id(ref)],
                          "speedup": t_ref / t_ours,
                          "reference_values": {k: float(ref[k]) for k in keys},
                          "abs_diff": {k: abs(float(ours[k]) - float(ref[k])) for k in keys},
                          "abs_diff_logistic_vs_gbt": {
                              k: abs(float(fast[k]) - float(ref[k]))
                              for k in ("disentanglement", "completeness")}})
            print(f"{'dci (default gbt)':26s} ours {t_ours:7.2f}s  sklearn GBT {t_ref:7.2f}s "
                  f"({gbt_n} samples)  x{t_ref / t_ours:6.1f}  (CPU "
                  f"{CPU_SECONDS[id(ours)]:.2f}s vs {CPU_SECONDS[id(ref)]:.2f}s)  max|diff| "
                  f"{max(entry['abs_diff'].values()):.4f}", flush=True)
        results["metrics"]["dci"] = entry
    if _gbt.have_numba() and not args.skip_compile:
        results["dci_cold_compile_seconds"] = compile_seconds()
        print(f"numba compilation with an empty cache (once per checkout): "
              f"{results['dci_cold_compile_seconds']:.1f}s", flush=True)
    # totals over the metrics timed on both sides (DCI only when its GBT reference ran)
    both = [m for m in results["metrics"].values() if "reference_seconds" in m]
    total = sum(m["seconds"] for m in both)
    ref_total = sum(m["reference_seconds"] for m in both)
    results["suite_seconds_all"] = sum(m["seconds"] for m in results["metrics"].values())
    results["suite_cpu_seconds_all"] = sum(m["cpu_seconds"]
                                           for m in results["metrics"].values())
    cpu = sum(m["cpu_seconds"] for m in both)
    ref_cpu = sum(m["reference_cpu_seconds"] for m in both)
    results["load_average_end"] = os.getloadavg()
    print(f"whole suite incl. default DCI: {results['suite_seconds_all']:.2f}s wall, "
          f"{results['suite_cpu_seconds_all']:.2f}s CPU")
    if both:
        results.update({"suite_seconds": total, "reference_seconds": ref_total,
                        "suite_cpu_seconds": cpu, "reference_cpu_seconds": ref_cpu,
                        "cpu_speedup": ref_cpu / cpu,
                        "speedup": ref_total / total,
                        "max_abs_diff": max(max(m["abs_diff"].values())
                                            for m in results["metrics"].values()
                                            if "abs_diff" in m)})
        print(f"CPU: suite {cpu:.2f}s  references {ref_cpu:.2f}s  x{ref_cpu / cpu:.1f}")
        print(f"suite {total:.2f}s  references {ref_total:.2f}s  x{ref_total / total:.1f}  "
              f"largest disagreement {results['max_abs_diff']:.4f}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
