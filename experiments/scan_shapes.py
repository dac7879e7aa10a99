"""beta-VAE + SCAN on procedural shapes (Higgins et al., ICLR 2018), on the study harness.

Per seed and dataset (``dsprites``, ``colour_shapes``): train a beta-VAE
(configs/beta_vae_mlp_dsprites.py) and, over the frozen beta-VAE, one SCAN run
(configs/scan_<dataset>.py: SCAN on k-hot symbols naming random subsets of each image's
factor values, then the recombination operators), both with
``disentangle.train.train_and_evaluate`` into ``OUT/seedS/runs/`` (a rerun resumes them),
``train.seed`` = the seed, and score (figures ``DATASET/...``, one value per seed):

- ``image_to_symbol/{scan,readout,chance}/FACTOR`` and ``.../{scan,readout,chance}_mean``:
  accuracy of SCAN's decoder at the visual posterior mean, of a supervised read-out
  (multinomial logistic regression on the same latents, every factor label of
  ``readout_images`` other images given) and the majority-value share;
- ``symbol_to_image/accuracy/FACTOR`` (+ ``accuracy_mean``): the judge's accuracy on
  images decoded from symbols that name the factor; ``chance_mean``: the same for decoded
  prior samples (the symbol ignored); ``diversity/FACTOR`` (+ ``diversity_mean``):
  normalised entropy of the judged values of unnamed factors, ``prior_diversity_mean``
  that of prior samples; ``judge_accuracy_mean``: the judge's own accuracy on the binned
  values of real test images (the ceiling);
- ``recombination/OP/{recombined,target}_accuracy`` and ``..._diversity`` (means over
  factors) for OP in AND / IN COMMON / IGNORE: the recombined posterior against SCAN's
  own posterior of the target symbol;
- ``train/LOSS``: the last logged SCAN and recombiner losses.

The judge of generated images is the project's factor predictor
(``disentangle.methods.factor_predictor``), trained once per dataset (seed 0) and cached
under the ``cache_dir`` setting (None: ``$DISENTANGLE_CACHE`` or ``~/.cache/disentangle``),
so every seed is judged by the same network.

    python -m experiments.scan_shapes --quick --out runs/scan_shapes_quick
    python -m experiments.scan_shapes --cpu --out results/scan_shapes
    python -m experiments.scan_shapes --full --out runs/scan_shapes_full
    python -m experiments.scan_shapes --quick --out /tmp/ss --seeds 0 "datasets=('dsprites',)"

Symbol vocabulary (in the SCAN configs): one unit per (factor, value) after binning
positions into 4 bins and dSprites' scale into 3; dSprites' orientation is left out of the
vocabulary (its values are ambiguous under the square's and ellipse's symmetries). The
beta-VAE uses the fully connected ``mlp_small`` network (see its config). Each seed writes
``OUT/seedS/figures/DATASET_symbol_to_image.png`` (symbols naming 0..K factors of one
test image, 8 decoded samples each).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from sklearn.linear_model import LogisticRegression

from disentangle.cache import cache_dir as default_cache_dir
from disentangle.config import load_config
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
from experiments import harness

CONFIGS = harness.CONFIGS
VISUAL_CONFIG = CONFIGS / "beta_vae_mlp_dsprites.py"
SCAN_CONFIGS = {"dsprites": CONFIGS / "scan_dsprites.py",
                "colour_shapes": CONFIGS / "scan_colour_shapes.py"}
_QUICK = {"vae_steps": 1500, "predictor_steps": 3000, "readout_images": 4000,
          "scan_steps": 2000, "rec_steps": 2000, "test": 500, "symbols": 200, "samples": 12,
          "batch": 64, "cache_dir": None}
MODES: dict[str, dict[str, Any]] = {
    "quick": {**_QUICK, "seeds": (0,), "datasets": tuple(SCAN_CONFIGS)},
    # Twice quick's beta-VAE steps, more test symbols; three seeds for intervals.
    "cpu": {**_QUICK, "seeds": (0, 1, 2), "datasets": tuple(SCAN_CONFIGS), "vae_steps": 3000,
            "test": 1000, "symbols": 400},
    "full": {**_QUICK, "seeds": (0, 1, 2), "datasets": tuple(SCAN_CONFIGS),
             "vae_steps": 30000, "readout_images": 20000, "scan_steps": 10000,
             "rec_steps": 10000, "test": 2000, "symbols": 1000, "samples": 24},
}
RUNTIME = {
    "quick": "both datasets, one seed: dsprites took 375 s at load ~6 with the factor "
             "predictor cached (55 min at load ~15-22 when the predictor, 41 min of it, was "
             "first trained); colour_shapes similar plus its own predictor once",
    "cpu": "3 seeds x 2 datasets, 3,000 beta-VAE steps: 3.5 min per seed for both datasets "
           "with the predictors cached and the dSprites runs done (2-core Xeon, 2026-12-02); "
           "all of it ~45 min beside another study, the two factor predictors included",
    "full": "the paper-like scale (30k beta-VAE, 10k + 10k SCAN steps), 3 seeds: ~5 h per "
            "seed on the shared 2-core machine (estimated)",
}
SCAN_LOSSES = ("scan_loss", "kl_prior", "kl_visual")
RECOMBINER_LOSSES = ("recombination_loss",)
READOUT_MARGIN = -0.02  # "matches or beats": SCAN - read-out above -0.02
RECOMBINATION_MARGIN = -0.05  # "as accurate as": recombined - target above -0.05


def visual_config(name: str, m: Mapping[str, Any], seed: int = 0):
    """configs/beta_vae_mlp_dsprites.py on dataset ``name`` at the mode's scale."""
    return load_config(VISUAL_CONFIG, [
        f"data.name={name}", f"train.steps={m['vae_steps']}", f"train.batch_size={m['batch']}",
        f"train.checkpoint_every={m['vae_steps']}", f"train.seed={seed}"])


