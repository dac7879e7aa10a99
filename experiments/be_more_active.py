"""Be More Active! (Bonheme & Grzes): active, mixed and passive latents across a beta sweep.

    python -m experiments.be_more_active --quick --out runs/be_more_active_quick
    python -m experiments.be_more_active --full  --out runs/be_more_active

Trains beta-VAEs on procedural dSprites (``configs/beta_vae_dsprites.py`` with overrides)
with more latents than factors, labels every latent active / mixed / passive from its
posterior variances and compares the mean and sampled representations per group
(``metrics.active_passive.study``, through ``disentangle analyze``). Writes
``OUT/results.json``, ``OUT/report.md`` and one run directory per (beta, seed) under
``OUT/runs/`` with ``active_passive.json`` and figures. A rerun resumes unfinished runs
and only re-analyses finished ones.

Modes (measured / estimated on 2 shared CPU cores; see docs/active_passive.md):
- ``--quick``: ``mlp_small`` networks, 10 latents, beta in (1, 8, 32), 600 steps at
  batch 64, learning rate 1e-3, 3,000 analysed inputs, one seed: 9.7 min measured with
  the two cores shared by ~6 other jobs (about 3-4 min on idle cores, estimated). Short
  training: collapsing latents still have m_i ~ 0.8-0.9 and count as mixed, so passive
  latents show up only at beta = 32; ``--steps 4000`` (about 30 min) shows them at 8 too.
- ``--full``: the disentanglement_lib ``conv64`` networks, 10 latents, beta in
  (1, 2, 4, 8, 16, 32), 30,000 steps at batch 64 (learning rate 1e-4), 10,000 inputs,
  seeds (0, 1): about 45 min per run on 2 idle cores, so about 9 hours in total (under
  an hour on a GPU; estimated, not run). Runs are independent; rerun to resume.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "beta_vae_dsprites.py"

MODES: dict[str, dict[str, Any]] = {
    "quick": {"network": "mlp_small", "latent_dim": 10, "betas": (1.0, 8.0, 32.0),
              "steps": 600, "batch_size": 64, "learning_rate": 1e-3, "seeds": (0,),
              "num_samples": 3000},
    "full": {"network": "conv64", "latent_dim": 10, "betas": (1.0, 2.0, 4.0, 8.0, 16.0, 32.0),
             "steps": 30_000, "batch_size": 64, "learning_rate": 1e-4, "seeds": (0, 1),
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

    workdir = out / "runs" / f"beta{beta:g}_seed{seed}"
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


def findings(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The paper's claims checked on every run that has the group in question."""
    passive = [(r["beta"], r["seed"], r["groups"]["passive"]) for r in rows
               if not r["groups"]["passive"]["empty"] and r["groups"]["passive"]["size"] >= 2]
    active = [(r["beta"], r["seed"], r["groups"]["active"]) for r in rows
              if not r["groups"]["active"]["empty"] and r["groups"]["active"]["size"] >= 2]
    tc_pas = [(g["mean_gaussian_total_correlation"], g["sampled_gaussian_total_correlation"])
              for _, _, g in passive]
    tc_act = [(g["mean_gaussian_total_correlation"], g["sampled_gaussian_total_correlation"])
              for _, _, g in active]
    counts = {r["beta"]: r["counts"] for r in rows if r["seed"] == rows[0]["seed"]}
    betas = sorted(counts)
    passive_counts = [counts[b]["passive"] for b in betas]
    # Dropping passive latents: naive Bayes (assumes independent inputs) on the mean
    # representation of all latents vs of the non-passive ones, runs with passive latents.
    dropping = [(r["beta"], r["seed"], r["groups"]["all"]["mean_naive_bayes_accuracy_mean"],
                 r["groups"]["non_passive"]["mean_naive_bayes_accuracy_mean"],
                 r["groups"]["all"]["mean_logistic_accuracy_mean"],
                 r["groups"]["non_passive"]["mean_logistic_accuracy_mean"])
                for r in rows if not r["groups"]["passive"]["empty"]
                and not r["groups"]["non_passive"]["empty"]]
    return {
        "dropping_passive_mean_rep": [
            {"beta": b, "seed": s, "naive_bayes_all": nb_all, "naive_bayes_non_passive": nb_np,
             "logistic_all": lr_all, "logistic_non_passive": lr_np}
            for b, s, nb_all, nb_np, lr_all, lr_np in dropping],
        "passive_found_at_highest_beta": bool(counts[betas[-1]]["passive"] > 0),
        "passive_count_by_beta": dict(zip(map(str, betas), passive_counts)),
        "passive_count_nondecreasing_in_beta": bool(np.all(np.diff(passive_counts) >= 0)),
        "runs_with_2plus_passive": len(passive),
        "passive_tc_mean_gt_sampled": [bool(m is not None and s is not None and m > s)
                                       for m, s in tc_pas],
        "passive_tc_pairs": tc_pas,
        "runs_with_2plus_active": len(active),
        "active_tc_pairs": tc_act,
    }


