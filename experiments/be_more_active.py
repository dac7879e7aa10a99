"""Be More Active! (Bonheme & Grzes): active, mixed and passive latents across a beta sweep.

    python -m experiments.be_more_active --quick --out runs/be_more_active_quick
    python -m experiments.be_more_active --cpu --out results/be_more_active
    python -m experiments.be_more_active --full --out runs/be_more_active

Trains beta-VAEs on procedural dSprites (``configs/beta_vae_dsprites.py`` with overrides)
with more latents than factors, labels every latent active / mixed / passive from its
posterior variances and compares the mean and sampled representations per group
(``metrics.active_passive.study``, through ``disentangle analyze``). The study harness
(experiments/harness.py) writes ``OUT/results.json`` and ``OUT/report.md`` with 95 %
intervals over seeds and a verdict per claim; one run directory per (seed, beta) under
``OUT/seedS/betaB/`` holds ``active_passive.json`` and figures. A rerun resumes.

Modes (measured / estimated on 2 shared CPU cores; see docs/active_passive.md):
- ``--quick``: ``mlp_small`` networks, 10 latents, beta in (1, 8, 32), 600 steps at
  batch 64, learning rate 1e-3, 3,000 analysed inputs, one seed: 9.7 min measured with
  the two cores shared by ~6 other jobs (about 3-4 min on idle cores, estimated). Short
  training: collapsing latents still have m_i ~ 0.8-0.9 and count as mixed, so passive
  latents show up only at beta = 32.
- ``--cpu``: the same networks and betas, 4,000 steps, 5,000 analysed inputs, seeds 0-4:
  26 min measured on 2 Zen 4 cores (4.5-5.7 min a seed; 2026-12-03); passive latents at
  beta 8 and 32 (``results/be_more_active/``).
- ``--full``: the disentanglement_lib ``conv64`` networks, 10 latents, beta in
  (1, 2, 4, 8, 16, 32), 30,000 steps at batch 64 (learning rate 1e-4), 10,000 inputs,
  seeds (0, 1, 2): about 45 min per run on 2 idle cores, so about 14 hours in total
  (under an hour on a GPU; estimated, not run). Runs are independent; rerun to resume.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from experiments import harness

CONFIG = harness.CONFIGS / "beta_vae_dsprites.py"

MODES: dict[str, dict[str, Any]] = {
    "quick": {"network": "mlp_small", "latent_dim": 10, "betas": (1.0, 8.0, 32.0),
              "steps": 600, "batch_size": 64, "learning_rate": 1e-3, "seeds": (0,),
              "num_samples": 3000},
    "cpu": {"network": "mlp_small", "latent_dim": 10, "betas": (1.0, 8.0, 32.0),
            "steps": 4000, "batch_size": 64, "learning_rate": 1e-3, "seeds": tuple(range(5)),
            "num_samples": 5000},
    "full": {"network": "conv64", "latent_dim": 10, "betas": (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
             "steps": 30_000, "batch_size": 64, "learning_rate": 1e-4, "seeds": (0, 1, 2),
             "num_samples": 10_000},
}
SCORES = ("gaussian_total_correlation", "mean_pairwise_mi", "infom", "infoc", "mig",
          "logistic_accuracy_mean", "naive_bayes_accuracy_mean")
GROUPS = ("all", "active", "mixed", "passive", "non_passive")


def overrides(mode: dict[str, Any], beta: float, seed: int) -> list[str]:
    return [f"model.beta={beta}", f"model.network={mode['network']}",
            f"model.latent_dim={mode['latent_dim']}", f"train.steps={mode['steps']}",
            f"train.batch_size={mode['batch_size']}",
            f"train.learning_rate={mode['learning_rate']}", f"train.seed={seed}",
            "train.log_every=50", "train.checkpoint_every=500",
            f"eval.num_samples={mode['num_samples']}"]


def run_one(out: Path, mode: dict[str, Any], beta: float, seed: int) -> dict[str, Any]:
    """Train (or resume) one beta-VAE, analyse it, and return its summary row."""
    from disentangle.config import load_config
    from disentangle.runs import is_finished
    from disentangle.train import read_log, train_and_evaluate
    from experiments.commands.analyze import analyze_run

    workdir = out / f"beta{beta:g}"
    config = load_config(CONFIG, overrides(mode, beta, seed))
    t0 = time.perf_counter()
    if not is_finished(workdir):  # a finished run is only re-analysed
        train_and_evaluate(config, workdir, progress=False)
    t_train = time.perf_counter() - t0
    result = analyze_run(workdir, num_samples=mode["num_samples"], seed=0)
    log = read_log(workdir)
    last = [r for r in log if r["step"] > mode["steps"] - 200]  # the last 200 steps
    row = {"beta": beta, "seed": seed, "run": str(workdir),
           # Training time from the log (a rerun that only resumes a finished run is ~0 s).
           "train_seconds": round(log[-1]["time"] - log[0]["time"], 1),
           "analyze_seconds": round(time.perf_counter() - t0 - t_train, 1),
           "reconstruction": float(np.mean([r["reconstruction"] for r in last])),
           "kl": float(np.mean([r["kl"] for r in last])),
           "counts": result["counts"], "labels": result["latents"]["labels"],
           "posterior_variance_mean": result["latents"]["posterior_variance_mean"],
           "posterior_variance_var": result["latents"]["posterior_variance_var"],
           "groups": {}}
    for group in GROUPS:
        entry = result["groups"][group]
        if entry["empty"]:
            row["groups"][group] = {"size": 0, "empty": True}
            continue
        row["groups"][group] = {
            "size": entry["size"], "empty": False,
            **{f"{rep}_{key}": entry[rep].get(key) for rep in ("mean", "sampled")
               for key in SCORES},
            "gap": entry["gap"]}
    print(f"beta={beta:g} seed={seed}: {result['counts']}  train {row['train_seconds']:.0f}s "
          f"(this call {t_train:.0f}s), analysis {row['analyze_seconds']:.0f}s", flush=True)
    return row


def run_seed(settings: dict[str, Any], seed: int, workdir: Path) -> dict[str, float]:
    """Every beta of the mode at ``seed``: counts, losses and the group scores as figures
    ``beta{b}/count_{label}``, ``beta{b}/{group}/{rep}_{score}`` (absent when the group
    has fewer than two latents)."""
    figures: dict[str, float] = {}
    for beta in settings["betas"]:
        row = run_one(workdir, settings, beta, seed)
        tag = f"beta{beta:g}"
        figures |= {f"{tag}/count_{k}": float(v) for k, v in row["counts"].items()}
        figures |= {f"{tag}/reconstruction": row["reconstruction"], f"{tag}/kl": row["kl"]}
        for group, entry in row["groups"].items():
            if entry["empty"] or entry["size"] < 2:
                continue
            figures |= {f"{tag}/{group}/{k}": float(v) for k, v in entry.items()
                        if k.startswith(("mean_", "sampled_")) and v is not None}
    return figures


def plots(results: dict, out: Path) -> list[Path]:
    """OUT/counts_and_tc.png: label counts and mean/sampled TC per beta (means over seeds)."""
    from disentangle.analysis_plots import counts_and_gaps

    figs = results["figures"]
    mean = lambda key: figs[key]["mean"] if key in figs else None  # noqa: E731
    betas = results["settings"]["betas"]
    counts = [{k: mean(f"beta{b:g}/count_{k}") or 0.0 for k in ("active", "mixed", "passive")}
              for b in betas]
    tc = {rep: {g: [mean(f"beta{b:g}/{g}/{rep}_gaussian_total_correlation") for b in betas]
                for g in GROUPS} for rep in ("mean", "sampled")}
    return [counts_and_gaps(betas, counts, tc["mean"], tc["sampled"], out / "counts_and_tc.png")]


def _top(figures) -> str:
    return max((k.split("/")[0] for k in figures), key=lambda t: float(t[4:]))


def _bottom(figures) -> str:
    return min((k.split("/")[0] for k in figures), key=lambda t: float(t[4:]))


STUDY = harness.Study(
    name="be_more_active", title="Be More Active!: active, mixed and passive latents",
    paper="Bonheme & Grzes: Be More Active! Understanding the Differences between Mean and "
          "Sampled Representations of Variational Autoencoders (JMLR 2023)",
    modes=MODES, run_seed=run_seed, plots=plots,
    claims=[
        harness.Claim(
            "passive_grow_with_beta", "More passive latents at the largest beta than at beta 1",
            "passive variables appear as beta grows",
            lambda f: harness.greater(f, f"{_top(f)}/count_passive",
                                      f"{_bottom(f)}/count_passive")),
        harness.Claim(
            "passive_tc_mean_gt_sampled",
            "Passive latents: higher total correlation in the mean than in the sampled "
            "representation (largest beta)",
            "passive variables highly correlated in mean representations, uncorrelated in "
            "sampled ones",
            lambda f: harness.greater(f, f"{_top(f)}/passive/mean_gaussian_total_correlation",
                                      f"{_top(f)}/passive/sampled_gaussian_total_correlation")),
        harness.Claim(
            "dropping_passive_helps_naive_bayes",
            "Naive Bayes on the mean representation is more accurate without the passive "
            "latents (largest beta)",
            "dropping passive variables helps models sensitive to correlated inputs",
            lambda f: harness.greater(f, f"{_top(f)}/non_passive/mean_naive_bayes_accuracy_mean",
                                      f"{_top(f)}/all/mean_naive_bayes_accuracy_mean")),
    ],
    runtime={"quick": "3 betas x 1 seed x 600 steps, mlp_small (minutes)",
             "cpu": "3 betas x 5 seeds x 4000 steps, mlp_small: 4.5-5.7 min a seed, 26 min in "
                    "all on 2 Zen 4 cores (2026-12-03)",
             "full": "6 betas x 3 seeds x 30k steps, conv64 (~14 h on 2 CPUs)"})


def main(argv: list[str] | None = None) -> int:
    return harness.main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
