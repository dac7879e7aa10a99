"""InfoE's balanced logistic fits on the host (scipy L-BFGS-B) and on the default JAX device
(``metrics._linear_device``): warm seconds, iterations and cross-entropy agreement.

    python benchmarks/fit_device.py [--cases beta_vae_mean,beta_vae_sampled,qlae_codes]
        [--n 10000] [--repeats 2] [--json benchmarks/results/fit_device.json]

Per case (the fixtures of ``benchmarks/fixtures/``, rows as ``benchmarks/metrics.py``
loads them): InfoE's inputs (one-hot discrete latents, standardised continuous ones) and
label-encoded factors; each path fitted once to warm up (the device path compiles), then
timed ``--repeats`` times (the fastest wall time kept, with its process CPU seconds).
Agreement: per factor the balanced objective ``sum_i w_i CE_i / sum_i w_i`` and InfoE's
plain mean CE, max |host - device| over factors.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import write_json  # noqa: E402

from metrics import _linear_device  # noqa: E402
from metrics._common import is_discrete, prepare  # noqa: E402
from metrics._linear import balanced_weights, fit_softmax, log_proba  # noqa: E402
from metrics.infomec import infoe_features  # noqa: E402

# the fixtures' loader of benchmarks/metrics.py (a file name that the package shadows)
_spec = importlib.util.spec_from_file_location("metrics_benchmark", ROOT / "benchmarks" /
                                               "metrics.py")
_bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_bench)
load_case = _bench.load_case


def cross_entropies(x, y, num_classes, fit) -> tuple[np.ndarray, np.ndarray]:
    """``(balanced objective [K], plain mean CE [K])`` of a fit ``(w, b, _)``."""
    logp = log_proba(x, fit[0], fit[1])
    rows = np.arange(len(x))
    ce = -np.stack([logp[k, rows, y[:, k]] for k in range(y.shape[1])])  # [K, n]
    weights = balanced_weights(y, num_classes)
    return (np.sum(weights * ce, axis=1) / weights.sum(axis=1)), ce.mean(axis=1)


def timed_fits(fit, x, y, num_classes, repeats: int):
    """``(result, fastest warm wall seconds, its process CPU seconds)`` after one warm-up
    call (a process paused by a scheduler shows in the wall time only)."""
    fit(x, y, num_classes, balanced=True)
    best, out = (np.inf, np.inf), None
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        out = fit(x, y, num_classes, balanced=True)
        best = min(best, (time.perf_counter() - start, time.process_time() - cpu))
    return out, best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="beta_vae_mean,beta_vae_sampled,qlae_codes")
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", help="output file")
    args = parser.parse_args(argv)
    import jax

    os.environ.pop("DISENTANGLE_FIT", None)  # fit_softmax below is the host path on CPU
    results = {"cpu_model": _bench.cpu_model(), "jax_backend": jax.default_backend(),
               "cpu_count": os.cpu_count(),
               "load_average_start": os.getloadavg(), "n": args.n, "cases": {}}
    for case in args.cases.split(","):
        codes, factors = load_case(case, args.n)
        prep = prepare(codes, factors)
        x = infoe_features(prep.codes, is_discrete(prep.codes))
        y, num_classes = prep.factors, prep.num_classes
        host, (host_s, host_cpu) = timed_fits(fit_softmax, x, y, num_classes, args.repeats)
        device, (device_s, device_cpu) = timed_fits(_linear_device.fit_softmax_device, x, y,
                                                    num_classes, args.repeats)
        (obj_h, ce_h), (obj_d, ce_d) = (cross_entropies(x, y, num_classes, f)
                                        for f in (host, device))
        entry = {"inputs": x.shape[1], "factors": y.shape[1], "host_seconds": host_s,
                 "host_cpu_seconds": host_cpu, "device_seconds": device_s,
                 "device_cpu_seconds": device_cpu, "host_iterations": host[2],
                 "device_iterations": device[2],
                 "objective_max_abs_diff": float(np.max(np.abs(obj_h - obj_d))),
                 "objective_device_minus_host": (obj_d - obj_h).tolist(),
                 "mean_ce_max_abs_diff": float(np.max(np.abs(ce_h - ce_d)))}
        results["cases"][case] = entry
        print(f"{case:18s} D={x.shape[1]:3d}  host {host_s:6.2f}s (CPU {host_cpu:.2f}s, "
              f"{host[2]} it)  device {device_s:6.2f}s (CPU {device_cpu:.2f}s, {device[2]} it)  "
              f"|obj diff| {entry['objective_max_abs_diff']:.1e}  "
              f"|CE diff| {entry['mean_ce_max_abs_diff']:.1e}", flush=True)
    results["load_average_end"] = os.getloadavg()
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
