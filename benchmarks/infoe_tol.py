"""InfoE's L-BFGS-B gradient tolerance: value, iterations and seconds per tolerance.

    python benchmarks/infoe_tol.py --json benchmarks/results/metrics_infoe_tol.json
        [--cases beta_vae_mean,beta_vae_sampled,qlae_codes,synthetic] [--sizes 10000]
        [--tols 1e-5,3e-5]

Per case (:mod:`benchmarks.metrics`'s fixtures), size and ``tol``: InfoE and its per-factor
values, the iterations (L-BFGS-B's plus Newton steps) of the slowest factor and the seconds
of ``metrics.infomec``; the figures behind :data:`metrics.infomec.INFOE_TOL` (largest
``|InfoE(tol) - InfoE(first tol)|`` per case, of InfoE and of a factor's term, and the ratio of
seconds).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import write_json  # noqa: E402

import metrics as suite  # noqa: E402
from benchmarks.metrics import CASES, SolverLog, cpu_model, load_case, timed  # noqa: E402
from metrics._threads import single_threaded_blas  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="output file")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--tols", default="1e-5,3e-5")
    args = parser.parse_args(argv)
    tols = [float(t) for t in args.tols.split(",")]
    results: dict = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
                     "load_average_start": os.getloadavg(), "tols": tols, "cases": {}}
    log = SolverLog()
    with single_threaded_blas():
        for n in [int(s) for s in args.sizes.split(",")]:
            for case in args.cases.split(","):
                codes, factors = load_case(case, n)
                suite.infomec(codes, factors)  # warm: kernels loaded, pages faulted
                log.take()
                rows = []
                for tol in tols:
                    out, seconds, _ = timed(suite.infomec, codes, factors, tol=tol)
                    rows.append({"tol": tol, "seconds": seconds, "infoe": float(out["infoe"]),
                                 "infoe_per_factor": out["infoe_per_factor"].tolist(),
                                 "iterations_max_over_factors":
                                     log.take()[0]["iterations_max_over_factors"]})
                    print(f"{case:18s} n={n:6d} tol={tol:g}: InfoE {out['infoe']:.5f}, "
                          f"{rows[-1]['iterations_max_over_factors']} iterations, "
                          f"{seconds:.2f}s", flush=True)
                entry = {"runs": rows,
                         "max_abs_infoe_change": max(abs(r["infoe"] - rows[0]["infoe"])
                                                     for r in rows),
                         "max_abs_per_factor_change": max(
                             abs(a - b) for r in rows
                             for a, b in zip(r["infoe_per_factor"], rows[0]["infoe_per_factor"])),
                         "seconds_ratio_last_to_first": rows[-1]["seconds"] / rows[0]["seconds"]}
                results["cases"].setdefault(case, {})[str(n)] = entry
    results["load_average_end"] = os.getloadavg()
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
