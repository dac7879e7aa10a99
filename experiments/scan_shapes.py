"""beta-VAE + SCAN on procedural shapes (Higgins et al., ICLR 2018).

For ``dsprites`` and ``colour_shapes``: train a beta-VAE (configs/beta_vae_mlp_dsprites.py)
and, over the frozen beta-VAE, one SCAN run (configs/scan_<dataset>.py: SCAN on k-hot
symbols naming random subsets of each image's factor values, then the recombination
operators), both with ``disentangle.train.train_and_evaluate`` into OUT/runs/ (a rerun
resumes them), and score

- image -> symbol accuracy per factor (SCAN decoder at the visual posterior mean), against
  a supervised read-out baseline (multinomial logistic regression on the same latents and
  the same labelled images, every factor label given) and chance;
- symbol -> image accuracy of the named factors and diversity of the unnamed ones, judged
  by the project's factor predictor (``disentangle.methods.factor_predictor``, trained once per
  dataset and cached under ``--cache-dir``; its accuracy on the binned symbol values is the
  ceiling), with the diversity of decoded prior samples as the reference;
- the same for AND / IN COMMON / IGNORE recombinations, against SCAN's own posterior of
  the target symbol.

    python -m experiments.scan_shapes --quick --out runs/scan_shapes_quick
    python -m experiments.scan_shapes --full --out runs/scan_shapes

Runtime: --quick --datasets dsprites took 55 min on the shared 2-core machine at load
~15-22: 13 min for the two runs and 41 min to train the factor predictor, which is then
cached (``--cache-dir``) and loaded by later runs; expect a fraction of that on an idle
machine. Before the port, --quick for both datasets took 24 min at load ~18 with the
former in-study classifier. --full (20x the beta-VAE steps) is estimated at ~5 h on that
shared machine.

Symbol vocabulary (in the SCAN configs): one unit per (factor, value) after binning
positions into 4 bins and dSprites' scale into 3; dSprites' orientation is left out of the
vocabulary (its values are ambiguous under the square's and ellipse's symmetries). The
beta-VAE uses the fully connected ``mlp_small`` network (see its config). The science
(``train_runs``, ``evaluate_scan``) is separate from the argparse and writing (``main``).
Writes OUT/results.json, OUT/report.md and OUT/figures/*.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import jax
import numpy as np
from sklearn.linear_model import LogisticRegression

from disentangle.cache import cache_dir
from disentangle.config import load_config
from disentangle.evaluation import to_jsonable
from disentangle.methods.factor_predictor.model import train_factor_predictor
from disentangle.methods.scan.evaluation import (
    batched,
    concept,
    concept_to_observation_scores,
    decoded,
    mean_of,
    per_factor_accuracy,
    posterior,
    recombined,
    symbol_probs,
    symbol_value_predictor,
)
from disentangle.methods.scan.model import (
    OPERATORS,
    SCAN,
    sample_recombination_batch,
    set_operation,
)
from disentangle.runs import load_run
from disentangle.train import train_and_evaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
VISUAL_CONFIG = CONFIGS / "beta_vae_mlp_dsprites.py"
SCAN_CONFIGS = {"dsprites": CONFIGS / "scan_dsprites.py",
                "colour_shapes": CONFIGS / "scan_colour_shapes.py"}
MODES = {
    "quick": {"vae_steps": 1500, "predictor_steps": 3000, "readout_images": 4000,
              "scan_steps": 2000, "rec_steps": 2000, "test": 500, "symbols": 200,
              "samples": 12, "batch": 64},
    "full": {"vae_steps": 30000, "predictor_steps": 3000, "readout_images": 20000,
             "scan_steps": 10000, "rec_steps": 10000, "test": 2000, "symbols": 1000,
             "samples": 24, "batch": 64},
}


def visual_config(name: str, m: dict):
    """configs/beta_vae_mlp_dsprites.py on dataset ``name`` at the mode's scale."""
    return load_config(VISUAL_CONFIG, [
        f"data.name={name}", f"train.steps={m['vae_steps']}", f"train.batch_size={m['batch']}",
        f"train.checkpoint_every={m['vae_steps']}"])


def scan_config(name: str, visual_run: Path, m: dict):
    """configs/scan_<name>.py over ``visual_run``: SCAN, then the recombiner."""
    steps = m["scan_steps"] + m["rec_steps"]
    return load_config(SCAN_CONFIGS[name], [
        f"model.visual_run={visual_run}", f"model.scan_steps={m['scan_steps']}",
        f"train.steps={steps}", f"train.checkpoint_every={steps}"])


def train_runs(name: str, m: dict, out: Path) -> tuple[Path, Path]:
    """The beta-VAE run and the SCAN run on it (resumed if present): their directories."""
    visual = train_and_evaluate(visual_config(name, m), out / "runs" / f"{name}_bvae",
                                progress=False)
    return visual, train_and_evaluate(scan_config(name, visual.absolute(), m),
                                      out / "runs" / f"{name}_scan", progress=False)


