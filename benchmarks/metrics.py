"""Time the metric suite on codes of trained models and on synthetic codes, check it against
the plain scikit-learn references, and time two evaluations side by side.

    python benchmarks/metrics.py --json benchmarks/results/metrics.json
        [--cases beta_vae_mean,beta_vae_sampled,qlae_codes,synthetic] [--sizes 10000,100000]
        [--reference-n 10000] [--gbt-reference-n 2000] [--skip-references] [--skip-pair]
        [--repeats 3]

Cases: the fixtures of ``benchmarks/fixtures/`` (10,000 samples of a beta-VAE's means and
sampled codes and of a QLAE's integer codes on dSprites; README there) and ``synthetic``
(``n x 10`` float codes, a noisy linear mix of dSprites-sized factors (3, 6, 40, 32, 32)
plus five nuisance latents). 100,000 samples of a fixture are its rows drawn with
replacement (seeded), float codes jittered by ``1e-3`` x the latent's standard deviation
(so ties stay rare); synthetic codes are drawn at that size.

Per case and size: wall and process-CPU seconds of each metric of
:data:`metrics.DEFAULT_METRICS` called directly (the median of ``--repeats`` calls, by default 3
at up to 10,000 samples and 1 above), in a process where the suite already ran
once on other codes of the same shape (JAX programs and numba kernels loaded: the state of
an evaluation that scores a second representation, or of any later process with the on-disk
caches warm); the first call of the process is timed too. For the logistic fits (InfoE,
explicitness): iterations, L-BFGS-B's plus Newton-CG steps (max over factors). Agreement:
``|ours - reference|`` of every scalar against :mod:`metrics.reference` (sklearn) at
``--reference-n`` samples (DCI's GradientBoostingClassifier reference on
``--gbt-reference-n`` training samples, held-out set as ours).

Pair: the whole suite (``metrics.evaluate``) on one case in two fresh processes, one after
the other, then both at once (with ``DISENTANGLE_THREADS`` = cores // 2 each, the budget a
user may give each of two sweep workers, and with the default budget, which a sweep with
``--workers 2`` keeps); the figure is (side by side wall) / (sequential wall).
Recorded: CPU model, core count, load average at start and end.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import write_json  # noqa: E402

import metrics  # noqa: E402
from metrics import reference  # noqa: E402

FIXTURES = ROOT / "benchmarks" / "fixtures"
SIZES = (3, 6, 40, 32, 32)
CASES = ("beta_vae_mean", "beta_vae_sampled", "qlae_codes", "synthetic")
SCALARS = {"infomec": ("infom", "infoe", "infoc"), "mig": ("mig",),
           "dci": ("disentanglement", "completeness", "informativeness"), "sap": ("sap",),
           "modularity_explicitness": ("modularity", "explicitness"),
           "unsupervised": ("gaussian_total_correlation", "mutual_info_score")}


def make_codes(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic ``codes [n, 10]`` and dSprites-sized ``factors [n, 5]``."""
    rng = np.random.default_rng(seed)
    factors = np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)
    scaled = factors / (np.asarray(SIZES) - 1.0)
    mix = np.eye(5) + 0.25 * rng.random((5, 5)) * (rng.random((5, 5)) < 0.4)
    codes = np.concatenate([scaled @ mix + 0.05 * rng.standard_normal((n, 5)),
                            0.5 * rng.standard_normal((n, 5))], axis=1)
    return codes[:, rng.permutation(10)], factors


