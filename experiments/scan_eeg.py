"""Clinical factors from single-trial ERPs: 1-D beta-VAE + SCAN vs ERP components
(Honke et al., ICLR 2021; SCAN: Higgins et al., ICLR 2018).

On the simulated cohort ``eeg_erp`` (disentangle/data/eeg.py: age group, depression and
anxiety shift the ERP components; two conditions; realistic noise):

1. a 1-D convolutional beta-VAE (network ``conv1d``, Gaussian likelihood) is trained with
   the project's trainer on single trials of the *training* participants (signals in units
   of 10 uV);
2. SCAN (beta = 1, lambda = 10) is trained on the frozen visual posteriors of the training
   participants' trials with symbols over (age_group, depression, anxiety, condition); the
   clinical labels are *sparse*: each training participant's label of each clinical factor
   is available with probability ``label_fraction`` and a symbol names a random subset of
   the available labels;
3. each clinical factor of the held-out participants is classified
   - by SCAN: image -> symbol probabilities of every trial, log-odds of the factor's two
     units averaged over the participant's trials, threshold at the midpoint of the
     training participants' class means;
   - by logistic regression on the participant-mean latents (per condition);
   - by the hand-engineered baseline: logistic regression on mean amplitudes in the
     standard component windows (P1, N1, P2, P3, LPP) x 3 channels x 2 conditions of the
     participant-average ERP;
   all trained on the same labelled training participants;
4. single latents as markers: the participant-level ROC AUC of each latent's mean;
5. denoising: correlation of the single trial / its beta-VAE reconstruction with the
   trial's noise-free signal (known in simulation); figure of denoised single trials;
6. symbol -> ERP: SCAN concept posteriors of clinical symbols decoded to ERPs, compared
   with the true group differences of P3 and LPP amplitude.

    python -m experiments.scan_eeg --quick --out runs/scan_eeg_quick
    python -m experiments.scan_eeg --quick --seeds 0,1,2 --out runs/scan_eeg_quick3
    python -m experiments.scan_eeg --full --out runs/scan_eeg

Runtime: --quick (one cohort seed) took 6-9 min on the shared 2-core machine at load
average ~18 (about 2 min idle); --full (3 seeds, 240 participants, 20k beta-VAE steps) is
estimated at ~2.5 h on that shared machine, under 1 h idle.

Writes OUT/results.json, OUT/report.md and OUT/figures/*.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from sklearn.metrics import roc_auc_score

import disentangle.nn.conv1d  # noqa: F401  (registers the 'conv1d' network)
from disentangle import config as config_lib
from disentangle import xla_options
from disentangle.data import get_dataset
from disentangle.data.eeg import CLINICAL_FACTORS, COMPONENT_WINDOWS, TIMES_MS, simulate_trials
from disentangle.evaluation import to_jsonable
from disentangle.methods.scan.eeg import (
    component_features,
    logistic_participant_classifier,
    participant_means,
    scan_participant_scores,
)
from disentangle.methods.scan.evaluation import batched
from disentangle.methods.scan.model import SCAN, SymbolVocabulary, train_scan
from disentangle.runs import load_run
from disentangle.train import train_and_evaluate

UNITS_UV = 10.0
MODES = {
    "quick": {"participants": 120, "trials": 24, "vae_steps": 3000, "scan_steps": 3000,
              "seeds": [0], "label_fraction": 0.5, "beta": 1.0, "latent_dim": 10},
    "full": {"participants": 240, "trials": 40, "vae_steps": 20000, "scan_steps": 10000,
             "seeds": [0, 1, 2], "label_fraction": 0.5, "beta": 1.0, "latent_dim": 10},
}


def vae_config(m: dict, seed: int):
    cfg = config_lib.base_config("beta_vae", "eeg_erp")
    cfg.data.options = {"num_participants": m["participants"], "seed": seed, "split": "train",
                        "units_uv": UNITS_UV}
    cfg.model.network = "conv1d"
    cfg.model.reconstruction = "gaussian_linear"
    cfg.model.latent_dim = m["latent_dim"]
    cfg.model.beta = m["beta"]
    cfg.train.steps, cfg.train.batch_size, cfg.train.seed = m["vae_steps"], 64, seed
    cfg.train.learning_rate = 5e-4
    cfg.train.log_every, cfg.train.checkpoint_every = 100, m["vae_steps"]
    return cfg


def study_seed(m: dict, seed: int, out: Path) -> dict:
    t0 = time.time()
    rng = np.random.default_rng(seed)
    run_dir = train_and_evaluate(vae_config(m, seed), out / "runs" / f"vae_seed{seed}",
                                 progress=False)
    vae = load_run(run_dir).model
    timing = {"vae": time.time() - t0}
    ds = get_dataset("eeg_erp", num_participants=m["participants"], seed=seed,
                     units_uv=UNITS_UV)
    clinical = ds.participant_factors()
    ids = np.arange(len(clinical))
    train_ids, test_ids = ids[~ds.is_test], ids[ds.is_test]

    # Trials of every participant, both conditions.
    who = np.repeat(ids, 2 * m["trials"])
    cond = np.tile(np.repeat([0, 1], m["trials"]), len(ids))
    noisy, clean = (x / UNITS_UV for x in simulate_trials(ds.cohort, who, cond, rng, ds.noise))
    encode_fn = xla_options.jit_apply(lambda m, x: m.encode(x))
    decode_fn = xla_options.jit_apply(lambda m, z: m.decode(z))
    encode, decode = (lambda x: encode_fn(vae, x)), (lambda z: decode_fn(vae, z))
    mu = batched(lambda b: encode(b).mean, noisy)
    lv = batched(lambda b: encode(b).logvar, noisy)
    factors = np.concatenate([clinical[who], cond[:, None]], axis=1)

    # SCAN with sparse clinical labels on the training participants.
    vocab = SymbolVocabulary.from_dataset(ds)
    available = rng.random((len(ids), 3)) < m["label_fraction"]  # [P, 3] clinical labels
    labelled = np.concatenate([available[who], np.ones((len(who), 1), bool)], axis=1)
    tr = np.isin(who, train_ids)
    scan = SCAN(vocab.num_units, vae.latent_dim, rngs=nnx.Rngs(seed + 1))
    scan_log = train_scan(scan, vocab, vocab.values(factors[tr]), mu[tr], lv[tr],
                          m["scan_steps"], rng, labelled=labelled[tr])
    timing["scan"] = time.time() - t0
    probs = np.asarray(jax.nn.sigmoid(batched(lambda z: scan.decode(z), mu)))

    # Participant-level features.
    erp_avg = participant_means(noisy, who, ids, cond)  # [P, 2, T, C]
    comp, comp_names = component_features(erp_avg * UNITS_UV)
    lat_feat = participant_means(mu, who, ids, cond).reshape(len(ids), -1)  # [P, 2L]

    classification = {}
    for k, fname in enumerate(CLINICAL_FACTORS):
        lab_train = train_ids[available[train_ids, k]]
        y_tr, y_te = clinical[lab_train, k], clinical[test_ids, k]
        u0, u1 = vocab.offsets[k], vocab.offsets[k] + 1
        s_tr = scan_participant_scores(probs, who, lab_train, u0, u1)
        s_te = scan_participant_scores(probs, who, test_ids, u0, u1)
        thr = 0.5 * (s_tr[y_tr == 0].mean() + s_tr[y_tr == 1].mean())
        scan_pred = (s_te > thr).astype(int)
        lat_pred = logistic_participant_classifier(lat_feat[lab_train], y_tr, lat_feat[test_ids])
        base_pred = logistic_participant_classifier(comp[lab_train], y_tr, comp[test_ids])
        classification[fname] = {
            "scan": float((scan_pred == y_te).mean()),
            "scan_auc": float(roc_auc_score(y_te, s_te)),
            "latent_logistic": float((lat_pred == y_te).mean()),
            "component_baseline": float((base_pred == y_te).mean()),
            "labelled_train_participants": int(len(lab_train)),
            "test_participants": int(len(test_ids)),
        }
    # Condition, per trial (a within-participant factor): SCAN vs the trial's window means.
    k = 3
    cond_pred = vocab.predict(probs)[:, k]
    classification["condition_single_trial"] = {
        "scan": float((cond_pred[~tr] == cond[~tr]).mean())}

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
    recon = batched(lambda x: decode(encode(x).mean), noisy[te])
    denoise = _denoising(noisy[te], recon, clean[te], erp_avg[who[te], cond[te]])
    _denoising_figure(out / "figures" / f"denoised_trials_seed{seed}.png", noisy[te], recon,
                      clean[te], erp_avg[who[te], cond[te]], rng)

    # Symbol -> ERP: concept posteriors of clinical symbols decoded to ERPs.
    sym_erp = _symbol_to_erp(scan, vocab, decode, clean, clinical[who], cond, rng,
                             out / "figures" / f"symbol_to_erp_seed{seed}.png")
    timing["total"] = time.time() - t0
    return {"classification": classification, "markers": markers, "denoising": denoise,
            "symbol_to_erp": sym_erp, "scan_log": scan_log[-1],
            "vae_log": load_run(run_dir).log()[-1], "baseline_features": comp_names,
            "seconds": timing}


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


def _symbol_to_erp(scan, vocab, decode, clean, clin_trials, cond, rng, path) -> dict:
    """For each clinical factor f and value v: symbol {f=v, condition=1}; 64 samples of the
    concept posterior decoded to ERPs; P3 and LPP mean amplitude at Pz; the difference
    (v=1 minus v=0) against the true difference of the clean group means."""
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
            rep = scan.encode(jnp.asarray(vocab.khot(values, mask)))
            z = (np.asarray(rep.mean) + np.exp(0.5 * np.asarray(rep.logvar))
                 * rng.normal(size=(64, rep.mean.shape[1]))).astype(np.float32)
            gen[v] = np.asarray(decode(jnp.asarray(z))).mean(0)
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


def aggregate(per_seed: list[dict]) -> dict:
    table = {}
    for fname in (*CLINICAL_FACTORS, "condition_single_trial"):
        methods = per_seed[0]["classification"][fname].keys()
        table[fname] = {
            meth: {"mean": float(np.mean([s["classification"][fname][meth] for s in per_seed])),
                   "std": float(np.std([s["classification"][fname][meth] for s in per_seed]))}
            for meth in methods}
    return table


def report_md(results: dict) -> str:
    t = results["table"]
    n = len(results["seeds"])
    lines = [f"# Clinical factors from single-trial ERPs: beta-VAE + SCAN vs ERP components "
             f"({results['mode']})", "",
             f"Simulated cohort `eeg_erp` ({results['settings']['participants']} participants, "
             f"one third held out; {results['settings']['trials']} trials per condition; "
             f"clinical labels available for {results['settings']['label_fraction']:.0%} of "
             f"training participants per factor). Accuracy on held-out participants, mean "
             f"(std) over {n} cohort seed(s).", "",
             "| factor | SCAN | SCAN AUC | latents + logistic | component baseline |",
             "|---|---|---|---|---|"]
    fmt = lambda d: f"{d['mean']:.2f} ({d['std']:.2f})"
    for fname in CLINICAL_FACTORS:
        r = t[fname]
        lines.append(f"| {fname} | {fmt(r['scan'])} | {fmt(r['scan_auc'])} | "
                     f"{fmt(r['latent_logistic'])} | {fmt(r['component_baseline'])} |")
    lines += ["", f"Condition from single held-out trials (SCAN): "
              f"{fmt(t['condition_single_trial']['scan'])}.", "",
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
    for fname in CLINICAL_FACTORS:
        r = table[fname]
        s, b = r["scan"]["mean"], r["component_baseline"]["mean"]
        # Standard error of a difference of two accuracies near 0.7 on n_test participants
        # per seed, averaged over the seeds (treated as independent).
        se = np.sqrt(2 * 0.21 / (n_test * n_seeds))
        verdict = ("SCAN is better" if s > b + 2 * se else "the baseline is better"
                   if b > s + 2 * se else f"no clear difference (|diff| < 2 SE = {2 * se:.2f})")
        out.append(f"- {fname}: SCAN {s:.2f} vs component baseline {b:.2f}: {verdict}.")
    out.append(f"{n_test} held-out participants per seed, {n_seeds} seed(s): one participant "
               f"is {1 / n_test:.3f} of accuracy; the standard error of a difference of two "
               f"accuracies near 0.7 is about {np.sqrt(2 * 0.21 / (n_test * n_seeds)):.2f} "
               "(ignoring that both methods see the same participants).")
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
