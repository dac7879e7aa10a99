"""Time the metric suite against the plain scikit-learn references on the same codes.

    python benchmarks/metrics.py --json OUT.json [--n 10000] [--gbt-n N] [--skip-gbt]

Codes: ``n x 10`` float codes, a noisy linear mix of dSprites-sized factors
(3, 6, 40, 32, 32) plus five nuisance latents. Suite: InfoMEC, MIG, DCI (default
``importance="gbt"``), SAP, modularity/explicitness. References:
:mod:`metrics.reference` (sklearn ``mutual_info_classif``/``LogisticRegression``/
``mutual_info_score``/``GradientBoostingClassifier``/``LinearSVC``). DCI is timed twice:
the default ``importance="gbt"`` (our vectorised histogram boosting, :mod:`metrics._gbt`)
against the sklearn GradientBoostingClassifier reference, and the ``logistic`` option. The
reference GBT timing is the slow part (minutes) and can be run on a subsample
(``--gbt-n``, then the default is timed on the same subsample) or skipped. BLAS is limited
to one thread for both sides (on a shared 2-core machine threaded OpenBLAS makes these
small matmuls ~10x slower).
"""

from __future__ import annotations

import argparse
import os
import sys
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", required=True, help="output file")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--gbt-n", type=int, default=None,
                        help="samples for the GBT (DCI default/reference) timing; default --n")
    parser.add_argument("--skip-gbt", action="store_true")
    args = parser.parse_args(argv)
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
    results: dict = {"n": args.n, "num_latents": codes.shape[1], "factor_sizes": SIZES,
                     "load_average_start": os.getloadavg(), "metrics": {}}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, (ours_fn, ref_fn, keys) in suite.items():
            ours, t_ours = timed(ours_fn)
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
        fast, t_fast = timed(metrics.dci, codes, factors, importance="logistic")
        ours, t_ours = timed(metrics.dci, codes[:gbt_n], factors[:gbt_n])
        entry = {"seconds": t_ours, "cpu_seconds": CPU_SECONDS[id(ours)], "samples": gbt_n,
                 "values": {k: float(ours[k]) for k in keys},
                 "logistic_seconds": t_fast, "logistic_cpu_seconds": CPU_SECONDS[id(fast)],
                 "logistic_values": {k: float(fast[k]) for k in keys}}
        print(f"{'dci (default gbt)':26s} ours {t_ours:7.2f}s ({gbt_n} samples, CPU "
              f"{CPU_SECONDS[id(ours)]:.2f}s); logistic option {t_fast:.2f}s", flush=True)
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
    # totals over the metrics timed on both sides (DCI only when its GBT reference ran)
    both = [m for m in results["metrics"].values() if "reference_seconds" in m]
    total = sum(m["seconds"] for m in both)
    ref_total = sum(m["reference_seconds"] for m in both)
    results["suite_seconds_all"] = sum(m["seconds"] for m in results["metrics"].values())
    results["suite_cpu_seconds_all"] = sum(m["cpu_seconds"]
                                           for m in results["metrics"].values())
    cpu = sum(m["cpu_seconds"] for m in both)
    ref_cpu = sum(m["reference_cpu_seconds"] for m in both)
    results.update({"suite_seconds": total, "reference_seconds": ref_total,
                    "suite_cpu_seconds": cpu, "reference_cpu_seconds": ref_cpu,
                    "cpu_speedup": ref_cpu / cpu,
                    "speedup": ref_total / total,
                    "max_abs_diff": max(max(m["abs_diff"].values())
                                        for m in results["metrics"].values()
                                        if "abs_diff" in m),
                    "load_average_end": os.getloadavg()})
    print(f"whole suite incl. default DCI: {results['suite_seconds_all']:.2f}s wall, "
          f"{results['suite_cpu_seconds_all']:.2f}s CPU")
    print(f"CPU: suite {cpu:.2f}s  references {ref_cpu:.2f}s  x{ref_cpu / cpu:.1f}")
    print(f"suite {total:.2f}s  references {ref_total:.2f}s  x{ref_total / total:.1f}  "
          f"largest disagreement {results['max_abs_diff']:.4f}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