def load_case(case: str, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Codes and factors of ``case`` with ``n`` rows (see the module docstring)."""
    if case == "synthetic":
        return make_codes(n, seed)
    data = np.load(FIXTURES / f"{case}.npz")
    codes, factors = data["codes"], data["factors"].astype(np.int64)
    if n == len(codes):
        return codes, factors
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, len(codes), n)
    codes, factors = codes[rows], factors[rows]
    if np.issubdtype(codes.dtype, np.floating):
        codes = codes + 1e-3 * codes.std(axis=0) * rng.standard_normal(codes.shape)
    return codes, factors


class SolverLog:
    """Wraps ``fit_softmax`` where InfoE and explicitness call it; keeps each fit's counts."""

    def __init__(self):
        self.fits: list[dict] = []
        for module in ("metrics.infomec", "metrics.modularity"):
            mod = importlib.import_module(module)
            mod.fit_softmax = self._wrap(mod.fit_softmax, module.split(".")[1])

    def _wrap(self, fit, where):
        def recorded(*args, **kwargs):
            w, b, iterations = fit(*args, **kwargs)
            self.fits.append({"metric": where, "iterations_max_over_factors": iterations,
                              "max_iter": kwargs.get("max_iter", 2000)})
            return w, b, iterations

        return recorded

    def take(self) -> list[dict]:
        out, self.fits = self.fits, []
        return out


def timed(fn, *args, **kwargs):
    """``(result, wall seconds, process CPU seconds)``."""
    start, cpu = time.perf_counter(), time.process_time()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start, time.process_time() - cpu


def time_suite(codes, factors, log: SolverLog, repeats: int = 1) -> dict:
    """Per-metric seconds and CPU seconds (medians over ``repeats`` calls, each call's in
    ``seconds_each``), values and solver counts (of the last call) of the default suite."""
    out, total, total_cpu = {}, 0.0, 0.0
    for name in metrics.DEFAULT_METRICS:
        walls, cpus = [], []
        for _ in range(repeats):
            log.take()
            result, wall, cpu = timed(metrics.METRICS.get(name), codes, factors)
            walls.append(wall)
            cpus.append(cpu)
        wall, cpu = float(np.median(walls)), float(np.median(cpus))
        total, total_cpu = total + wall, total_cpu + cpu
        out[name] = {"seconds": wall, "cpu_seconds": cpu, "seconds_each": walls,
                     "values": {k: float(result[k]) for k in SCALARS[name]}}
        fits = log.take()
        if fits:
            out[name]["solver"] = fits
    return {"metrics": out, "suite_seconds": total, "suite_cpu_seconds": total_cpu}


def references(codes, factors, gbt_n: int) -> dict:
    """``|ours - sklearn reference|`` per scalar (and the reference's seconds)."""
    out = {}
    simple = {"infomec": (metrics.infomec, reference.infomec_reference),
              "mig": (metrics.mig, reference.mig_reference),
              "sap": (metrics.sap, reference.sap_reference),
              "modularity_explicitness": (metrics.modularity_explicitness,
                                          reference.modularity_explicitness_reference)}
    for name, (ours_fn, ref_fn) in simple.items():
        ours = ours_fn(codes, factors)
        ref, wall, _ = timed(ref_fn, codes, factors)
        keys = [k for k in SCALARS[name] if k in ref]
        out[name] = {"reference_seconds": wall,
                     "abs_diff": {k: abs(float(ours[k]) - float(ref[k])) for k in keys}}
        print(f"  reference {name}: {wall:.1f}s, max|diff| "
              f"{max(out[name]['abs_diff'].values()):.4f}", flush=True)
    # DCI: sklearn's GradientBoostingClassifier is minutes at 10,000 samples and 40 classes;
    # both sides train on the first gbt_n rows and are tested on the next 20%
    n_test = max(1, gbt_n // 4)
    tr, te = slice(0, gbt_n), slice(gbt_n, gbt_n + n_test)
    ours = metrics.dci(codes[tr], factors[tr], codes[te], factors[te])
    ref, wall, _ = timed(reference.dci_reference, codes[tr], factors[tr], codes[te],
                         factors[te])
    out["dci"] = {"reference_seconds": wall, "train_samples": gbt_n, "test_samples": n_test,
                  "abs_diff": {k: abs(float(ours[k]) - float(ref[k]))
                               for k in SCALARS["dci"]}}
    print(f"  reference dci ({gbt_n} train): {wall:.1f}s, max|diff| "
          f"{max(out['dci']['abs_diff'].values()):.4f}", flush=True)
    return out


def child(case: str, n: int) -> None:
    """One evaluation in this process (for the pair timing): prints its seconds as JSON."""
    codes, factors = load_case(case, n)
    start = time.perf_counter()
    metrics.evaluate(codes, factors)
    print(json.dumps({"suite_seconds": time.perf_counter() - start}))


def run_pair(case: str, n: int) -> dict:
    """Two fresh processes evaluating ``case``: in sequence (default threads), then side by
    side with half the cores each (``DISENTANGLE_THREADS``), and side by side with default
    threads (what a sweep with ``--workers 2`` runs)."""
    cmd = [sys.executable, __file__, "--child", case, "--child-n", str(n)]
    from metrics._threads import ENV, thread_budget

    budget = str(max(1, thread_budget() // 2))

    def launch(env=None):
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                env=None if env is None else dict(os.environ, **env))

    def finish(proc):
        out, _ = proc.communicate()
        return json.loads(out.strip().splitlines()[-1])["suite_seconds"]

    start = time.perf_counter()
    seq = [finish(launch()), finish(launch())]
    out = {"case": case, "n": n, "sequential_seconds": time.perf_counter() - start,
           "suite_seconds_in_process": {"sequential": seq}, "budget_per_process": int(budget)}
    for name, env in (("side_by_side", {ENV: budget}), ("side_by_side_default_threads", None)):
        start = time.perf_counter()
        procs = [launch(env), launch(env)]
        out["suite_seconds_in_process"][name] = [finish(p) for p in procs]
        out[f"{name}_seconds"] = time.perf_counter() - start
        out[f"{name}_ratio"] = out[f"{name}_seconds"] / out["sequential_seconds"]
    return out


def cpu_model() -> str:
    """The CPU's model name (:func:`disentangle.backend.machine`)."""
    from disentangle.backend import machine

    return machine()["cpu"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", help="output file")
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--repeats", type=int,
                        help="calls per metric and case, median seconds (default 3 up to "
                             "10,000 samples, 1 above)")
    parser.add_argument("--reference-n", type=int, default=10000)
    parser.add_argument("--gbt-reference-n", type=int, default=2000)
    parser.add_argument("--skip-references", action="store_true")
    parser.add_argument("--skip-pair", action="store_true")
    parser.add_argument("--pair-case", default="beta_vae_mean")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-n", type=int, default=10000, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats is not None and args.repeats < 1:
        parser.error(f"--repeats {args.repeats}: give at least 1 call per metric and case")
    if args.child:
        child(args.child, args.child_n)
        return 0
    import jax

    from metrics._threads import single_threaded_blas, thread_budget

    cases, sizes = args.cases.split(","), [int(s) for s in args.sizes.split(",")]
    results: dict = {"cpu_model": cpu_model(), "cpu_count": os.cpu_count(),
                     "thread_budget": thread_budget(), "jax_backend": jax.default_backend(),
                     "jax_version": jax.__version__, "load_average_start": os.getloadavg(),
                     "xla_flags": os.environ.get("XLA_FLAGS", ""), "cases": {}}
    log = SolverLog()
    with single_threaded_blas():
        for n in sizes:
            # first call of the process at this size (other codes: synthetic, same n)
            codes, factors = make_codes(n, seed=1)
            first = time_suite(codes, factors, log)
            results.setdefault("first_call", {})[str(n)] = {
                "suite_seconds": first["suite_seconds"],
                "per_metric": {k: v["seconds"] for k, v in first["metrics"].items()}}
            print(f"first suite call at n={n}: {first['suite_seconds']:.2f}s", flush=True)
            for case in cases:
                codes, factors = load_case(case, n)
                repeats = args.repeats or (3 if n <= 10_000 else 1)
                entry = time_suite(codes, factors, log, repeats)
                per = "  ".join(f"{k} {v['seconds']:.2f}" for k, v in entry["metrics"].items())
                print(f"{case:18s} n={n:6d}  suite {entry['suite_seconds']:6.2f}s "
                      f"(CPU {entry['suite_cpu_seconds']:.2f}s)  {per}", flush=True)
                results["cases"].setdefault(case, {})[str(n)] = entry
        if not args.skip_references:
            for case in cases:
                print(f"references on {case} ({args.reference_n} samples)", flush=True)
                codes, factors = load_case(case, args.reference_n)
                results["cases"][case]["agreement"] = references(
                    codes, factors, args.gbt_reference_n)
    if not args.skip_pair:
        results["pair"] = run_pair(args.pair_case, 10000)
        pair = results["pair"]
        print(f"pair ({args.pair_case}): sequential {pair['sequential_seconds']:.1f}s, side by "
              f"side {pair['side_by_side_seconds']:.1f}s with budget {pair['budget_per_process']}"
              f" (ratio {pair['side_by_side_ratio']:.2f}), "
              f"{pair['side_by_side_default_threads_seconds']:.1f}s with default threads "
              f"(ratio {pair['side_by_side_default_threads_ratio']:.2f})", flush=True)
    results["load_average_end"] = os.getloadavg()
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
