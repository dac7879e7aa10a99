"""Clinical factors from single-trial ERPs: 1-D beta-VAE + SCAN vs ERP components
(Honke et al., ICLR 2021; SCAN: Higgins et al., ICLR 2018).

On the simulated cohort ``eeg_erp`` (disentangle/data/eeg.py: age group, depression and
anxiety shift the ERP components; two conditions; realistic noise):

1. a 1-D convolutional beta-VAE (configs/beta_vae_eeg.py: network ``conv1d``, Gaussian
   likelihood, beta from that file, 4 by default) is trained with the project's trainer on
   single trials of the *training* participants (signals in units of 10 uV);
2. SCAN (configs/scan_eeg.py: beta = 1, lambda = 10) is trained over the frozen beta-VAE
   with the same trainer on fresh trials of the training participants, with symbols over
   (age_group, depression, anxiety, condition); the clinical labels are *sparse*: each
   training participant's label of each clinical factor is available with probability
   ``label_fraction`` (decided per participant by the run's ``LabelMask``) and a symbol
   names a random subset of the available labels;
3. each clinical factor of the held-out participants is classified from participant-level
   features, all by the same rule (standardised L2 logistic regression trained on the same
   labelled training participants; accuracy at probability 1/2 and ROC AUC of the
   probability are reported for every method):
   - SCAN: image -> symbol probabilities of every trial, the log-odds of the factor's two
     units averaged over the participant's trials;
   - the participant-mean latents (per condition);
   - the hand-engineered baseline: mean amplitudes in the standard component windows
     (P1, N1, P2, P3, LPP) x 3 channels x 2 conditions of the participant-average ERP.
   (Until issue 17, SCAN was judged by a midpoint threshold on its score while the
   baselines used logistic regression, and only SCAN's AUC was reported.)
4. single latents as markers: the participant-level ROC AUC of each latent's mean;
5. denoising: correlation of the single trial / its beta-VAE reconstruction with the
   trial's noise-free signal (known in simulation); figure of denoised single trials;
6. symbol -> ERP: SCAN concept posteriors of clinical symbols decoded to ERPs, compared
   with the true group differences of P3 and LPP amplitude.

    python -m experiments.scan_eeg --quick --out runs/scan_eeg_quick
    python -m experiments.scan_eeg --quick --seeds 0,1,2 --out runs/scan_eeg_quick3
    python -m experiments.scan_eeg --full --out runs/scan_eeg

Runtime: --quick (one cohort seed) took 21 min on the shared 2-core machine at load
average ~22 (beta-VAE 9 min, SCAN 11 min; a fraction of that idle); --full (3 seeds, 240
participants, 20k beta-VAE steps) is estimated at several hours on that shared machine.
Runs go to OUT/runs/ and are resumed by a rerun. The science (``train_runs``,
``study_seed``) is separate from the argparse and writing (``main``).

Writes OUT/results.json, OUT/report.md and OUT/figures/*.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from disentangle.config import load_config
from disentangle.data.eeg import CLINICAL_FACTORS, COMPONENT_WINDOWS, TIMES_MS, simulate_trials
from disentangle.evaluation import to_jsonable
from disentangle.methods.scan.eeg import (
    component_features,
    logistic_participant_classifier,
    participant_means,
    scan_participant_scores,
)
from disentangle.methods.scan.evaluation import batched, concept, decoded, posterior, symbol_probs
from disentangle.methods.scan.model import SCAN
from disentangle.runs import load_run
from disentangle.train import train_and_evaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
VISUAL_CONFIG = CONFIGS / "beta_vae_eeg.py"
SCAN_CONFIG = CONFIGS / "scan_eeg.py"
UNITS_UV = 10.0
MODES = {
    "quick": {"participants": 120, "trials": 24, "vae_steps": 3000, "scan_steps": 3000,
              "seeds": [0], "label_fraction": 0.5},
    "full": {"participants": 240, "trials": 40, "vae_steps": 20000, "scan_steps": 10000,
             "seeds": [0, 1, 2], "label_fraction": 0.5},
}


def _cohort(m: dict, seed: int) -> list[str]:
    return [f"data.options.num_participants={m['participants']}",
            f"data.options.seed={seed}", f"data.options.units_uv={UNITS_UV}",
            f"train.seed={seed}"]


def visual_config(m: dict, seed: int):
    """configs/beta_vae_eeg.py (its beta, latents, network) on cohort ``seed``."""
    return load_config(VISUAL_CONFIG, [*_cohort(m, seed), f"train.steps={m['vae_steps']}",
                                       f"train.checkpoint_every={m['vae_steps']}"])


def scan_config(m: dict, seed: int, visual_run: Path):
    """configs/scan_eeg.py over ``visual_run``, labels of cohort ``seed`` drawn with seed."""
    return load_config(SCAN_CONFIG, [
        *_cohort(m, seed), f"model.visual_run={visual_run}",
        f"model.symbols.label_fraction={m['label_fraction']}",
        f"model.symbols.label_seed={seed}", f"model.scan_steps={m['scan_steps']}",
        f"train.steps={m['scan_steps']}", f"train.checkpoint_every={m['scan_steps']}"])


def train_runs(m: dict, seed: int, out: Path) -> tuple[Path, Path]:
    """The beta-VAE run and the SCAN run on it (resumed if present): their directories."""
    visual = train_and_evaluate(visual_config(m, seed), out / "runs" / f"vae_seed{seed}",
                                progress=False)
    return visual, train_and_evaluate(scan_config(m, seed, visual.absolute()),
                                      out / "runs" / f"scan_seed{seed}", progress=False)


def judge(features: np.ndarray, labels: np.ndarray, train: np.ndarray, test: np.ndarray
          ) -> dict[str, float]:
    """Accuracy and ROC AUC on participants ``test`` of the logistic rule trained on
    ``train`` (participant indices) with participant features [P, F] and labels [P]."""
    p = logistic_participant_classifier(features[train], labels[train], features[test])
    return {"accuracy": float(((p > 0.5) == labels[test]).mean()),
            "auc": float(roc_auc_score(labels[test], p))}


def study_seed(m: dict, seed: int, out: Path) -> dict:
    t0 = time.time()
    rng = np.random.default_rng(seed)
    visual_dir, scan_dir = train_runs(m, seed, out)
    timing = {"runs": time.time() - t0}
    run = load_run(scan_dir)
    model, ds, vocab = run.model, run.dataset, run.model.vocab
    clinical = ds.participant_factors()
    ids = np.arange(len(clinical))
    train_ids, test_ids = ids[~ds.is_test], ids[ds.is_test]
    available = np.asarray(model.labels.available_for_groups(ids, vocab.num_factors))[:, :3]

    # Trials of every participant, both conditions.
    who = np.repeat(ids, 2 * m["trials"])
    cond = np.tile(np.repeat([0, 1], m["trials"]), len(ids))
    noisy, clean = (x / ds.units_uv for x in simulate_trials(ds.cohort, who, cond, rng, ds.noise))
    mu = batched(lambda b: posterior(model, b)[0], noisy)
    probs = batched(lambda z: symbol_probs(model, z), mu)
    tr = np.isin(who, train_ids)

    # Participant-level features; every method judged by the same logistic rule.
    erp_avg = participant_means(noisy, who, ids, cond)  # [P, 2, T, C]
    comp, comp_names = component_features(erp_avg * ds.units_uv)
    lat_feat = participant_means(mu, who, ids, cond).reshape(len(ids), -1)  # [P, 2L]
    classification = {}
    for k, fname in enumerate(CLINICAL_FACTORS):
        lab_train = train_ids[available[train_ids, k]]
        u0, u1 = vocab.offsets[k], vocab.offsets[k] + 1
        scan_score = scan_participant_scores(probs, who, ids, u0, u1)[:, None]  # [P, 1]
        y = clinical[:, k]
        classification[fname] = {
            "scan": judge(scan_score, y, lab_train, test_ids),
            "latent_logistic": judge(lat_feat, y, lab_train, test_ids),
            "component_baseline": judge(comp, y, lab_train, test_ids),
            "labelled_train_participants": int(len(lab_train)),
            "test_participants": int(len(test_ids)),
        }
    # Condition, per trial (a within-participant factor): SCAN's image -> symbol read-out.
    cond_pred = vocab.predict(probs)[:, vocab.factor_names.index("condition")]
    classification["condition_single_trial"] = {
        "scan": {"accuracy": float((cond_pred[~tr] == cond[~tr]).mean())}}

    # Markers: participant-level AUC of each latent (condition-1 mean) on test participants.
    lat_c1 = participant_means(mu, who, ids, cond)[:, 1]  # [P, L]
    markers = {}
    for k, fname in enumerate(CLINICAL_FACTORS):
        aucs = [roc_auc_score(clinical[test_ids, k], lat_c1[test_ids, j])
                for j in range(lat_c1.shape[1])]
        sep = np.abs(np.asarray(aucs) - 0.5)
        markers[fname] = {"best_latent": int(sep.argmax()),
                          "auc": float(aucs[int(sep.argmax())]),
                          "all_auc": [float(a) for a in aucs]}

    # Denoising on held-out participants' trials.
    te = ~tr
    recon = batched(lambda x: decoded(model, posterior(model, x)[0]), noisy[te])
    denoise = _denoising(noisy[te], recon, clean[te], erp_avg[who[te], cond[te]])
    _denoising_figure(out / "figures" / f"denoised_trials_seed{seed}.png", noisy[te], recon,
                      clean[te], erp_avg[who[te], cond[te]], rng)

    # Symbol -> ERP: concept posteriors of clinical symbols decoded to ERPs.
    sym_erp = _symbol_to_erp(model, clean, clinical[who], cond, rng,
                             out / "figures" / f"symbol_to_erp_seed{seed}.png")
    timing["total"] = time.time() - t0
    return {"classification": classification, "markers": markers, "denoising": denoise,
            "symbol_to_erp": sym_erp, "scan_log": run.log()[-1],
            "vae_log": load_run(visual_dir).log()[-1], "visual_beta": model.visual.beta,
            "runs": {"visual": str(visual_dir), "scan": str(scan_dir)},
            "baseline_features": comp_names, "seconds": timing}


def _corr_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(1, keepdims=True)
    return (a * b).sum(1) / np.sqrt((a * a).sum(1) * (b * b).sum(1) + 1e-12)


def _denoising(noisy, recon, clean, avg) -> dict:
    rmse = lambda a: float(np.sqrt(np.mean((a - clean) ** 2)) * UNITS_UV)
    return {"corr_with_clean": {"single_trial": float(_corr_rows(noisy, clean).mean()),
                                "vae_reconstruction": float(_corr_rows(recon, clean).mean()),
                                "participant_average": float(_corr_rows(avg, clean).mean())},
            "rmse_uv": {"single_trial": rmse(noisy), "vae_reconstruction": rmse(recon),
                        "participant_average": rmse(avg)}}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _denoising_figure(path: Path, noisy, recon, clean, avg, rng) -> None:
    plt = _plt()
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = rng.choice(len(noisy), 4, replace=False)
    fig, axes = plt.subplots(1, 4, figsize=(14, 3), sharey=True)
    for ax, r in zip(axes, rows):
        ax.plot(TIMES_MS, noisy[r, :, 2] * UNITS_UV, color="0.7", lw=0.8, label="single trial")
        ax.plot(TIMES_MS, clean[r, :, 2] * UNITS_UV, "k", lw=1.5, label="true signal")
        ax.plot(TIMES_MS, recon[r, :, 2] * UNITS_UV, "C3", lw=1.5, label="beta-VAE")
        ax.plot(TIMES_MS, avg[r, :, 2] * UNITS_UV, "C0--", lw=1, label="participant mean")
        ax.axvline(0, color="0.5", lw=0.5)
        ax.set_xlabel("ms")
    axes[0].set_ylabel("Pz (uV)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Denoised single trials of held-out participants (Pz)", fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _window_mean(x: np.ndarray, comp: str, channel: int = 2) -> np.ndarray:
    lo, hi = COMPONENT_WINDOWS[comp]
    win = (TIMES_MS >= lo) & (TIMES_MS <= hi)
    return x[..., win, channel].mean(-1) * UNITS_UV


def _symbol_to_erp(model: SCAN, clean, clin_trials, cond, rng, path) -> dict:
    """For each clinical factor f and value v: symbol {f=v, condition=1}; 64 samples of the
    concept posterior decoded to ERPs; P3 and LPP mean amplitude at Pz; the difference
    (v=1 minus v=0) against the true difference of the clean group means."""
    vocab = model.vocab
    out = {}
    plt = _plt()
    fig, axes = plt.subplots(1, 3, figsize=(13, 3), sharey=True)
    for k, fname in enumerate(CLINICAL_FACTORS):
        gen, true = {}, {}
        for v in (0, 1):
            values = np.zeros((1, 4), int)
            values[0, k], values[0, 3] = v, 1
            mask = np.zeros((1, 4), bool)
            mask[0, k] = mask[0, 3] = True
            mean, logvar = (np.asarray(a) for a in concept(model, vocab.khot(values, mask)))
            z = (mean + np.exp(0.5 * logvar) * rng.normal(size=(64, mean.shape[1])))
            gen[v] = np.asarray(decoded(model, z.astype(np.float32))).mean(0)
            true[v] = clean[(clin_trials[:, k] == v) & (cond == 1)].mean(0)
            axes[k].plot(TIMES_MS, gen[v][:, 2] * UNITS_UV, f"C{v}", lw=1.5,
                         label=f"SCAN {fname}={v}")
            axes[k].plot(TIMES_MS, true[v][:, 2] * UNITS_UV, f"C{v}--", lw=1,
                         label=f"true {fname}={v}")
        axes[k].legend(fontsize=7)
        axes[k].set_xlabel("ms")
        out[fname] = {comp: {"generated_difference_uv": float(
            _window_mean(gen[1], comp) - _window_mean(gen[0], comp)),
            "true_difference_uv": float(_window_mean(true[1], comp) - _window_mean(true[0], comp))}
            for comp in ("P3", "LPP")}
    axes[0].set_ylabel("Pz (uV), emotional condition")
    fig.suptitle("symbol -> ERP: decoded SCAN concepts vs true group means", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out


METHODS = ("scan", "latent_logistic", "component_baseline")


def aggregate(per_seed: list[dict]) -> dict:
    """factor -> method -> score -> {mean, std} over seeds."""
    table = {}
    for fname in (*CLINICAL_FACTORS, "condition_single_trial"):
        cls = [s["classification"][fname] for s in per_seed]
        table[fname] = {
            meth: {score: {"mean": float(np.mean([c[meth][score] for c in cls])),
                           "std": float(np.std([c[meth][score] for c in cls]))}
                   for score in cls[0][meth]}
            for meth in METHODS if meth in cls[0]}
    return table


def report_md(results: dict) -> str:
    t = results["table"]
    n = len(results["seeds"])
    lines = [f"# Clinical factors from single-trial ERPs: beta-VAE + SCAN vs ERP components "
             f"({results['mode']})", "",
             f"Simulated cohort `eeg_erp` ({results['settings']['participants']} participants, "
             f"one third held out; {results['settings']['trials']} trials per condition; "
             f"clinical labels available for {results['settings']['label_fraction']:.0%} of "
             f"training participants per factor). Held-out participants, mean (std) over "
             f"{n} cohort seed(s); every method is judged by the same rule (standardised L2 "
             f"logistic regression on its participant features, trained on the labelled "
             f"training participants): accuracy at probability 1/2 / ROC AUC. The visual "
             f"beta-VAE has beta = {results['per_seed'][0]['visual_beta']:g} "
             f"(configs/beta_vae_eeg.py).", "",
             "| factor | SCAN acc | SCAN AUC | latents acc | latents AUC | components acc | "
             "components AUC |", "|---|---|---|---|---|---|---|"]
    fmt = lambda d: f"{d['mean']:.2f} ({d['std']:.2f})"
    for fname in CLINICAL_FACTORS:
        r = t[fname]
        lines.append(f"| {fname} | " + " | ".join(
            fmt(r[meth][score]) for meth in METHODS for score in ("accuracy", "auc")) + " |")
    lines += ["", f"Condition from single held-out trials (SCAN): "
              f"{fmt(t['condition_single_trial']['scan']['accuracy'])}.", "",
              "## Single latents as markers (seed 0, held-out participants)", "",
              "| factor | best latent | AUC |", "|---|---|---|"]
    s0 = results["per_seed"][0]
    for fname, mk in s0["markers"].items():
        lines.append(f"| {fname} | z{mk['best_latent']} | {mk['auc']:.2f} |")
    d = s0["denoising"]
    lines += ["", "## Denoising single trials (seed 0, held-out participants)", "",
              "| signal | correlation with the true single-trial ERP | RMSE (uV) |",
              "|---|---|---|"]
    for key in ("single_trial", "vae_reconstruction", "participant_average"):
        lines.append(f"| {key} | {d['corr_with_clean'][key]:.2f} | {d['rmse_uv'][key]:.2f} |")
    lines += ["", "Figure: figures/denoised_trials_seed0.png", "",
              "## symbol -> ERP (seed 0): difference value 1 minus value 0 at Pz, emotional "
              "condition", "", "| factor | component | SCAN-generated (uV) | true (uV) |",
              "|---|---|---|---|"]
    for fname, comps in s0["symbol_to_erp"].items():
        for comp, v in comps.items():
            lines.append(f"| {fname} | {comp} | {v['generated_difference_uv']:+.2f} | "
                         f"{v['true_difference_uv']:+.2f} |")
    lines += ["", "Figure: figures/symbol_to_erp_seed0.png", "", "## Reading", "",
              results["reading"], ""]
    return "\n".join(lines)


def reading(table: dict, n_test: int, n_seeds: int) -> str:
    out = []
    # Standard error of a difference of two accuracies near 0.7 on n_test participants per
    # seed, averaged over the seeds (treated as independent).
    se = np.sqrt(2 * 0.21 / (n_test * n_seeds))
    for fname in CLINICAL_FACTORS:
        r = table[fname]
        s, b = r["scan"]["accuracy"]["mean"], r["component_baseline"]["accuracy"]["mean"]
        verdict = ("SCAN is better" if s > b + 2 * se else "the baseline is better"
                   if b > s + 2 * se else f"no clear difference (|diff| < 2 SE = {2 * se:.2f})")
        out.append(f"- {fname}: accuracy SCAN {s:.2f} vs component baseline {b:.2f}: "
                   f"{verdict}; AUC {r['scan']['auc']['mean']:.2f} vs "
                   f"{r['component_baseline']['auc']['mean']:.2f}.")
    out.append(f"{n_test} held-out participants per seed, {n_seeds} seed(s): one participant "
               f"is {1 / n_test:.3f} of accuracy; the standard error of a difference of two "
               f"accuracies near 0.7 is about {se:.2f} (ignoring that both methods see the "
               "same participants).")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="demo scale (minutes)")
    mode.add_argument("--full", action="store_true", help="study scale (hours)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--seeds", default=None, help="comma-separated cohort seeds (default: "
                   "the mode's)")
    args = p.parse_args(argv)
    mode_name = "quick" if args.quick else "full"
    m = dict(MODES[mode_name])
    if args.seeds:
        m["seeds"] = [int(s) for s in args.seeds.split(",")]
    args.out.mkdir(parents=True, exist_ok=True)
    per_seed = [study_seed(m, seed, args.out) for seed in m["seeds"]]
    table = aggregate(per_seed)
    results = {"mode": mode_name, "settings": m, "seeds": m["seeds"], "table": table,
               "per_seed": per_seed,
               "reading": reading(table, per_seed[0]["classification"]["age_group"][
                   "test_participants"], len(per_seed))}
    (args.out / "results.json").write_text(json.dumps(to_jsonable(results), indent=1))
    (args.out / "report.md").write_text(report_md(results))
    print(report_md(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