def scan_config(name: str, visual_run: Path, m: Mapping[str, Any], seed: int = 0):
    """configs/scan_<name>.py over ``visual_run``: SCAN, then the recombiner."""
    steps = m["scan_steps"] + m["rec_steps"]
    return load_config(SCAN_CONFIGS[name], [
        f"model.visual_run={visual_run}", f"model.scan_steps={m['scan_steps']}",
        f"train.steps={steps}", f"train.checkpoint_every={steps}", f"train.seed={seed}"])


def train_runs(name: str, m: Mapping[str, Any], out: Path, seed: int = 0
               ) -> tuple[Path, Path]:
    """The beta-VAE run and the SCAN run on it (resumed if present): their directories."""
    visual = train_and_evaluate(visual_config(name, m, seed), out / "runs" / f"{name}_bvae",
                                progress=False)
    return visual, train_and_evaluate(scan_config(name, visual.absolute(), m, seed),
                                      out / "runs" / f"{name}_scan", progress=False)


def evaluate_scan(model: SCAN, dataset, predictor, m: Mapping[str, Any], rng: np.random.Generator,
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
    # Chance for named factors: prior samples (the symbol ignored) judged on the same values.
    prior_named = score(zeros, zeros, named, v_test[:n_sym])

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
            "prior_accuracy": prior_named["accuracy"],
            "recombination": recomb, "test_values": v_test}


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




# ----------------------------------------------------------------------------- one seed
def flat_figures(result: dict) -> dict[str, float]:
    """:func:`evaluate_scan`'s nested result as flat figures (see the module docstring)."""
    i2s, s2i = result["image_to_symbol"], result["symbol_to_image"]
    figures: dict[str, float] = {}
    for label, key in (("scan", "scan"), ("readout", "logistic_readout_full_labels"),
                       ("chance", "chance")):
        figures |= {f"image_to_symbol/{label}/{f}": v for f, v in i2s[key].items()}
        figures[f"image_to_symbol/{label}_mean"] = mean_of(i2s[key])
    for what in ("accuracy", "diversity"):
        figures |= {f"symbol_to_image/{what}/{f}": v for f, v in s2i[what].items()}
        figures[f"symbol_to_image/{what}_mean"] = mean_of(s2i[what])
    figures["symbol_to_image/chance_mean"] = mean_of(result["prior_accuracy"])
    figures["symbol_to_image/prior_diversity_mean"] = mean_of(
        result["prior_reference"]["diversity"])
    figures["symbol_to_image/judge_accuracy_mean"] = mean_of(result["classifier_accuracy"])
    for op, d in result["recombination"].items():
        for label, key in (("recombined", "recombined"), ("target", "direct_target_symbol")):
            for what in ("accuracy", "diversity"):
                figures[f"recombination/{op}/{label}_{what}"] = mean_of(d[key][what])
    return figures


def _last_losses(log: list[dict], names: tuple[str, ...]) -> dict[str, float]:
    """The last logged value of each of ``names`` (the record that has ``names[0]``)."""
    record = next((r for r in reversed(log) if names[0] in r), {})
    return {f"train/{k}": float(record[k]) for k in names if k in record}


def run_seed(settings: Mapping[str, Any], seed: int, workdir: Path) -> dict[str, float]:
    """Train (or resume) and score the beta-VAE + SCAN runs of every dataset at ``seed``;
    figures ``DATASET/...`` and ``DATASET/seconds``."""
    unknown = [d for d in settings["datasets"] if d not in SCAN_CONFIGS]
    if unknown:
        from disentangle.errors import UserError

        raise UserError(f"scan_shapes: datasets setting {unknown[0]!r} has no SCAN config; "
                        f"accepted: {', '.join(SCAN_CONFIGS)}")
    cache = settings["cache_dir"] or str(default_cache_dir())
    figures: dict[str, float] = {}
    for name in settings["datasets"]:
        t0 = time.time()
        rng = np.random.default_rng(seed)
        _, scan_dir = train_runs(name, settings, workdir, seed)
        run = load_run(scan_dir)
        predictor = train_factor_predictor(run.dataset, cache_dir=cache,
                                           steps=settings["predictor_steps"], log=None)
        result = evaluate_scan(run.model, run.dataset, predictor, settings, rng, seed)
        _figure(workdir / "figures" / f"{name}_symbol_to_image.png", run.model,
                result["test_values"], rng)
        log = run.log()
        found = (flat_figures(result) | _last_losses(log, SCAN_LOSSES)
                 | _last_losses(log, RECOMBINER_LOSSES))
        figures |= {f"{name}/{k}": v for k, v in found.items()}
        figures[f"{name}/seconds"] = time.time() - t0
        print(f"seed {seed} [{name}] image->symbol SCAN "
              f"{figures[f'{name}/image_to_symbol/scan_mean']:.3f} read-out "
              f"{figures[f'{name}/image_to_symbol/readout_mean']:.3f}; symbol->image "
              f"{figures[f'{name}/symbol_to_image/accuracy_mean']:.3f} (chance "
              f"{figures[f'{name}/symbol_to_image/chance_mean']:.3f})", flush=True)
    return figures