def evaluate_scan(model: SCAN, dataset, predictor, m: dict, rng: np.random.Generator,
                  seed: int = 0) -> dict:
    """image -> symbol, symbol -> image and recombination scores of a trained SCAN run."""
    vocab = model.vocab
    decode = lambda z: jax.nn.sigmoid(decoded(model, z))  # noqa: E731
    predict = symbol_value_predictor(predictor, vocab)
    latent_mean = lambda x: batched(lambda b: posterior(model, b)[0], x)  # noqa: E731
    f_test, x_test = dataset.sample(m["test"], rng)
    v_test = vocab.values(f_test)
    clf_acc = per_factor_accuracy(predict(x_test), v_test, vocab)

    # image -> symbol, against a logistic read-out trained with every label of other images.
    mu_test = latent_mean(x_test)
    probs = batched(lambda z: symbol_probs(model, z), mu_test)
    img2sym = per_factor_accuracy(vocab.predict(probs), v_test, vocab)
    f_ro, x_ro = dataset.sample(m["readout_images"], rng)
    v_ro, mu_ro = vocab.values(f_ro), latent_mean(x_ro)
    del x_ro
    readout = {}
    for k, fname in enumerate(vocab.factor_names):
        lr = LogisticRegression(max_iter=2000).fit(mu_ro, v_ro[:, k])
        readout[fname] = float((lr.predict(mu_test) == v_test[:, k]).mean())
    chance = {f: float(np.max(np.bincount(v_test[:, k])) / len(v_test))
              for k, f in enumerate(vocab.factor_names)}

    # symbol -> image.
    key = jax.random.key(seed)
    n_sym = m["symbols"]
    named = vocab.random_masks(n_sym, rng)
    mean, logvar = (np.asarray(a) for a in concept(model, vocab.khot(v_test[:n_sym], named)))
    score = lambda mu, lv, nm, vals: concept_to_observation_scores(  # noqa: E731
        mu, lv, nm, vals, vocab, decode, predict, m["samples"], key)
    sym2img = score(mean, logvar, named, v_test[:n_sym])
    zeros = np.zeros((n_sym, model.latent_dim), np.float32)
    prior = score(zeros, zeros, np.zeros_like(named), v_test[:n_sym])

    # Recombination.
    va = v_test[:n_sym]
    vb = np.where(rng.random(va.shape) < 0.5, va, v_test[rng.integers(0, len(v_test), n_sym)])
    recomb = {}
    for i, op_name in enumerate(OPERATORS):
        u, v, op = sample_recombination_batch(vocab, va, vb, rng, op=np.full(n_sym, i))
        target = set_operation(u, v, op)
        t_named, t_values = vocab.named(target), vocab.predict(target)
        out_mean, out_logvar = (np.asarray(a) for a in recombined(model, u, v, op))
        direct_mean, direct_logvar = (np.asarray(a) for a in concept(model, target))
        recomb[op_name] = {
            "recombined": score(out_mean, out_logvar, t_named, t_values),
            "direct_target_symbol": score(direct_mean, direct_logvar, t_named, t_values)}
    return {"vocabulary": {"factors": vocab.factor_names, "bins": vocab.bins},
            "classifier_accuracy": clf_acc, "factor_predictor": predictor.accuracy,
            "image_to_symbol": {
                "scan": img2sym, "logistic_readout_full_labels": readout, "chance": chance},
            "symbol_to_image": sym2img, "prior_reference": prior,
            "recombination": recomb, "test_values": v_test}


def study_dataset(name: str, m: dict, out: Path, cache_dir: str | None = None,
                  seed: int = 0) -> dict:
    """Train (or resume) the runs of one dataset and evaluate them."""
    t0 = time.time()
    rng = np.random.default_rng(seed)
    visual_dir, scan_dir = train_runs(name, m, out)
    timing = {"runs": time.time() - t0}
    run = load_run(scan_dir)
    # The factor predictor (the judge of generated images; cached per dataset).
    predictor = train_factor_predictor(run.dataset, cache_dir=cache_dir,
                                       steps=m["predictor_steps"], log=None)
    timing["classifier"] = time.time() - t0
    result = evaluate_scan(run.model, run.dataset, predictor, m, rng, seed)
    v_test = result.pop("test_values")
    _figure(out / "figures" / f"{name}_symbol_to_image.png", run.model, v_test, rng)
    timing["total"] = time.time() - t0
    log = run.log()
    return {**result, "runs": {"visual": str(visual_dir), "scan": str(scan_dir)},
            "scan_log": next((r for r in reversed(log) if "scan_loss" in r), None),
            "recombiner_log": next((r for r in reversed(log) if "recombination_loss" in r),
                                   None),
            "seconds": timing}


