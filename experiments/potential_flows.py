"""Linear vs potential-flow traversals on the same beta-VAE and QLAE (Song et al., ICML 2023).

    python -m experiments.potential_flows --quick --out runs/potential_flows_quick
    python -m experiments.potential_flows --cpu --out results/potential_flows
    python -m experiments.potential_flows --full --out runs/potential_flows

The paper's claim: K learned potential flows give traversals that each change fewer
ground-truth factors than moving one latent at a time. Per seed, this study trains a
beta-VAE and a QLAE on procedural dSprites (``configs/beta_vae_dsprites.py``,
``configs/qlae_dsprites.py``; ``OUT/seedS/<backbone>``), traverses each linearly (data
quantiles / codebook values) and with potential flows trained on the frozen decoder
(``OUT/seedS/<backbone>/flow``, ``configs/potential_flow.py``), and scores both with one
factor predictor (``configs/factor_predictor.py``, trained once into ``cache_dir`` and
reused by every seed): per traversal the top factor's share of the change (purity), per
method the mean purity over active traversals. Per-traversal scores go to
``<backbone>/traversal.json``, figures to ``<backbone>/figures/``. The study harness
(experiments/harness.py) writes ``OUT/results.json`` and ``OUT/report.md``.

Matched lengths (issue 17): flows have H = 10 (two-sided, H/2 = 5 trained steps each way,
11 frames) and linear traversals 11 steps; the flows' step size is scaled so that their
mean end-to-end latent displacement equals the linear traversals'.

Modes (settings are overridable, e.g. ``backbone_steps=20``):
- ``--quick``: MLP backbones (``mlp_small``, Adam 1e-3) of 1,500 steps, K = 8, 200 flow
  steps at Adam 1e-3 (the paper's 1e-4 needs far more steps), predictor 1,000 steps,
  8 seed images, one seed.
- ``--cpu``: 5 seeds, backbones of 3,000 steps, 1,000 flow steps, a 3,000-step predictor
  (see ``STUDY.runtime``).
- ``--full``: the configs' 30k-step conv backbones, K = 16, 5,000 flow steps at Adam 1e-4,
  predictor 8,000 steps, 3 seeds (estimated 4-5 h per seed on 2 idle CPU cores).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from experiments import harness

REPO_ROOT = Path(__file__).resolve().parent.parent
BACKBONES = {"beta_vae": "configs/beta_vae_dsprites.py", "qlae": "configs/qlae_dsprites.py"}
METHODS = ("linear", "flow")
MEASURES = ("tv", "expected")
ACTIVE_THRESHOLD = {"tv": 0.25, "expected": 0.1}

_QUICK: dict[str, Any] = {
    "seeds": (0,),
    "network": "mlp_small",  # None: the backbone config's own network
    "backbone_steps": 1500,  # None: the config's own steps / learning rate
    "backbone_lr": 1e-3,
    "num_potentials": 8,  # K
    "horizon": 10,  # H: flows have H + 1 frames
    "flow_steps": 200,
    "flow_lr": 1e-3,
    "flow_batch_size": 16,
    "predictor_steps": 1000,
    "num_images": 8,  # seed images per traversal
    "num_codes": 2000,  # encoded images: quantile ranges, held-out classifier codes
    "num_steps": 11,  # linear steps (= H + 1 for matched lengths)
    "cache_dir": None,  # factor-predictor cache; None: $DISENTANGLE_CACHE
}
MODES: dict[str, dict[str, Any]] = {
    "quick": _QUICK,
    "cpu": {**_QUICK, "seeds": (0, 1, 2, 3, 4), "backbone_steps": 3000, "flow_steps": 1000,
            "predictor_steps": 3000},
    "full": {**_QUICK, "seeds": (0, 1, 2), "network": None, "backbone_steps": None,
             "backbone_lr": None, "num_potentials": 16, "flow_steps": 5000, "flow_lr": 1e-4,
             "flow_batch_size": 32, "predictor_steps": 8000, "num_codes": 5000,
             "num_images": 6},
}


def backbone_overrides(settings: Mapping[str, Any], seed: int) -> list[tuple[str, Any]]:
    """Overrides of a backbone config for ``seed`` (None settings keep the config's)."""
    pairs = [("train.seed", seed), ("train.log_every", 100), ("train.checkpoint_every", 500)]
    for key, setting in (("model.network", "network"), ("train.steps", "backbone_steps"),
                         ("train.learning_rate", "backbone_lr")):
        if settings[setting] is not None:
            pairs.append((key, settings[setting]))
    return pairs


def predictor_cache(settings: Mapping[str, Any]) -> str:
    """The factor predictor's cache: ``cache_dir``, else ``$DISENTANGLE_CACHE``."""
    from disentangle.cache import cache_dir

    return str(settings["cache_dir"] or cache_dir())


def traverse_options(settings: Mapping[str, Any], seed: int):
    """The :class:`~disentangle.traverse.runner.TraverseOptions` of one seed."""
    from disentangle.traverse.runner import TraverseOptions

    flow = {"train.seed": seed, "model.num_potentials": settings["num_potentials"],
            "model.num_steps": settings["horizon"], "train.steps": settings["flow_steps"],
            "train.learning_rate": settings["flow_lr"],
            "train.batch_size": settings["flow_batch_size"], "train.log_every": 25,
            "train.checkpoint_every": 100}
    return TraverseOptions(num_seeds=settings["num_images"], num_codes=settings["num_codes"],
                           num_steps=settings["num_steps"], data_seed=seed,
                           flow_overrides=tuple(flow.items()), match_lengths=True,
                           predictor_steps=settings["predictor_steps"],
                           cache_dir=predictor_cache(settings), scale=2, progress=False)


def method_figures(backbone: str, method: str, info: Mapping[str, Any],
                   scores: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """Flat figures ``<backbone>/<method>/...`` of one traversal method.

    ``scores``: measure -> :func:`~disentangle.traverse.score.score_traversals` result.
    Purity is the mean over active traversals (NaN when none is active).
    """
    tag = f"{backbone}/{method}"
    out = {f"{tag}/traversal_length": float(info["traversal_length"]),
           f"{tag}/num_active": float(scores["tv"]["num_active"])}
    for measure, s in scores.items():
        out[f"{tag}/purity_{measure}"] = (float(s["mean_purity"]) if s["num_active"]
                                          else float("nan"))
    if method == "flow":
        speeds = np.asarray(info["speeds"], float)
        out |= {f"{tag}/classifier_accuracy": float(info["classifier_accuracy"]),
                f"{tag}/chance": 1.0 / len(speeds), f"{tag}/speed_mean": float(speeds.mean())}
    return out


def predictor_figures(accuracy: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """The factor predictor's held-out exact accuracy per factor (symmetry-aware where
    reported) as ``predictor/<factor>``."""
    exact = {**accuracy["exact"], **accuracy.get("exact_symmetric", {})}
    return {f"predictor/{name}": float(v) for name, v in exact.items()}


def run_seed(settings: Mapping[str, Any], seed: int, workdir: Path) -> dict[str, float]:
    """Train (or reuse) both backbones and their flows at ``seed``; score both methods."""
    from disentangle import config as config_lib
    from disentangle.methods.factor_predictor.model import train_factor_predictor
    from disentangle.runs import is_finished, load_run
    from disentangle.train import train_and_evaluate
    from disentangle.traverse.runner import make_traversals, write_scores
    from disentangle.traverse.score import score_traversals

    log = lambda msg: print(msg, flush=True)  # noqa: E731
    options = traverse_options(settings, seed)
    figures: dict[str, float] = {}
    predictor = None
    for backbone, path in BACKBONES.items():
        run_dir = workdir / backbone
        if not is_finished(run_dir):  # a finished run is reused even if defaults moved on
            config = config_lib.load_config(REPO_ROOT / path, backbone_overrides(settings, seed))
            train_and_evaluate(config, run_dir, progress=False)
        run = load_run(run_dir)
        if predictor is None:  # one predictor for every backbone and seed (cached)
            predictor = train_factor_predictor(run.dataset, cache_dir=predictor_cache(settings),
                                               steps=settings["predictor_steps"], log=log)
        for method in METHODS:
            traversals, info = make_traversals(run, method, options, log)
            scores = {m: score_traversals(predictor, traversals, m, ACTIVE_THRESHOLD[m])
                      for m in MEASURES}
            write_scores(run_dir, method, {**info, "scores": scores})
            figures |= method_figures(backbone, method, info, scores)
            log(f"{backbone} {method}: " + ", ".join(
                f"purity[{m}] {s['mean_purity']:.3f}" for m, s in scores.items()))
    return figures | predictor_figures(predictor.accuracy)


def _purer(backbone: str, measure: str) -> harness.Claim:
    flow, linear = f"{backbone}/flow/purity_{measure}", f"{backbone}/linear/purity_{measure}"
    return harness.Claim(
        name=f"{backbone}_flows_purer_{measure}",
        statement=f"{backbone}: flow traversals are purer than linear ones at matched lengths "
                  f"(purity `{measure}`, paired over seeds)",
        paper="Potential-flow traversals change fewer ground-truth factors than linear "
              "latent traversals (Song et al. 2023, factor-change evaluation)",
        judge=lambda figs: harness.greater(figs, flow, linear))


def _distinct(backbone: str) -> harness.Claim:
    acc, chance = f"{backbone}/flow/classifier_accuracy", f"{backbone}/flow/chance"
    return harness.Claim(
        name=f"{backbone}_classifier_above_chance",
        statement=f"{backbone}: the pair classifier tells the K flows apart (held-out accuracy "
                  "above chance 1/K; a diagnostic of the mechanism)",
        paper="The classifier identifying the potential from an image pair makes the K flows "
              "distinct (Song et al. 2023, training objective)",
        judge=lambda figs: harness.greater(figs, acc, chance))


CLAIMS = ([_purer(b, m) for b in BACKBONES for m in MEASURES]
          + [_distinct(b) for b in BACKBONES])


def notes(results: dict) -> str:
    """How the figures are measured, and the limits of the predictor."""
    s = results["settings"]
    return "\n".join([
        "## How to read the figures", "",
        f"Per seed: a beta-VAE and a QLAE trained on procedural dSprites; K = "
        f"{s['num_potentials']} potential flows (H = {s['horizon']}, {s['flow_steps']} steps, "
        f"Adam {s['flow_lr']:g}) on each frozen decoder; {s['num_steps']} linear steps "
        "(QLAE: one per codebook value); the flows' step size matched so that their mean "
        "end-to-end latent displacement equals the linear traversals' (`traversal_length`).",
        "",
        "Change of factor k along a traversal, summed over steps: `tv` = total-variation "
        "distance between consecutive predicted distributions; `expected` = change of the "
        "predicted mean value over (size - 1). Purity = the top factor's share of the "
        "change, averaged over active traversals (total change >= "
        f"{ACTIVE_THRESHOLD['tv']} for tv, {ACTIVE_THRESHOLD['expected']} for expected; NaN "
        "if none is active); `num_active` counts active traversals under tv; "
        "`classifier_accuracy` is the pair classifier's accuracy on held-out codes, "
        "`chance` = 1/K; `speed_mean` the mean learned wave speed c_k (initially 1).",
        "",
        f"`predictor/<factor>`: the factor predictor's held-out exact accuracy "
        f"({s['predictor_steps']} steps; orientation symmetry-aware). It reads the decoders' "
        "blurrier images; weak shape and orientation predictions lower every purity. "
        "Per-traversal scores: `seedS/<backbone>/traversal.json`; figures "
        "`seedS/<backbone>/figures/traversal_linear|flow.png`.",
    ])


STUDY = harness.Study(
    name="potential_flows",
    title="Latent traversals as potential flows vs linear traversals",
    paper="Song, Keller, Sebe, Welling: Latent Traversals in Generative Models as Potential "
          "Flows (ICML 2023)",
    modes=MODES, run_seed=run_seed, claims=CLAIMS, notes=notes,
    runtime={
        "quick": "one seed, about 4 min on 2 quiet cores (estimated from the throughput "
                 "measured at load average ~2: backbones ~33 steps/s, flows ~30 steps/s, "
                 "~2 min of compilation and evaluation per seed), plus the predictor once",
        "cpu": "5 seeds of 3-3.6 min each (175-214 s measured on 2 idle Zen 4 EPYC cores) "
               "plus the 3,000-step predictor once (537 s there): about 26 min",
        "full": "3 seeds of the configs' 30k-step backbones, K = 16, 5,000 flow steps: "
                "estimated 4-5 h per seed on 2 idle cores, not run",
    },
)


def main(argv: list[str] | None = None) -> int:
    return harness.main(STUDY, argv)


if __name__ == "__main__":
    sys.exit(main())