def summary_figure(out: Path, rows: list[dict[str, Any]]) -> Path:
    """OUT/counts_and_tc.png: label counts and mean/sampled TC per beta (first seed)."""
    from disentangle.analysis_plots import counts_and_gaps

    first = [r for r in rows if r["seed"] == rows[0]["seed"]]
    tc = {rep: {g: [None if r["groups"][g]["empty"]
                    else r["groups"][g][f"{rep}_gaussian_total_correlation"] for r in first]
                for g in GROUPS} for rep in ("mean", "sampled")}
    return counts_and_gaps([r["beta"] for r in first], [r["counts"] for r in first],
                           tc["mean"], tc["sampled"], out / "counts_and_tc.png")


def fmt(x: Any, digits: int = 3) -> str:
    if x is None:
        return "n/a"
    if isinstance(x, float):
        return f"{x:.{digits}f}"
    return str(x)


def write_report(out: Path, mode_name: str, mode: dict[str, Any], rows: list[dict[str, Any]],
                 found: dict[str, Any], seconds: float) -> str:
    lines = [
        "# Be More Active!: active, mixed and passive latents across beta",
        "",
        f"Mode `--{mode_name}`"
        + (f" with `{mode['overrides']}`" if mode.get("overrides") else "")
        + f": beta-VAE on procedural dSprites, network `{mode['network']}`, "
        f"{mode['latent_dim']} latents (5 factors), {mode['steps']} steps at batch "
        f"{mode['batch_size']}, lr {mode['learning_rate']}, seeds {list(mode['seeds'])}, "
        f"{mode['num_samples']} analysed inputs. Wall time of this invocation "
        f"{seconds / 60:.1f} min (training time per run: "
        + ", ".join(f"{r['train_seconds']:.0f} s" for r in rows)
        + "; runs already trained are only resumed).",
        "",
        "Labels from the posterior variances sigma_i^2(x): active if var_x < 0.1 and "
        "mean_x <= 0.1, passive if var_x < 0.1 and |mean_x - 1| <= 0.1, mixed otherwise. "
        "Sampled representation: mu + sigma * eps (one draw per input).",
        "",
        "## Counts",
        "",
        "Reconstruction and KL: training-batch means over the last 200 steps.",
        "",
        "| beta | seed | recon (nats) | KL (nats) | active | mixed | passive | labels |",
        "|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        c = r["counts"]
        labels = "".join(x[0].upper() for x in r["labels"])
        lines.append(f"| {r['beta']:g} | {r['seed']} | {r['reconstruction']:.1f} | "
                     f"{r['kl']:.2f} | {c['active']} | {c['mixed']} | {c['passive']} | "
                     f"{labels} |")
    for title, key in (("Gaussian total correlation (nats)", "gaussian_total_correlation"),
                       ("Mean pairwise MI (nats, 20 bins)", "mean_pairwise_mi"),
                       ("MIG", "mig"), ("InfoM", "infom"),
                       ("Logistic-regression accuracy (mean over factors)",
                        "logistic_accuracy_mean"),
                       ("Gaussian naive Bayes accuracy (mean over factors)",
                        "naive_bayes_accuracy_mean")):
        lines += ["", f"## {title}: mean / sampled representation", "",
                  "| beta | seed | " + " | ".join(GROUPS) + " |",
                  "|---:|---:|" + "---|" * len(GROUPS)]
        for r in rows:
            cells = []
            for g in GROUPS:
                e = r["groups"][g]
                cells.append("empty" if e["empty"] else
                             f"{fmt(e[f'mean_{key}'])} / {fmt(e[f'sampled_{key}'])}")
            lines.append(f"| {r['beta']:g} | {r['seed']} | " + " | ".join(cells) + " |")
    lines += ["", "## Checks of the paper's claims", ""]
    lines.append(f"- Passive latents at the highest beta: "
                 f"{'yes' if found['passive_found_at_highest_beta'] else 'NO'}; passive "
                 f"count by beta: {found['passive_count_by_beta']} (non-decreasing: "
                 f"{found['passive_count_nondecreasing_in_beta']}).")
    lines.append(f"- Passive group TC, mean > sampled in "
                 f"{sum(found['passive_tc_mean_gt_sampled'])} of "
                 f"{found['runs_with_2plus_passive']} runs with >= 2 passive latents; "
                 "(mean, sampled) pairs: "
                 + ", ".join(f"({fmt(a, 2)}, {fmt(b, 2)})" for a, b in found["passive_tc_pairs"])
                 + ".")
    lines.append("- Active group TC (mean, sampled) over runs with >= 2 active latents: "
                 + ", ".join(f"({fmt(a, 2)}, {fmt(b, 2)})" for a, b in found["active_tc_pairs"])
                 + ".")
    for d in found["dropping_passive_mean_rep"]:
        lines.append(f"- Dropping the passive latents (mean representation), beta {d['beta']:g}: "
                     f"naive Bayes {fmt(d['naive_bayes_all'])} (all) -> "
                     f"{fmt(d['naive_bayes_non_passive'])} (non-passive); logistic "
                     f"{fmt(d['logistic_all'])} -> {fmt(d['logistic_non_passive'])}.")
    lines += ["", "Figures: `counts_and_tc.png` (counts and TC per beta); per run "
              "`runs/<run>/figures/active_passive_scatter.png` and "
              "`active_passive_correlation.png`.", ""]
    text = "\n".join(lines)
    (out / "report.md").write_text(text)
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--quick", action="store_true", help="minutes on 2 CPU cores")
    size.add_argument("--full", action="store_true", help="hours on CPU, minutes on a GPU")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--betas", type=float, nargs="*", default=None,
                        help="override the mode's betas")
    parser.add_argument("--steps", type=int, default=None, help="override train.steps")
    args = parser.parse_args(argv)
    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name])
    if args.betas:
        mode["betas"] = tuple(args.betas)
    if args.steps:
        mode["steps"] = args.steps
    given = [f"--betas {' '.join(f'{b:g}' for b in args.betas)}" if args.betas else "",
             f"--steps {args.steps}" if args.steps else ""]
    mode["overrides"] = " ".join(g for g in given if g)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    rows = [run_one(out, mode, beta, seed) for seed in mode["seeds"] for beta in mode["betas"]]
    found = findings(rows)
    seconds = time.perf_counter() - t0
    results = {"mode": mode_name, "settings": {k: list(v) if isinstance(v, tuple) else v
                                               for k, v in mode.items()},
               "config": str(CONFIG.name), "runs": rows, "findings": found,
               "wall_seconds": round(seconds, 1)}
    (out / "results.json").write_text(json.dumps(results, indent=2))
    summary_figure(out, rows)
    print(write_report(out, mode_name, mode, rows, found, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
