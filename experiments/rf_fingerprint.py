"""DR-RFF study: do disentangled RF fingerprints generalise to unseen multipath channels?

Reproduces the comparison of Xie et al. (IEEE TCOM 2023, shared/PAPERS.md) on simulated
ZigBee devices (disentangle.data.rf): DR-RFF, the maximum-likelihood baseline and the
AWGN-augmentation baseline are trained by ``disentangle.train.train_and_evaluate`` on the
configs ``configs/{dr_rff,ml_rff,ml_rff_awgn}_zigbee.py`` (line-of-sight captures of the
known devices only), then scored on four splits (known/unseen devices x line-of-sight /
multipath): open-set ROC AUC and EER of cosine similarities of same/different-device
pairs, and accuracy.

    python -m experiments.rf_fingerprint --quick --out runs/rf_quick   # a few minutes
    python -m experiments.rf_fingerprint --full --out runs/rf_full     # see docs/rf.md

Runs go to OUT/seed<S>/<method>/ (ordinary run dirs: a rerun resumes or reuses them);
writes OUT/results.json, OUT/report.md and OUT/roc.png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import ml_collections
import numpy as np

from disentangle.config import load_config
from disentangle.data import rf
from disentangle.methods.dr_rff.evaluation import score_splits
from disentangle.runs import load_run
from disentangle.train import read_log, train_and_evaluate

METHODS = ("dr_rff", "ml_rff", "ml_rff_awgn")
CONFIGS = {m: Path(__file__).resolve().parents[1] / "configs" / f"{m}_zigbee.py"
           for m in METHODS}
# Paper's multipath figures (AUC, EER), shared/PAPERS.md.
PAPER_MULTIPATH = {"dr_rff": (0.99, 0.04), "ml_rff": (0.89, 0.19), "ml_rff_awgn": (0.98, 0.08)}
LABELS = {"dr_rff": "DR-RFF", "ml_rff": "ML", "ml_rff_awgn": "ML + AWGN aug."}


@dataclasses.dataclass(frozen=True)
class Settings:
    """Overrides of the config files: ``common`` for every method, ``per_method`` for a
    method's own keys; ``test_per_device`` captures per device in each test split."""

    common: tuple[str, ...] = ()
    per_method: dict[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    test_per_device: int = 100
    seeds: tuple[int, ...] = (0,)


QUICK = Settings(
    common=("data.options.n_devices=12", "data.options.n_known=8", "data.options.n_symbols=2",
            "data.options.samples_per_chip=4", "data.options.n_per_device=300",
            "model.embed_dim=64", "model.channels=[16,32,32,32]", "train.steps=400",
            "train.batch_size=32"),
    per_method={"dr_rff": ("model.q_width=16", "model.g_width=16", "model.warmup_steps=100")},
    test_per_device=40, seeds=(0, 1, 2))
FULL = Settings()  # the config files: the paper's sizes


def method_config(method: str, settings: Settings, seed: int,
                  extra: tuple[str, ...] = ()) -> ml_collections.ConfigDict:
    """The config of ``method`` for ``seed``: devices (``data.options.seed``), captures
    (``split_seed``) and initialisation (``train.seed``) all follow the seed."""
    overrides = [*settings.common, *settings.per_method.get(method, ()),
                 f"data.options.seed={seed}", f"data.options.split_seed={seed + 1000}",
                 f"train.seed={seed}", *extra]
    return load_config(CONFIGS[method], overrides)


def scoring_splits(config: ml_collections.ConfigDict, per_device: int) -> dict[str, rf.RFSplit]:
    """The four test splits of the simulator and capture seed of ``config``'s data."""
    options = dict(config.data.options)
    split_seed = options.pop("split_seed")
    for key in ("split", "n_per_device"):
        options.pop(key)
    data = rf.ZigbeeRF(**options)
    return {name: rf.make_split(data.simulator, name, data.n_known, per_device, split_seed)
            for name in rf.SPLITS}


def run_seed(settings: Settings, seed: int, out: Path, extra: tuple[str, ...] = (),
             progress: bool = False) -> tuple[dict, dict]:
    """Train (or resume) and score the three methods for one seed: (results, ROC curves)."""
    results, rocs, splits = {}, {}, None
    for method in METHODS:
        config = method_config(method, settings, seed, extra)
        if splits is None:
            splits = scoring_splits(config, settings.test_per_device)
        t = time.time()
        workdir = train_and_evaluate(config, out / f"seed{seed}" / method, progress=progress)
        scores = {"train_seconds": time.time() - t, "workdir": str(workdir),
                  "history": read_log(workdir)}
        for name, res in score_splits(load_run(workdir).model.f, splits).items():
            rocs[method, name] = res.pop("roc")
            scores[name] = res
        results[method] = scores
        print(f"seed {seed} [{method}] " + "  ".join(
            f"{n}: auc={scores[n]['auc']:.3f} eer={scores[n]['eer']:.3f} "
            f"acc={scores[n]['accuracy']:.3f}" for n in rf.SPLITS), flush=True)
    return results, rocs


def summarise(per_seed: list[dict]) -> dict:
    """Per method and split the mean, std and per-seed values of AUC, EER and accuracy, and
    whether DR-RFF has the highest AUC on multipath (mean, and seeds won)."""
    results: dict = {}
    for method in METHODS:
        entry: dict = {}
        for split in rf.SPLITS:
            entry[split] = {}
            for key in ("auc", "eer", "accuracy"):
                values = [r[method][split][key] for r in per_seed]
                entry[split] |= {key: float(np.mean(values)), f"{key}_std": float(np.std(values)),
                                 f"{key}_per_seed": values}
        entry["train_seconds"] = float(np.mean([r[method]["train_seconds"] for r in per_seed]))
        entry["history"] = [r[method]["history"] for r in per_seed]
        results[method] = entry
    results["claim_holds"] = {}
    for split in ("known_multipath", "unseen_multipath"):
        wins = [all(r["dr_rff"][split]["auc"] > r[m][split]["auc"] for m in METHODS[1:])
                for r in per_seed]
        results["claim_holds"][split] = {
            "mean_auc": all(results["dr_rff"][split]["auc"] > results[m][split]["auc"]
                            for m in METHODS[1:]),
            "seeds_won": int(sum(wins)), "seeds": len(wins)}
    return results


def run(settings: Settings, out: str | Path, seeds: tuple[int, ...],
        extra: tuple[str, ...] = ()) -> dict:
    """All seeds; writes results.json, report.md and roc.png into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    per_seed, rocs = [], None
    for seed in seeds:
        res, seed_rocs = run_seed(settings, seed, out, extra)
        per_seed.append(res)
        rocs = rocs or seed_rocs  # curves of the first seed
    results = {"seeds": list(seeds), "overrides": [*settings.common, *extra],
               "per_method_overrides": settings.per_method,
               "test_per_device": settings.test_per_device,
               "configs": {m: method_config(m, settings, seeds[0], extra).to_dict()
                           for m in METHODS},
               "paper_multipath_auc_eer": PAPER_MULTIPATH, **summarise(per_seed),
               "total_seconds": time.time() - t0}
    (out / "results.json").write_text(json.dumps(results, indent=1))
    plot_rocs(rocs, out / "roc.png")
    (out / "report.md").write_text(report(results))
    return results


def plot_rocs(rocs: dict, path: Path) -> None:
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
    cfg = results["configs"]["dr_rff"]
    d, m, t = cfg["data"]["options"], cfg["model"], cfg["train"]
    sim = rf.zigbee_config(d["n_symbols"], d["samples_per_chip"])
    los = (f"Rician, K in {list(d['los_k_factor'])}, RMS delay "
           f"{list(d['los_rms_delay_ns'])} ns" if d["los_k_factor"] else "AWGN only")
    lines = [
        "# DR-RFF on simulated ZigBee devices",
        "",
        f"{d['n_known']} known devices (training: {d['n_per_device']} line-of-sight captures "
        f"each; line of sight = {los}), {d['n_devices'] - d['n_known']} unseen devices; "
        f"preamble of {sim.length} complex samples at {sim.sample_rate / 1e6:g} MS/s; "
        f"{results['test_per_device']} test captures per device and split; {t['steps']} "
        f"steps at batch {t['batch_size']} per method, one F update each (DR-RFF: "
        f"{m['warmup_steps']} maximum-likelihood warm-up steps, then a QG and an F update "
        f"per step; shuffle label {m['shuffle_label']}, L_G to Q {m['g_loss_to_q']}, beta "
        f"term {m['fingerprint_distance']}, Q noise std {m['q_noise_std']}; ML + AWGN: SNR "
        f"{list(results['configs']['ml_rff_awgn']['model']['awgn_snr_db'])} dB). Seeds "
        f"{results['seeds']} (each draws new devices, captures and initialisations); table: "
        f"mean +- std over seeds. Total time {results['total_seconds']:.0f} s.",
        "",
        "Open set: ROC AUC / EER of cosine similarity over all same/different-device pairs of "
        "a split. Accuracy: classifier head on known devices; nearest enrolled centroid "
        "(half of each device's captures enrol it) on unseen devices.",
        "",
        "| method | split | AUC | EER | accuracy |",
        "|---|---|---|---|---|",
    ]
    for method in METHODS:
        for split in rf.SPLITS:
            r = results[method][split]
            lines.append(f"| {LABELS[method]} | {split} | " + " | ".join(
                f"{r[k]:.3f} +- {r[k + '_std']:.3f}" for k in ("auc", "eer", "accuracy"))
                + " |")
    lines += ["", "![ROC curves (first seed)](roc.png)", "",
              "Paper (multipath, AUC / EER): " + ", ".join(
                  f"{LABELS[k]} {a:.2f} / {e:.2f}"
                  for k, (a, e) in results["paper_multipath_auc_eer"].items()), ""]
    for split, c in results["claim_holds"].items():
        verdict = "holds" if c["mean_auc"] else "does NOT hold"
        aucs = ", ".join(f"{LABELS[k]} {results[k][split]['auc']:.3f}" for k in METHODS)
        lines.append(f"- Claim (DR-RFF has the highest mean AUC) on {split}: **{verdict}** "
                     f"({aucs}; DR-RFF best in {c['seeds_won']} of {c['seeds']} seeds).")
    lines += ["", "Training time (s, incl. compilation): " + ", ".join(
        f"{LABELS[k]} {results[k]['train_seconds']:.0f}" for k in METHODS), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="small run (a few minutes on CPU)")
    mode.add_argument("--full", action="store_true", help="paper-sized run (see docs/rf.md)")
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="seeds to run (default: 0 1 2 in --quick, 0 in --full)")
    parser.add_argument("--awgn-los", action="store_true",
                        help="line-of-sight captures with AWGN only (no Rician channel)")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="further config overrides for every method, e.g. train.steps=200")
    args = parser.parse_args(argv)
    settings = FULL if args.full else QUICK
    extra = (*(("data.options.los_k_factor=[]",) if args.awgn_los else ()), *args.overrides)
    run(settings, args.out, tuple(args.seeds) if args.seeds else settings.seeds, extra)
    return 0


if __name__ == "__main__":
    sys.exit(main())
