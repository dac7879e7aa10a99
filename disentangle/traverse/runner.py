"""Traversals of a trained run: figures in ``RUN/figures`` and scores in ``RUN/traversal.json``.

Both methods share the seed images, the encoded data and the factor predictor, so their
scores are comparable:

- linear: ``figures/traversal_linear.png`` / ``.gif``; rows are latents.
- flow (potential flows, Song et al., ICML 2023): the run ``RUN/flow/`` of the registered
  method ``potential_flow`` on the frozen run (``configs/potential_flow.py`` +
  overrides), trained or resumed by :func:`disentangle.train.train_and_evaluate`;
  ``figures/traversal_flow.png`` / ``.gif``; rows are the K potentials.

Matched lengths (``match_lengths``): a flow traversal has H + 1 frames; with
``num_steps = H + 1`` linear frames and the flow's step size scaled so that its mean
end-to-end latent displacement equals the linear traversals' (mean quantile range of the
latents in use, :func:`disentangle.traverse.linear.linear_length`), both kinds are
compared at the same number of steps and comparable displacement.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import ml_collections
import numpy as np

from disentangle.errors import UserError
from disentangle.traverse.common import Traversals, encode_means
from disentangle.traverse.figures import save_traversal_figures
from disentangle.traverse.linear import (
    latent_ranges,
    linear_length,
    linear_traversals,
    mean_length,
)
from disentangle.traverse.score import score_traversals

METHODS = ("linear", "flow")
FLOW_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "potential_flow.py"


@dataclasses.dataclass
class TraverseOptions:
    """What to traverse and how to score it."""

    num_seeds: int = 4
    num_steps: int = 11  # linear steps for continuous latents (codebook models use V)
    quantiles: tuple[float, float] = (0.02, 0.98)
    num_codes: int = 5000  # encoded images: quantile ranges, held-out flow starts
    data_seed: int = 0
    flow_config: str = str(FLOW_CONFIG)
    flow_overrides: Sequence[str | tuple[str, object]] = ()  # key=value on flow_config
    match_lengths: bool = False  # scale flow steps to the linear traversals' length
    score: bool = True
    measure: str = "tv"
    active_threshold: float = 0.25
    predictor_steps: int = 3000  # disentangle.methods.factor_predictor.model.DEFAULT_STEPS
    cache_dir: str | None = None
    scale: int = 1  # figure upscaling
    progress: bool = True  # the trainer's progress bar while a flow trains


def flow_config(run_dir: str | Path, options: TraverseOptions) -> ml_collections.ConfigDict:
    """The flow run's config: ``options.flow_config`` + overrides, on ``run_dir``'s decoder
    and dataset."""
    from disentangle.config import apply_overrides, load_config

    run_dir = Path(run_dir).resolve()
    base = json.loads((run_dir / "config.json").read_text())
    config = load_config(options.flow_config, options.flow_overrides)
    apply_overrides(config, [("model.base_run", str(run_dir)),
                             ("data.name", base["data"]["name"])], source="traverse")
    config.data.options = ml_collections.ConfigDict(base["data"].get("options", {}))
    return config


def train_flow(run_dir: str | Path, options: TraverseOptions) -> Path:
    """Train (or resume, or reuse) the potential flows of ``run_dir`` in ``run_dir/flow``."""
    from disentangle.errors import ConfigError
    from disentangle.train import train_and_evaluate

    flow_dir = Path(run_dir) / "flow"
    try:
        return train_and_evaluate(flow_config(run_dir, options), flow_dir,
                                  progress=options.progress)
    except ConfigError as err:
        if not (flow_dir / "config.json").exists():
            raise
        raise ConfigError(f"{err} To traverse with other flow settings, delete {flow_dir} "
                          "(or pass the overrides it was trained with, see its config.json)."
                          ) from None


def make_traversals(run, method: str, options: TraverseOptions,
                    log: Callable[[str], None] | None = print) -> tuple[Traversals, dict]:
    """Traverse ``run`` (a :class:`disentangle.runs.Run`) with ``method``, write its figures.

    Returns (traversals, info) where info holds the figure paths, the mean end-to-end latent
    displacement of the rows in use (``traversal_length``, :func:`mean_length`) and, for
    flows, the pair classifier's accuracy on
    held-out codes, the learned speeds and the step size used.
    """
    from disentangle.methods.potential_flow.model import (
        classifier_accuracy,
        flow_traversals,
        matched_step_size,
    )
    from disentangle.runs import load_run

    log = log or (lambda msg: None)
    if method not in METHODS:
        raise UserError(f"traversal method {method!r}; accepted: {', '.join(METHODS)}")
    model, dataset = run.model, run.dataset
    _, images = dataset.sample(options.num_codes, np.random.default_rng(options.data_seed))
    _, seeds = dataset.sample(options.num_seeds, np.random.default_rng(options.data_seed + 1))
    began = time.time()
    info: dict = {"method": method}
    if method == "linear":
        traversals = linear_traversals(model, seeds, images, options.num_steps, options.quantiles)
    else:
        flow_dir = train_flow(run.path, options)
        flow_run = load_run(flow_dir)
        flows = flow_run.model
        seed_codes = encode_means(model, seeds)
        step_size = 1.0
        if options.match_lengths:
            codes = encode_means(model, images)
            target = linear_length(latent_ranges(model, codes, options.num_steps,
                                                 options.quantiles))
            step_size = matched_step_size(flows.potentials, seed_codes, flows.horizon, target)
            info["target_length"] = target
            if flows.num_steps + 1 != options.num_steps:
                log(f"flow: {flows.num_steps + 1} frames vs {options.num_steps} linear steps "
                    "(set model.num_steps = num_steps - 1 to match)")
        traversals = flow_traversals(flows, seed_codes, step_size)
        held = encode_means(model, images[:64])  # fresh draws, not the training batches
        info.update(classifier_accuracy=classifier_accuracy(flows, held),
                    speeds=[float(c) for c in np.asarray(flows.potentials.speed)],
                    step_size=float(step_size), flow_dir=str(flow_dir),
                    flow_steps=int(flow_run.step))
        log(f"flow: pair-classifier accuracy {info['classifier_accuracy']:.3f} "
            f"(chance {1 / flows.potentials.num_potentials:.3f}), step size {step_size:.3g}")
    labels = factor_labels(traversals.row_labels, run.path / "eval.json",
                           dataset.factor_names) if method == "linear" else traversals.row_labels
    png, gif = save_traversal_figures(traversals.images, run.figures / f"traversal_{method}",
                                      labels, options.scale)
    info["figures"] = [str(png), str(gif)]
    info["num_frames"] = int(traversals.latents.shape[2])
    lat = traversals.latents  # [seeds, rows, steps, L]
    info["traversal_length"] = mean_length(
        np.linalg.norm(lat[:, :, -1] - lat[:, :, 0], axis=-1).mean(0))
    info["seconds"] = time.time() - began
    return traversals, info


def factor_labels(row_labels: list[str], eval_json: Path, factor_names, threshold: float = 0.2
                  ) -> list[str]:
    """``z3`` -> ``z3 ball_x``: each latent row named with the factor it carries most,
    argmax_i NMI_ij from the run's ``eval.json`` (primary representation), where that NMI
    is >= ``threshold``; rows stay ``zJ`` without an evaluation or below the threshold."""
    try:
        ev = json.loads(Path(eval_json).read_text())
        nmi = np.asarray(ev["representations"][ev["primary"]]["nmi"], float)  # [K, L]
    except (OSError, ValueError, KeyError, TypeError):
        return list(row_labels)
    out = []
    for label in row_labels:
        j = int(label[1:]) if label[:1] == "z" and label[1:].isdigit() else -1
        if 0 <= j < nmi.shape[1] and nmi.shape[0] == len(factor_names) \
                and nmi[:, j].max() >= threshold:
            label = f"{label} {factor_names[int(nmi[:, j].argmax())]}"
        out.append(label)
    return out


def _predictor(dataset, options: TraverseOptions, log):
    from disentangle.methods.factor_predictor.model import train_factor_predictor

    return train_factor_predictor(dataset, cache_dir=options.cache_dir,
                                  steps=options.predictor_steps, log=log)


def write_scores(run_dir: str | Path, method: str, result: dict) -> None:
    """Merge one method's result into ``RUN/traversal.json`` (written atomically)."""
    out = Path(run_dir) / "traversal.json"
    scores = json.loads(out.read_text()) if out.exists() else {}
    scores[method] = result
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(scores, indent=2))
    tmp.replace(out)


def traverse_run(run_dir: str | Path, method: str, options: TraverseOptions, predictor=None,
                 log: Callable[[str], None] | None = print) -> dict:
    """Traverse a trained run, score it, merge the result into ``RUN/traversal.json``."""
    from disentangle.runs import load_run

    run = load_run(run_dir)
    traversals, result = make_traversals(run, method, options, log)
    if options.score:
        predictor = predictor or _predictor(run.dataset, options, log)
        result.update(score_traversals(predictor, traversals, options.measure,
                                       options.active_threshold))
    result["run_step"] = int(run.step)
    write_scores(run_dir, method, result)
    return result
