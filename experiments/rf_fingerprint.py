"""DR-RFF study: do disentangled RF fingerprints generalise to unseen multipath channels?

Reproduces the comparison of Xie et al. (IEEE TCOM 2023, shared/PAPERS.md) on simulated
ZigBee devices (disentangle.data.rf): DR-RFF, the maximum-likelihood baseline and the
AWGN-augmentation baseline are trained on line-of-sight captures of the known devices only,
then scored on four splits (known/unseen devices x line-of-sight/multipath): open-set ROC
AUC and EER of cosine similarities of same/different-device pairs, and accuracy.

    python -m experiments.rf_fingerprint --quick --out runs/rf_quick   # a few minutes
    python -m experiments.rf_fingerprint --full --out runs/rf_full     # see docs/rf.md

Writes OUT/results.json, OUT/report.md and OUT/roc.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time

import numpy as np

from disentangle.data import rf
from disentangle.methods.dr_rff.evaluation import evaluate_split
from disentangle.methods.dr_rff.model import METHODS, DRRFFConfig, fingerprints, train_rff

# Paper's multipath figures (AUC, EER), shared/PAPERS.md.
PAPER_MULTIPATH = {"dr_rff": (0.99, 0.04), "ml_rff": (0.89, 0.19), "ml_rff_awgn": (0.98, 0.08)}
LABELS = {"dr_rff": "DR-RFF", "ml_rff": "ML", "ml_rff_awgn": "ML + AWGN aug."}


@dataclasses.dataclass(frozen=True)
class Settings:
    n_devices: int
    n_known: int
    n_symbols: int
    samples_per_chip: int
    train_per_device: int
    test_per_device: int
    model: DRRFFConfig
    seeds: tuple[int, ...] = (0,)
    los_k_factor: tuple[float, float] | None = None  # None: line of sight = AWGN only

    def sim_config(self) -> rf.ZigbeeConfig:
        return rf.ZigbeeConfig(n_symbols=self.n_symbols, samples_per_chip=self.samples_per_chip,
                               los_k_factor=self.los_k_factor)


QUICK = Settings(n_devices=12, n_known=8, n_symbols=2, samples_per_chip=4,
                 train_per_device=300, test_per_device=40,
                 model=DRRFFConfig(embed_dim=64, channels=(16, 32, 32, 32), q_width=16,
                                   g_width=16, batch_size=32, steps=400, warmup_steps=100),
                 seeds=(0, 1, 2))
FULL = Settings(n_devices=40, n_known=30, n_symbols=8, samples_per_chip=5,
                train_per_device=1000, test_per_device=100,
                model=DRRFFConfig(batch_size=64, steps=10_000, warmup_steps=2_000))


def run_seed(settings: Settings, seed: int) -> tuple[dict, dict]:
    """Train and score the three methods on one draw of devices and initialisations."""
    t0 = time.time()
    cfg = settings.sim_config()
    sim = rf.ZigbeeSimulator(settings.n_devices, cfg, seed=seed)
    splits = rf.make_splits(sim, settings.n_known, settings.train_per_device,
                            settings.test_per_device, seed=seed + 1000)
    train = splits["train"]
    print(f"seed {seed}: {len(train)} training captures of {settings.n_known} devices, "
          f"T={cfg.length} at {cfg.sample_rate / 1e6:g} MS/s ({time.time() - t0:.1f}s)")
    results, rocs = {}, {}
    for method in METHODS:
        t = time.time()
        model, history = train_rff(method, train.x, train.device, settings.n_known,
                                   settings.model, seed=seed,
                                   log_every=max(settings.model.steps // 4, 1))
        scores = {"train_seconds": time.time() - t, "history": history}
        for name in rf.SPLITS:
            split = splits[name]
            z, logits = fingerprints(model.f, split.x)
            res = evaluate_split(z, logits, split.device, known=name.startswith("known"))
            rocs[method, name] = res.pop("roc")
            scores[name] = res
        results[method] = scores
        print(f"[{method}] " + "  ".join(
            f"{n}: auc={scores[n]['auc']:.3f} eer={scores[n]['eer']:.3f} "
            f"acc={scores[n]['accuracy']:.3f}" for n in rf.SPLITS))
    return results, rocs


def run(settings: Settings, out: str, seeds: tuple[int, ...]) -> dict:
    """All seeds; per method and split the mean (and std) of AUC, EER and accuracy."""
    os.makedirs(out, exist_ok=True)
    t0 = time.time()
    per_seed, rocs = [], None
    for seed in seeds:
        res, seed_rocs = run_seed(settings, seed)
        per_seed.append(res)
        rocs = rocs or seed_rocs  # curves of the first seed
    cfg = settings.sim_config()
    results: dict = {"settings": dataclasses.asdict(settings), "seeds": list(seeds),
                     "sample_rate_hz": cfg.sample_rate, "length": cfg.length,
                     "paper_multipath_auc_eer": PAPER_MULTIPATH}
    for method in METHODS:
        entry: dict = {}
        for split in rf.SPLITS:
            entry[split] = {}
            for key in ("auc", "eer", "accuracy"):
                values = [r[method][split][key] for r in per_seed]
                entry[split][key] = float(np.mean(values))
                entry[split][f"{key}_std"] = float(np.std(values))
                entry[split][f"{key}_per_seed"] = values
        entry["train_seconds"] = float(np.mean([r[method]["train_seconds"] for r in per_seed]))
        entry["history"] = [r[method]["history"] for r in per_seed]
        results[method] = entry
    results["claim_holds"] = {}
    for split in ("known_multipath", "unseen_multipath"):
        wins = [all(r["dr_rff"][split]["auc"] > r[m][split]["auc"]
                    for m in METHODS if m != "dr_rff") for r in per_seed]
        results["claim_holds"][split] = {
            "mean_auc": all(results["dr_rff"][split]["auc"] > results[m][split]["auc"]
                            for m in METHODS if m != "dr_rff"),
            "seeds_won": int(sum(wins)), "seeds": len(wins)}
    results["total_seconds"] = time.time() - t0
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump(results, fh, indent=1)
    plot_rocs(rocs, os.path.join(out, "roc.png"))
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write(report(results))
    return results


def plot_rocs(rocs: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(rf.SPLITS), figsize=(4 * len(rf.SPLITS), 4), sharey=True)
    for ax, split in zip(axes, rf.SPLITS):
        for method in METHODS:
            fpr, tpr = rocs[method, split]
            ax.plot(fpr, tpr, label=LABELS[method])
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(title=split.replace("_", " "), xlabel="false-positive rate", xlim=(0, 1),
               ylim=(0, 1))
    axes[0].set_ylabel("true-positive rate")
    axes[0].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def report(results: dict) -> str:
    s = results["settings"]
    lines = [
        "# DR-RFF on simulated ZigBee devices",
        "",
        f"{s['n_known']} known devices (training, line of sight only: "
        + ("AWGN" if s["los_k_factor"] is None else
           f"weak Rician, K in {s['los_k_factor']}, RMS delay 10-50 ns") + "), "
        f"{s['n_devices'] - s['n_known']} unseen devices; preamble of "
        f"{results['length']} complex samples at {results['sample_rate_hz'] / 1e6:g} MS/s; "
        f"{s['train_per_device']} training and {s['test_per_device']} test captures per device "
        f"and split; {s['model']['steps']} F steps per method (DR-RFF: "
        f"{s['model']['warmup_steps']} maximum-likelihood warm-up steps, then alternating QG "
        f"and F steps). Seeds {results['seeds']} (each seed draws new devices, captures and "
        f"initialisations); table: mean +- std over seeds. Total time "
        f"{results['total_seconds']:.0f} s.",
        "",
        "Open set: ROC AUC / EER of cosine similarity over all same/different-device pairs of "
        "a split. Accuracy: classifier head on known devices; nearest enrolled centroid "
        "(half of each device's captures enrol it) on unseen devices.",
        "",
        "| method | split | AUC | EER | accuracy |",
        "|---|---|---|---|---|",
    ]
    for m in METHODS:
        for split in rf.SPLITS:
            r = results[m][split]
            lines.append(f"| {LABELS[m]} | {split} | " + " | ".join(
                f"{r[k]:.3f} +- {r[k + '_std']:.3f}" for k in ("auc", "eer", "accuracy"))
                + " |")
    lines += ["", "![ROC curves (first seed)](roc.png)", "",
              "Paper (multipath, AUC / EER): " + ", ".join(
                  f"{LABELS[m]} {a:.2f} / {e:.2f}"
                  for m, (a, e) in results["paper_multipath_auc_eer"].items()), ""]
    for split, c in results["claim_holds"].items():
        verdict = "holds" if c["mean_auc"] else "does NOT hold"
        aucs = ", ".join(f"{LABELS[m]} {results[m][split]['auc']:.3f}" for m in METHODS)
        lines.append(f"- Claim (DR-RFF has the highest mean AUC) on {split}: **{verdict}** "
                     f"({aucs}; DR-RFF best in {c['seeds_won']} of {c['seeds']} seeds).")
    lines += ["", "Training time (s): " + ", ".join(
        f"{LABELS[m]} {results[m]['train_seconds']:.0f}" for m in METHODS), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="small run (a few minutes on CPU)")
    mode.add_argument("--full", action="store_true", help="paper-sized run (see docs/rf.md)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds to run (default: 0 1 2 in --quick, 0 in --full)")
    parser.add_argument("--los-multipath", action="store_true",
                        help="give line-of-sight captures a weak Rician channel (K in 10-20, "
                             "RMS delay 10-50 ns) instead of AWGN only")
    args = parser.parse_args(argv)
    settings = FULL if args.full else QUICK
    if args.los_multipath:
        settings = dataclasses.replace(settings, los_k_factor=(10.0, 20.0))
    run(settings, args.out, tuple(args.seeds) if args.seeds else settings.seeds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