# ----------------------------------------------------------------------------- claims
def _claims() -> list[harness.Claim]:
    claims = []
    for name in SCAN_CONFIGS:
        i2s, s2i, rec = (f"{name}/{part}" for part in
                         ("image_to_symbol", "symbol_to_image", "recombination"))
        claims += [
            harness.Claim(
                f"{name}_image_to_symbol",
                f"{name}: SCAN's image -> symbol accuracy (mean over factors) matches or "
                f"beats a logistic read-out trained with every label (SCAN - read-out > "
                f"{READOUT_MARGIN})",
                "SCAN infers symbols from images through its decoder (image -> z_x -> SCAN "
                "decoder -> symbol probabilities); no read-out comparison in the paper",
                lambda f, a=f"{i2s}/scan_mean", b=f"{i2s}/readout_mean":
                    harness.greater(f, a, b, margin=READOUT_MARGIN)),
            harness.Claim(
                f"{name}_symbol_to_image",
                f"{name}: images generated from symbols show the named factor values above "
                "chance (judge accuracy of named factors > that of decoded prior samples)",
                "symbol -> z_y -> beta-VAE decoder -> images with the named values, unnamed "
                "factors as diverse as under the prior",
                lambda f, a=f"{s2i}/accuracy_mean", b=f"{s2i}/chance_mean":
                    harness.greater(f, a, b)),
        ]
        for op in OPERATORS:
            claims.append(harness.Claim(
                f"{name}_recombination_{op}",
                f"{name}: {op} recombinations are as accurate as the target symbol's own "
                f"concept (recombined - target > {RECOMBINATION_MARGIN})",
                "recombination operators AND / IN COMMON / IGNORE learnt over concept "
                "posteriors, trained with KL to the target's posterior",
                lambda f, a=f"{rec}/{op}/recombined_accuracy",
                b=f"{rec}/{op}/target_accuracy":
                    harness.greater(f, a, b, margin=RECOMBINATION_MARGIN)))
    return claims


# ----------------------------------------------------------------------------- report
def notes(results: dict) -> str:
    """Per dataset: mean accuracies of the three inference directions and the ceilings."""
    lines = ["## Summary per dataset (means over factors)", "",
             "| dataset | image->symbol SCAN / read-out / chance | symbol->image named / "
             "chance / judge ceiling | unnamed diversity / prior |", "|---|---|---|---|"]

    def iv(key: str) -> str:
        return harness.fmt_figure(results, key, 2)

    for name in results["settings"]["datasets"]:
        i2s, s2i = f"{name}/image_to_symbol", f"{name}/symbol_to_image"
        lines.append(
            f"| {name} | {iv(f'{i2s}/scan_mean')} / {iv(f'{i2s}/readout_mean')} / "
            f"{iv(f'{i2s}/chance_mean')} | {iv(f'{s2i}/accuracy_mean')} / "
            f"{iv(f'{s2i}/chance_mean')} / {iv(f'{s2i}/judge_accuracy_mean')} | "
            f"{iv(f'{s2i}/diversity_mean')} / {iv(f'{s2i}/prior_diversity_mean')} |")
    lines += ["", "The read-out sees every factor label of its images; SCAN saw each label "
              "only in the symbols that name it. Chance for symbol -> image is the judge's "
              "accuracy on decoded prior samples against the same named values."]
    return "\n".join(lines)


def plots(results: dict, out: Path) -> list[Path]:
    """The first seed's symbol -> image sample grids (written by :func:`run_seed`)."""
    seed = results["seeds"][0] if results["seeds"] else None
    return [p for name in results["settings"]["datasets"]
            if (p := out / f"seed{seed}" / "figures" / f"{name}_symbol_to_image.png").exists()]


STUDY = harness.Study(
    name="scan_shapes", title="beta-VAE + SCAN on procedural shapes",
    paper="Higgins et al.: SCAN, learning hierarchical compositional visual concepts "
          "(ICLR 2018; shared/PAPERS.md)",
    modes=MODES, run_seed=run_seed, claims=_claims(), notes=notes, plots=plots,
    runtime=RUNTIME)


def main(argv: list[str] | None = None) -> int:
    return harness.main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
