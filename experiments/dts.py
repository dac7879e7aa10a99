"""DTS vs LSTM-VAE and beta-TCVAE on time series (Li et al., KDD 2022).

The paper's claims, as far as this workbench can test them:
1. in a recurrent VAE the KL vanishes (the decoder ignores z); keeping the index-code MI
   I(x;z) in the objective (weight alpha < 1, here alpha = -1: rewarded) keeps the latents
   informative, and heavier TC / dimension-wise KL weights plus a group-level TC give
   disentangled individual and group factors;
2. the representations serve downstream tasks on real sensor series.

Part A (procedural ``ts_factors``, five factors in three groups): InfoMEC and MIG (from
``metrics`` when that package provides them), a linear probe per factor, I(x;z), active
units and per-dimension KL of LSTM-VAE, LSTM-beta-TCVAE, DTS and DTS with alpha = 1
(the ELBO's MI weight). Part B (KL vanishing): the same models' KL / MI / active units
against the likelihood's std (a weak likelihood makes the KL vanish). Part C (UCR/UEA,
from the ``.ts`` files the ``aeon`` package ships): logistic regression on the latent
means of each model trained on the TRAIN split, scored on TEST, against logistic
regression on the raw (resampled, standardised) series.

    python -m experiments.dts --quick --out runs/dts_quick   # 5.5-9.5 min measured, 2 busy CPUs
    python -m experiments.dts --full --out runs/dts          # ~3-4 h on 2 CPUs (estimate)

Training goes through :func:`disentangle.train.train_and_evaluate` (one run directory per
model under OUT/runs, resumable); OUT/results.json and OUT/report.md hold the tables.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import ml_collections
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from disentangle import config as config_lib
from disentangle.data import get_dataset
from disentangle.errors import DataError
from disentangle.methods.dts.lstm_vae import kl_diagnostics
from disentangle.represent import encode_batches
from disentangle.runs import load_run
from disentangle.train import read_log, train_and_evaluate

# The weights used for DTS (the paper publishes none; alpha < 1 keeps the MI term).
DTS_WEIGHTS = {"alpha": -1.0, "beta": 4.0, "gamma": 1.0, "group_weight": 2.0}
TCVAE_BETA = 4.0

MODES = {
    "quick": {"seeds": (0,), "proc_steps": 400, "ucr_steps": 300, "hidden": 32,
              "max_length": 64, "eval_samples": 2000,
              "ucr": ("ItalyPowerDemand", "GunPoint", "BasicMotions"),
              "vanishing_obs_std": (1.0,)},
    "full": {"seeds": (0, 1, 2), "proc_steps": 3000, "ucr_steps": 2000, "hidden": 64,
             "max_length": 128, "eval_samples": 5000,
             "ucr": ("ItalyPowerDemand", "GunPoint", "BasicMotions", "ArrowHead",
                     "JapaneseVowels", "OSULeaf"),
             "vanishing_obs_std": (0.1, 1.0)},
}


def method_configs(obs_std: float, latent_dim: int, groups: tuple[int, ...],
                   decoder_input: str = "autoregressive") -> dict:
    """name -> model section overrides of the compared methods."""
    common = {"latent_dim": latent_dim, "obs_std": obs_std, "cell": "lstm",
              "decoder_input": decoder_input}
    return {
        "lstm_vae": {"name": "lstm_vae", "beta": 1.0, **common},
        "lstm_beta_tcvae": {"name": "lstm_beta_tcvae", "beta": TCVAE_BETA, **common},
        "dts": {"name": "dts", **DTS_WEIGHTS, "latent_groups": groups, **common},
        "dts_alpha1": {"name": "dts", **DTS_WEIGHTS, "alpha": 1.0, "latent_groups": groups,
                       **common},
    }


def make_config(model: dict, data: str, options: dict, steps: int, seed: int,
                hidden: int) -> ml_collections.ConfigDict:
    config = config_lib.base_config(model["name"], data)
    config.data.options = dict(options)
    with config.model.unlocked():
        config.model.update({"hidden": hidden, **model})
        config.model.latent_groups = tuple(model.get("latent_groups", ()))
    config.train.update({"steps": steps, "batch_size": 64, "seed": seed,
                         "learning_rate": 2e-3, "log_every": 50, "checkpoint_every": steps})
    return config


def train(config, workdir: Path):
    t0 = time.time()
    train_and_evaluate(config, workdir, progress=False)
    return load_run(workdir), time.time() - t0


# ----------------------------------------------------------------------------- scores
def disentanglement_scores(codes: np.ndarray, factors: np.ndarray) -> dict:
    """InfoMEC and MIG from the ``metrics`` package, when it has them (else a note)."""
    import importlib

    out = {}
    try:
        metrics = importlib.import_module("metrics")
    except ImportError as err:
        return {"unavailable": f"metrics package: {err}"}
    for name in ("infomec", "mig"):
        fn = getattr(metrics, name, None)
        if fn is None:  # not re-exported: try the submodule metrics/<name>.py
            try:
                fn = importlib.import_module(f"metrics.{name}")
            except ImportError:
                fn = None
        if fn is not None and not callable(fn):  # a module: its function of the same name
            fn = getattr(fn, name, None)
        if fn is None:
            out[f"{name}_unavailable"] = f"metrics.{name} not found"
            continue
        res = fn(codes, factors)
        out.update({k: float(v) for k, v in res.items()
                    if np.ndim(v) == 0 and isinstance(v, int | float | np.number)})
    return out


def probe_accuracy(train_x, train_y, test_x, test_y) -> float:
    """Test accuracy of a logistic regression on standardised features."""
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
    clf.fit(train_x, train_y)
    return float(clf.score(test_x, test_y))


def factor_probes(mean: np.ndarray, factors: np.ndarray, names) -> dict:
    """Linear-probe accuracy of every factor from the latent means (half train, half test)."""
    half = len(mean) // 2
    return {f"probe_{n}": probe_accuracy(mean[:half], factors[:half, k], mean[half:],
                                         factors[half:, k]) for k, n in enumerate(names)}


def group_alignment(mean: np.ndarray, factors: np.ndarray, groups_z, groups_f) -> dict:
    """For each factor group: probe accuracy from each latent segment alone (mean over factors).

    A group-disentangled model predicts a factor group from one segment and not the others.
    """
    half = len(mean) // 2
    table = {}
    for gname, fidx in groups_f.items():
        row = []
        for seg in groups_z:
            z = mean[:, list(seg)]
            row.append(float(np.mean([probe_accuracy(z[:half], factors[:half, k], z[half:],
                                                     factors[half:, k]) for k in fidx])))
        table[gname] = row
    return table


def curve(workdir: Path, keys=("kl", "mi", "active_units", "mse")) -> list[dict]:
    return [{"step": r["step"], **{k: r[k] for k in keys if k in r}} for r in read_log(workdir)]


# ----------------------------------------------------------------------------- parts
def part_procedural(out: Path, mode: dict, obs_std: float, methods: list[str],
                    decoder_input: str = "autoregressive") -> dict:
    ds = get_dataset("ts_factors")
    groups = (4, 2, 2)  # latent segments for (oscillation, level, noise)
    cfgs = method_configs(obs_std, 8, groups, decoder_input)
    tag = "" if decoder_input == "autoregressive" else f"_{decoder_input}dec"
    factors, x = ds.sample(mode["eval_samples"], np.random.default_rng(123))
    results = {}
    for name in methods:
        for seed in mode["seeds"]:
            cfg = make_config(cfgs[name], "ts_factors", {}, mode["proc_steps"], seed,
                              mode["hidden"])
            workdir = out / "runs" / f"proc_{name}_std{obs_std}{tag}_s{seed}"
            run, secs = train(cfg, workdir)
            mean, _, _ = encode_batches(run.model, x)
            diag = kl_diagnostics(run.model, x, jax.random.key(seed))
            row = {"seconds": secs, **{k: diag[k] for k in ("kl", "mi", "mi_max", "tc",
                                                          "dimwise_kl", "active_units")},
                   "kl_per_dim": [diag[f"kl_{j}"] for j in range(8)],
                   "final_train_mse": read_log(workdir)[-1]["mse"],
                   **factor_probes(mean, factors, ds.factor_names),
                   **disentanglement_scores(mean, factors),
                   "curve": curve(workdir)}
            segs = [tuple(range(a, b)) for a, b in zip(np.cumsum((0, *groups))[:-1],
                                                        np.cumsum(groups), strict=True)]
            row["group_alignment"] = group_alignment(mean, factors, segs, ds.factor_groups)
            results.setdefault(name, []).append(row)
            print(f"[proc std={obs_std}{tag}] {name} seed {seed}: MI {diag['mi']:.2f} "
                  f"AU {diag['active_units']} KL {diag['kl']:.2f} ({secs:.0f}s)", flush=True)
    return results


def part_ucr(out: Path, mode: dict, obs_std: float) -> dict:
    results = {}
    for problem in mode["ucr"]:
        try:
            probe = get_dataset(f"ucr:{problem}", length="pad")
        except DataError as err:
            results[problem] = {"skipped": str(err)}
            print(f"[ucr] skip {problem}: {err}", flush=True)
            continue
        length = min(probe.observation_shape[0], mode["max_length"])
        options = {"length": "resample", "target_length": length, "normalize": "channel",
                   "missing": "interpolate"}
        tr = get_dataset(f"ucr:{problem}", split="train", **options)
        te = get_dataset(f"ucr:{problem}", split="test", **options)
        ytr, yte = tr.factors[:, 0], te.factors[:, 0]
        entry = {"n_train": len(tr), "n_test": len(te), "classes": len(tr.class_names),
                 "length": length, "channels": tr.observation_shape[1],
                 "raw_logreg": probe_accuracy(tr.images.reshape(len(tr), -1), ytr,
                                              te.images.reshape(len(te), -1), yte),
                 "majority": float(np.mean(yte == np.bincount(ytr).argmax()))}
        cfgs = method_configs(obs_std, 8, (2, 2, 2, 2))
        for name in ("lstm_vae", "lstm_beta_tcvae", "dts"):
            accs, aus, mis = [], [], []
            for seed in mode["seeds"]:
                cfg = make_config(cfgs[name], f"ucr:{problem}", {"split": "train", **options},
                                  mode["ucr_steps"], seed, mode["hidden"])
                run, _ = train(cfg, out / "runs" / f"ucr_{problem}_{name}_s{seed}")
                ztr = encode_batches(run.model, tr.images)[0]
                zte = encode_batches(run.model, te.images)[0]
                accs.append(probe_accuracy(ztr, ytr, zte, yte))
                diag = kl_diagnostics(run.model, tr.images, jax.random.key(seed))
                aus.append(diag["active_units"])
                mis.append(diag["mi"])
            entry[name] = {"accuracy": accs, "mean": float(np.mean(accs)),
                           "active_units": aus, "mi_train": mis}
            print(f"[ucr] {problem} {name}: acc {np.mean(accs):.3f} AU {aus} "
                  f"(raw {entry['raw_logreg']:.3f})", flush=True)
        results[problem] = entry
    return results


# ----------------------------------------------------------------------------- report
def mean_of(rows: list[dict], key: str) -> str:
    vals = [r[key] for r in rows if isinstance(r.get(key), int | float)]
    if not vals:
        return "n/a"
    return f"{np.mean(vals):.3f}" + (f" ± {np.std(vals):.3f}" if len(vals) > 1 else "")


def proc_tables(proc: dict, results: dict) -> list[str]:
    """Markdown of one ts_factors part: scores, group alignment, per-dimension KL."""
    lines = []
    score_keys = [k for k in ("infom", "infoe", "infoc", "mig")
                  if any(k in r for rows in proc.values() for r in rows)]
    probe_keys = [k for k in next(iter(proc.values()))[0] if k.startswith("probe_")]
    cols = ["mi", "tc", "active_units", "kl", "final_train_mse", *score_keys, *probe_keys]
    lines += ["| method | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for name, rows in proc.items():
        lines.append(f"| {name} | " + " | ".join(mean_of(rows, c) for c in cols) + " |")
    if not score_keys:
        note = next((v for r in next(iter(proc.values())) for k, v in r.items()
                     if "unavailable" in k), "not computed")
        lines += ["", f"InfoMEC / MIG: not in this table ({note}); rerun when "
                  "`metrics.infomec` / `metrics.mig` exist."]
    lines += ["", f"I(x;z) and TC: plug-in estimates with the exact aggregate posterior of "
              f"1,024 of the {results['mode']['eval_samples']} evaluation series (I(x;z) <= "
              f"log 1024 = {next(iter(proc.values()))[0]['mi_max']:.2f}); active units: "
              "Var_x E[z_j|x] > 0.01; final_train_mse: last logged training batch, "
              "teacher-forced one-step-ahead for the autoregressive decoder (not comparable "
              "with the z-input decoder's full reconstruction); probe_*: logistic-regression "
              "accuracy of each factor from the 8 latent means (half train, half test).", "",
              "Group alignment (seed 0): probe accuracy of each factor group from each latent "
              "segment alone (columns: segments z[0:4], z[4:6], z[6:8]; chance: shape and "
              "noise 1/3, frequency and amplitude 1/4, trend 1/5). Which segment takes which "
              "group is not fixed by the objective; group-level disentanglement shows as each "
              "group predicted by one segment only.", ""]
    for name, rows in proc.items():
        ga = rows[0]["group_alignment"]
        lines.append(f"- {name}: " + "; ".join(
            f"{g} " + "/".join(f"{v:.2f}" for v in vals) for g, vals in ga.items()))
    lines += ["", "Per-dimension KL at the end (seed 0):", ""]
    for name, rows in proc.items():
        lines.append(f"- {name}: " + ", ".join(f"{v:.2f}" for v in rows[0]["kl_per_dim"]))
    return lines


def write_report(out: Path, results: dict, mode_name: str) -> None:
    proc, lines = results["procedural"], []
    lines += [f"# DTS study ({mode_name})", "",
              f"DTS weights: {DTS_WEIGHTS}; beta-TCVAE TC weight {TCVAE_BETA}. Recurrent nets: "
              "LSTM encoder/decoder, autoregressive decoder, 8 latents "
              "(DTS segments (4, 2, 2) on ts_factors, (2, 2, 2, 2) on UCR). "
              f"Seeds {results['mode']['seeds']}. Runtime of this invocation "
              f"{results['seconds']:.0f} s (run directories already trained are reused).", "",
              f"## A. ts_factors (obs_std {results['obs_std']})", ""]
    lines += proc_tables(proc, results)
    lines += ["", "### A2. The same with a non-autoregressive decoder (input z at every step)",
              ""]
    lines += proc_tables(results["procedural_zdecoder"], results)
    lines += ["", "## B. KL vanishing (weak likelihood)", ""]
    for std, part in results["vanishing"].items():
        lines += [f"obs_std {std}:", "", "| method | MI | active units | KL | train mse |",
                  "|---|---|---|---|---|"]
        for name, rows in part.items():
            lines.append(f"| {name} | {mean_of(rows, 'mi')} | {mean_of(rows, 'active_units')} "
                         f"| {mean_of(rows, 'kl')} | {mean_of(rows, 'final_train_mse')} |")
        lines += ["", "Training curves (seed 0, from metrics.jsonl: step: KL / active units "
                  "in the batch):", ""]
        for name, rows in part.items():
            c = rows[0]["curve"]
            picks = [c[i] for i in sorted({0, len(c) // 4, len(c) // 2, len(c) - 1})]
            lines.append(f"- {name}: " + ", ".join(
                f"{r['step']}: {r['kl']:.2f} / {r['active_units']:.0f}" for r in picks))
        lines.append("")
    lines += ["## C. UCR/UEA downstream classification (test accuracy)", "",
              "| problem | n train/test | T x C | majority | raw logreg | lstm_vae | "
              "lstm_beta_tcvae | dts |", "|---|---|---|---|---|---|---|---|"]
    for problem, e in results["ucr"].items():
        if "skipped" in e:
            lines.append(f"| {problem} | skipped: {e['skipped'][:80]} |||||||")
            continue
        acc = lambda m, e=e: (f"{e[m]['mean']:.3f}" + (
            f" ± {np.std(e[m]['accuracy']):.3f}" if len(e[m]['accuracy']) > 1 else ""))
        lines.append(f"| {problem} | {e['n_train']}/{e['n_test']} | {e['length']} x "
                     f"{e['channels']} | {e['majority']:.3f} | {e['raw_logreg']:.3f} | "
                     f"{acc('lstm_vae')} | {acc('lstm_beta_tcvae')} | {acc('dts')} |")
    lines += ["", "## Findings", "", *results["findings"], ""]
    (out / "report.md").write_text("\n".join(lines))


def findings(results: dict) -> list[str]:
    proc, out = results["procedural"], []
    mi = {n: np.mean([r["mi"] for r in rows]) for n, rows in proc.items()}
    au = {n: np.mean([r["active_units"] for r in rows]) for n, rows in proc.items()}
    if "dts" in mi and "dts_alpha1" in mi:
        holds = mi["dts"] > mi["dts_alpha1"]
        out.append(f"- MI weight (ts_factors): DTS alpha={DTS_WEIGHTS['alpha']} I(x;z) "
                   f"{mi['dts']:.2f} vs alpha=1 {mi['dts_alpha1']:.2f} "
                   f"({'higher, as claimed' if holds else 'NOT higher'}); active units "
                   f"{au['dts']:.1f} vs {au['dts_alpha1']:.1f}.")
    if "lstm_vae" in mi and "dts" in mi:
        out.append(f"- DTS vs LSTM-VAE I(x;z): {mi['dts']:.2f} vs {mi['lstm_vae']:.2f}.")
    for part_name, part in (("autoregressive", proc),
                            ("z-input", results.get("procedural_zdecoder", {}))):
        keys = [k for k in ("infom", "mig") if all(k in r for rows in part.values()
                                                    for r in rows)]
        for k in keys:
            vals = {n: np.mean([r[k] for r in rows]) for n, rows in part.items()}
            best = max(vals, key=vals.get)
            out.append(f"- {k} ({part_name} decoder): " + ", ".join(
                f"{n} {v:.3f}" for n, v in vals.items()) + f"; best: {best}.")
    for std, part in results["vanishing"].items():
        if "lstm_vae" in part and "dts" in part:
            a = np.mean([r["mi"] for r in part["lstm_vae"]])
            b = np.mean([r["mi"] for r in part["dts"]])
            out.append(f"- obs_std {std}: LSTM-VAE I(x;z) {a:.2f} "
                       f"({'KL vanished' if a < 0.1 else 'no full vanishing'}), DTS {b:.2f}.")
    wins = []
    for problem, e in results["ucr"].items():
        if "skipped" in e:
            continue
        best_base = max(e["lstm_vae"]["mean"], e["lstm_beta_tcvae"]["mean"])
        wins.append((problem, e["dts"]["mean"] >= best_base, e["dts"]["mean"] >= e["raw_logreg"]))
    if wins:
        out.append(f"- UCR: DTS >= both VAE baselines on {sum(w[1] for w in wins)}/{len(wins)} "
                   f"problems, >= raw-series logistic regression on {sum(w[2] for w in wins)}"
                   f"/{len(wins)}.")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--quick", action="store_true")
    group.add_argument("--full", action="store_true")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--obs-std", type=float, default=0.3,
                        help="likelihood std of parts A and C (default 0.3)")
    parser.add_argument("--proc-steps", type=int, default=None,
                        help="training steps on ts_factors (parts A, A2, B), overriding the mode")
    args = parser.parse_args(argv)
    mode_name = "quick" if args.quick else "full"
    mode = dict(MODES[mode_name])
    if args.proc_steps:
        mode["proc_steps"] = args.proc_steps
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = {"mode": {"name": mode_name, **mode}, "obs_std": args.obs_std,
               "dts_weights": DTS_WEIGHTS, "tcvae_beta": TCVAE_BETA}
    results["procedural"] = part_procedural(
        args.out, mode, args.obs_std, ["lstm_vae", "lstm_beta_tcvae", "dts", "dts_alpha1"])
    results["procedural_zdecoder"] = part_procedural(
        args.out, mode, args.obs_std, ["lstm_vae", "dts"], decoder_input="z")
    results["vanishing"] = {str(s): part_procedural(args.out, mode, s, ["lstm_vae", "dts"])
                            for s in mode["vanishing_obs_std"]}
    results["ucr"] = part_ucr(args.out, mode, args.obs_std)
    results["seconds"] = time.time() - t0
    results["findings"] = findings(results)
    (args.out / "results.json").write_text(json.dumps(results, indent=1, default=float))
    write_report(args.out, results, mode_name)
    print((args.out / "report.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