def _figure(path: Path, model: SCAN, values, rng) -> None:
    """Rows: a symbol naming 1..K factors of one test image; columns: 8 decoded samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    vocab = model.vocab
    k = vocab.num_factors
    masks = np.tril(np.ones((k + 1, k), bool), -1)  # names 0, 1, ..., K factors
    y = vocab.khot(np.repeat(values[:1], k + 1, axis=0), masks)
    mean, logvar = (np.asarray(a) for a in concept(model, y))
    eps = rng.normal(size=(k + 1, 8, mean.shape[1]))
    z = mean[:, None] + np.exp(0.5 * logvar)[:, None] * eps
    imgs = np.asarray(jax.nn.sigmoid(decoded(model, z.reshape(-1, z.shape[-1]).astype(np.float32))))
    fig, axes = plt.subplots(k + 1, 8, figsize=(8 * 1.1, (k + 1) * 1.2))
    for r in range(k + 1):
        for c in range(8):
            ax = axes[r, c]
            img = imgs[r * 8 + c]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(vocab.describe(y[r]).replace(", ", "\n"), fontsize=5,
                              rotation=0, ha="right", va="center")
    fig.suptitle("SCAN symbol -> image samples (more factors named per row)", fontsize=8)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def _fmt(v: float) -> str:
    return "n/a" if not np.isfinite(v) else f"{v:.2f}"


def report_md(results: dict, mode: str) -> str:
    lines = [f"# beta-VAE + SCAN on procedural shapes ({mode})", "",
             "Higgins et al. (ICLR 2018). beta-VAE (configs/beta_vae_mlp_dsprites.py) and SCAN "
             "(configs/scan_<dataset>.py; beta = 1, lambda = 10 as published) trained by "
             "`disentangle.train`. Accuracy of generated images is judged by "
             "the project's factor predictor (`methods.factor_predictor`); its own test "
             "accuracy on the binned symbol values is the ceiling.", ""]
    for name, r in results["datasets"].items():
        lines += [f"## {name}", "", "### image -> symbol (accuracy per factor)", "",
                  "| factor | SCAN | logistic read-out (all labels) | chance | classifier |",
                  "|---|---|---|---|---|"]
        i2s = r["image_to_symbol"]
        for f in i2s["scan"]:
            lines.append(f"| {f} | {_fmt(i2s['scan'][f])} | "
                         f"{_fmt(i2s['logistic_readout_full_labels'][f])} | "
                         f"{_fmt(i2s['chance'][f])} | {_fmt(r['classifier_accuracy'][f])} |")
        lines += ["", "### symbol -> image", "",
                  "| factor | accuracy when named | diversity when unnamed | prior diversity |",
                  "|---|---|---|---|"]
        s2i, pr = r["symbol_to_image"], r["prior_reference"]
        for f in s2i["accuracy"]:
            lines.append(f"| {f} | {_fmt(s2i['accuracy'][f])} | {_fmt(s2i['diversity'][f])} | "
                         f"{_fmt(pr['diversity'][f])} |")
        lines += ["", "### recombination (mean over factors)", "",
                  "| operator | accuracy (recombined) | accuracy (target symbol) | "
                  "diversity (recombined) | diversity (target symbol) |", "|---|---|---|---|---|"]
        for op, d in r["recombination"].items():
            a, b = d["recombined"], d["direct_target_symbol"]
            lines.append(f"| {op} | {_fmt(mean_of(a['accuracy']))} | "
                         f"{_fmt(mean_of(b['accuracy']))} | {_fmt(mean_of(a['diversity']))} | "
                         f"{_fmt(mean_of(b['diversity']))} |")
        lines += ["", f"Runtime: {r['seconds']['total']:.0f} s. Figure: "
                  f"figures/{name}_symbol_to_image.png", ""]
    lines += ["## Reading", "", results.get("reading", ""), ""]
    return "\n".join(lines)


def reading(results: dict) -> str:
    out = []
    for name, r in results["datasets"].items():
        i2s = r["image_to_symbol"]
        s, lr = mean_of(i2s["scan"]), mean_of(i2s["logistic_readout_full_labels"])
        s2i, pr = r["symbol_to_image"], r["prior_reference"]
        out.append(
            f"- {name}: image->symbol mean accuracy SCAN {s:.2f} vs supervised read-out "
            f"{lr:.2f} (chance {mean_of(i2s['chance']):.2f}); symbol->image accuracy of named "
            f"factors {mean_of(s2i['accuracy']):.2f} (classifier ceiling "
            f"{mean_of(r['classifier_accuracy']):.2f}); diversity of unnamed factors "
            f"{mean_of(s2i['diversity']):.2f} vs {mean_of(pr['diversity']):.2f} for prior "
            "samples.")
    return "\n".join(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--quick", action="store_true", help="demo scale (see the runtime note)")
    mode.add_argument("--full", action="store_true", help="study scale (hours)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--datasets", default="dsprites,colour_shapes",
                   help=f"comma-separated, of {', '.join(SCAN_CONFIGS)}")
    p.add_argument("--cache-dir", default=str(cache_dir()),
                   help="factor-predictor cache (trained once per dataset, reused)")
    args = p.parse_args(argv)
    mode_name = "quick" if args.quick else "full"
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"mode": mode_name, "settings": MODES[mode_name], "datasets": {}}
    for name in args.datasets.split(","):
        results["datasets"][name] = study_dataset(name, MODES[mode_name], args.out,
                                                  args.cache_dir)
    results["reading"] = reading(results)
    (args.out / "results.json").write_text(json.dumps(to_jsonable(results), indent=1))
    (args.out / "report.md").write_text(report_md(results, mode_name))
    print(results["reading"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
