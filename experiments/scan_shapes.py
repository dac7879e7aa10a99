"""beta-VAE + SCAN on procedural shapes (Higgins et al., ICLR 2018).

For ``dsprites`` and ``colour_shapes``: train a beta-VAE with the project's trainer, freeze
it, train SCAN on k-hot symbols naming random subsets of each image's factor values, train
the recombination operators, and score

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

Runtime: --quick took 24 min (dsprites 8, colour_shapes 16) on the shared 2-core machine at
load average ~18 with the former in-study classifier; expect roughly a quarter of that on
an idle 2-core machine. The factor predictor is trained once per dataset (3,000 steps,
~9 CPU-min each under load) and then loaded from the cache. --full
(20x the beta-VAE steps) is estimated at ~5 h on that shared machine, ~1.5 h idle.

Symbol vocabulary: one unit per (factor, value) after binning positions into 4 bins and
dSprites' scale into 3; dSprites' orientation is left out of the vocabulary (its values
are ambiguous under the square's and ellipse's symmetries). The beta-VAE uses the fully
connected ``mlp_small`` network: the beta-VAE paper's dSprites architecture is fully
connected too, and on 2 shared CPU cores the convolutional decoder's gradient is ~25x
slower. Writes OUT/results.json, OUT/report.md and OUT/figures/*.png.
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
from sklearn.linear_model import LogisticRegression

from disentangle import config as config_lib
from disentangle import xla_options
from disentangle.cache import cache_dir
from disentangle.data import get_dataset
from disentangle.evaluation import to_jsonable
from disentangle.methods.factor_predictor.model import train_factor_predictor
from disentangle.methods.scan.evaluation import (
    batched,
    concept_to_observation_scores,
    mean_of,
    per_factor_accuracy,
    symbol_value_predictor,
)
from disentangle.methods.scan.model import (
    OPERATORS,
    SCAN,
    Recombiner,
    SymbolVocabulary,
    sample_recombination_batch,
    set_operation,
    train_recombiner,
    train_scan,
)
from disentangle.runs import load_run
from disentangle.train import train_and_evaluate

DATASETS = {
    "dsprites": {"factors": ("shape", "scale", "pos_x", "pos_y"),
                 "bins": {"scale": 3, "pos_x": 4, "pos_y": 4}, "beta": 4.0},
    "colour_shapes": {"factors": None, "bins": {"pos_x": 4, "pos_y": 4}, "beta": 4.0},
}
MODES = {
    "quick": {"vae_steps": 1500, "predictor_steps": 3000, "scan_pairs": 4000,
              "scan_steps": 2000, "rec_steps": 2000, "test": 500, "symbols": 200,
              "samples": 12, "batch": 64},
    "full": {"vae_steps": 30000, "predictor_steps": 3000, "scan_pairs": 20000,
             "scan_steps": 10000, "rec_steps": 10000, "test": 2000, "symbols": 1000,
             "samples": 24, "batch": 64},
}


def vae_config(name: str, beta: float, steps: int, batch: int):
    cfg = config_lib.base_config("beta_vae", name)
    cfg.model.network = "mlp_small"
    cfg.model.beta = beta
    cfg.train.steps, cfg.train.batch_size = steps, batch
    cfg.train.learning_rate = 5e-4
    cfg.train.log_every, cfg.train.checkpoint_every = 100, steps
    return cfg


def study_dataset(name: str, spec: dict, m: dict, out: Path, cache_dir: str | None = None,
                  seed: int = 0) -> dict:
    t0 = time.time()
    rng = np.random.default_rng(seed)
    ds = get_dataset(name)
    vocab = SymbolVocabulary.from_dataset(ds, spec["factors"], spec["bins"])
    run_dir = train_and_evaluate(vae_config(name, spec["beta"], m["vae_steps"], m["batch"]),
                                 out / "runs" / name, progress=False)
    vae = load_run(run_dir).model
    encode_fn = xla_options.jit_apply(lambda m, x: m.encode(x))
    decode_fn = xla_options.jit_apply(lambda m, z: jax.nn.sigmoid(m.decode(z)))
    encode, decode = (lambda x: encode_fn(vae, x)), (lambda z: decode_fn(vae, z))
    timing = {"vae": time.time() - t0}

    def posterior(x):
        mu = batched(lambda b: encode(b).mean, x)
        lv = batched(lambda b: encode(b).logvar, x)
        return mu, lv

    # The factor predictor (the judge of generated images; cached per dataset).
    predictor = train_factor_predictor(ds, cache_dir=cache_dir, steps=m["predictor_steps"],
                                       log=None)
    predict = symbol_value_predictor(predictor, vocab)
    f_test, x_test = ds.sample(m["test"], rng)
    v_test = vocab.values(f_test)
    clf_acc = per_factor_accuracy(predict(x_test), v_test, vocab)
    timing["classifier"] = time.time() - t0

    # SCAN on (symbol, image) pairs.
    f_pairs, x_pairs = ds.sample(m["scan_pairs"], rng)
    v_pairs = vocab.values(f_pairs)
    mu_pairs, lv_pairs = posterior(x_pairs)
    del x_pairs
    scan = SCAN(vocab.num_units, vae.latent_dim, rngs=nnx.Rngs(seed + 1))
    scan_log = train_scan(scan, vocab, v_pairs, mu_pairs, lv_pairs, m["scan_steps"], rng)
    timing["scan"] = time.time() - t0

    # image -> symbol.
    mu_test, _ = posterior(x_test)
    probs = np.asarray(scan.symbol_probs(jnp.asarray(mu_test)))
    img2sym = per_factor_accuracy(vocab.predict(probs), v_test, vocab)
    readout = {}
    for k, fname in enumerate(vocab.factor_names):
        lr = LogisticRegression(max_iter=2000).fit(mu_pairs, v_pairs[:, k])
        readout[fname] = float((lr.predict(mu_test) == v_test[:, k]).mean())
    chance = {f: float(np.max(np.bincount(v_test[:, k])) / len(v_test))
              for k, f in enumerate(vocab.factor_names)}

    # symbol -> image.
    key = jax.random.key(seed)
    n_sym = m["symbols"]
    named = vocab.random_masks(n_sym, rng)
    y = vocab.khot(v_test[:n_sym], named)
    rep = scan.encode(jnp.asarray(y))
    sym2img = concept_to_observation_scores(np.asarray(rep.mean), np.asarray(rep.logvar), named,
                                            v_test[:n_sym], vocab, decode, predict,
                                            m["samples"], key)
    prior = concept_to_observation_scores(
        np.zeros((n_sym, vae.latent_dim)), np.zeros((n_sym, vae.latent_dim)),
        np.zeros_like(named), v_test[:n_sym], vocab, decode, predict, m["samples"], key)

    # Recombination.
    rec = Recombiner(rngs=nnx.Rngs(seed + 2))
    rec_log = train_recombiner(rec, scan, vocab, v_pairs, m["rec_steps"], rng)
    va = v_test[:n_sym]
    vb = np.where(rng.random(va.shape) < 0.5, va, v_test[rng.integers(0, len(v_test), n_sym)])
    recomb = {}
    for i, op_name in enumerate(OPERATORS):
        u, v, op = sample_recombination_batch(vocab, va, vb, rng, op=np.full(n_sym, i))
        target = set_operation(u, v, op)
        t_named = np.stack([b.max(1) > 0.5 for b in vocab.split_units(target)], axis=1)
        t_values = vocab.predict(target)
        out_rep = rec(scan.encode(jnp.asarray(u)), scan.encode(jnp.asarray(v)), jnp.asarray(op))
        direct = scan.encode(jnp.asarray(target))
        recomb[op_name] = {
            "recombined": concept_to_observation_scores(
                np.asarray(out_rep.mean), np.asarray(out_rep.logvar), t_named, t_values, vocab,
                decode, predict, m["samples"], key),
            "direct_target_symbol": concept_to_observation_scores(
                np.asarray(direct.mean), np.asarray(direct.logvar), t_named, t_values, vocab,
                decode, predict, m["samples"], key),
        }
    timing["total"] = time.time() - t0
    _figure(out / "figures" / f"{name}_symbol_to_image.png", scan, vocab, decode, v_test, rng)
    return {"vocabulary": {"factors": vocab.factor_names, "bins": vocab.bins},
            "classifier_accuracy": clf_acc, "factor_predictor": predictor.accuracy,
            "image_to_symbol": {
                "scan": img2sym, "logistic_readout_full_labels": readout, "chance": chance},
            "symbol_to_image": sym2img, "prior_reference": prior,
            "recombination": recomb, "scan_log": scan_log[-1], "recombiner_log": rec_log[-1],
            "seconds": timing}


def _figure(path: Path, scan: SCAN, vocab: SymbolVocabulary, decode, values, rng) -> None:
    """Rows: a symbol naming 1..K factors of one test image; columns: 8 decoded samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    k = vocab.num_factors
    masks = np.tril(np.ones((k + 1, k), bool), -1)  # names 0, 1, ..., K factors
    y = vocab.khot(np.repeat(values[:1], k + 1, axis=0), masks)
    rep = scan.encode(jnp.asarray(y))
    eps = rng.normal(size=(k + 1, 8, rep.mean.shape[1]))
    z = np.asarray(rep.mean)[:, None] + np.exp(0.5 * np.asarray(rep.logvar))[:, None] * eps
    imgs = np.asarray(decode(jnp.asarray(z.reshape(-1, z.shape[-1]), jnp.float32)))
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
             "Higgins et al. (ICLR 2018). beta-VAE trained by `disentangle.train`; SCAN "
             "beta = 1, lambda = 10 (as published). Accuracy of generated images is judged by "
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
    p.add_argument("--datasets", default="dsprites,colour_shapes")
    p.add_argument("--cache-dir", default=str(cache_dir()),
                   help="factor-predictor cache (trained once per dataset, reused)")
    args = p.parse_args(argv)
    mode_name = "quick" if args.quick else "full"
    args.out.mkdir(parents=True, exist_ok=True)
    results = {"mode": mode_name, "settings": MODES[mode_name], "datasets": {}}
    for name in args.datasets.split(","):
        results["datasets"][name] = study_dataset(name, DATASETS[name], MODES[mode_name],
                                                  args.out, args.cache_dir)
    results["reading"] = reading(results)
    (args.out / "results.json").write_text(json.dumps(to_jsonable(results), indent=1))
    (args.out / "report.md").write_text(report_md(results, mode_name))
    print(results["reading"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
