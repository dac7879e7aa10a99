"""``disentangle analyze RUN``: active / mixed / passive latents of a VAE run.

Bonheme & Grzes, "Be More Active!". Encodes ``--num-samples`` inputs of the run's
dataset (``config.eval`` by default), labels each latent from its posterior variances
(``metrics.active_passive.classify``), compares the mean and sampled representations
on every group (``metrics.active_passive.study``) and writes

- ``RUN/active_passive.json``: labels, m_i, v_i, counts and per-group scores;
- ``RUN/figures/active_passive_scatter.png``: (m_i, v_i) per latent with the regions;
- ``RUN/figures/active_passive_correlation.png``: |corr| of mean vs sampled latents.

Runs without posterior variances (AE, QLAE) are refused with a clear error.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from disentangle.errors import UserError

JSON_NAME = "active_passive.json"


def analyze_run(path: str | Path, num_samples: int | None = None, seed: int | None = None,
                var_threshold: float = 0.1, mean_tolerance: float = 0.1,
                figures: bool = True) -> dict[str, Any]:
    """Run the analysis on the run in ``path``; writes the JSON (and figures); returns it."""
    from disentangle import analysis_plots
    from disentangle.represent import represent
    from disentangle.runs import load_run
    from metrics.active_passive import study

    run = load_run(path)
    num_samples = int(num_samples or run.config.eval.num_samples)
    seed = int(run.config.eval.seed if seed is None else seed)
    if num_samples < 10:
        raise UserError(f"--num-samples={num_samples}: need at least 10 inputs")
    enc = represent(run.model, run.dataset, num_samples, seed)
    if enc.logvar is None:
        raise UserError(
            f"{path}: model {run.config.model.name!r} has no posterior variances (logvar), so "
            "its latents cannot be active or passive; `disentangle analyze` needs a Gaussian "
            "encoder (beta_vae, beta_tcvae, ...)")
    result = study(enc.mean, enc.logvar, enc.factors, np.random.default_rng([seed, 2]),
                   sampled=enc.sampled, var_threshold=var_threshold,
                   mean_tolerance=mean_tolerance,
                   factor_names=list(run.dataset.factor_names))
    result["run"] = {"path": str(run.path), "step": int(run.step),
                     "model": run.config.model.name, "beta": run.config.model.get("beta"),
                     "latent_dim": int(run.config.model.latent_dim),
                     "dataset": run.config.data.name, "seed": seed}
    (run.path / JSON_NAME).write_text(json.dumps(result, indent=2))
    if figures:
        lat = result["latents"]
        name = f"{run.path.name} (step {run.step})"
        analysis_plots.variance_scatter(
            lat["posterior_variance_mean"], lat["posterior_variance_var"], lat["labels"],
            run.figures / "active_passive_scatter.png", var_threshold=var_threshold,
            mean_tolerance=mean_tolerance, title=f"posterior variances: {name}")
        analysis_plots.correlation_heatmaps(
            enc.mean, enc.sampled, lat["labels"], run.figures / "active_passive_correlation.png",
            title=f"{name}: A = active, M = mixed, P = passive")
    return result


def summary(result: dict[str, Any]) -> str:
    """A few lines: counts and the mean-vs-sampled TC per group."""
    c = result["counts"]
    lines = [f"latents: {c['active']} active, {c['mixed']} mixed, {c['passive']} passive"]
    def fmt(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    for group, entry in result["groups"].items():
        if entry["empty"]:
            lines.append(f"  {group:8s} (empty)")
            continue
        mean, sampled = entry["mean"], entry["sampled"]
        key_tc, key_acc = "gaussian_total_correlation", "logistic_accuracy_mean"
        lines.append(f"  {group:8s} n={entry['size']:2d}  TC mean {fmt(mean[key_tc])} "
                     f"sampled {fmt(sampled[key_tc])}  logistic acc mean "
                     f"{fmt(mean[key_acc])} sampled {fmt(sampled[key_acc])}")
    return "\n".join(lines)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "analyze", help="active/mixed/passive latents of a VAE run (Be More Active!)")
    p.add_argument("run", help="run directory written by `disentangle train`")
    p.add_argument("--num-samples", type=int, default=None,
                   help="inputs to encode (default: config eval.num_samples)")
    p.add_argument("--seed", type=int, default=None, help="sample seed (default: eval.seed)")
    p.add_argument("--var-threshold", type=float, default=0.1,
                   help="v_i must be below this for active/passive (paper: 0.1)")
    p.add_argument("--mean-tolerance", type=float, default=0.1,
                   help="active: m_i <= tol; passive: |m_i - 1| <= tol (paper: 0.1)")
    p.add_argument("--no-figures", action="store_true", help="write only the JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    result = analyze_run(args.run, args.num_samples, args.seed, args.var_threshold,
                         args.mean_tolerance, figures=not args.no_figures)
    print(summary(result))
    print(f"wrote {Path(args.run) / JSON_NAME}")
    return 0
