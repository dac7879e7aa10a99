"""Traversals of a trained run: figures in ``RUN/figures`` and scores in ``RUN/traversal.json``.

``traverse_model`` works on any (model, dataset) pair; ``traverse_run`` adds the run
directory conventions. Both methods share the seed images, the encoded data and the factor
predictor, so their scores are comparable:

- linear: ``figures/traversal_linear.png`` / ``.gif``; rows are latents.
- potential flow: trained (or resumed) in ``RUN/potential_flow/`` on the frozen decoder;
  ``figures/traversal_potential_flow.png`` / ``.gif``; rows are the K potentials.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from disentangle.methods.potential_flow.model import (
    PotentialFlowConfig,
    classifier_accuracy,
    flow_traversals,
    train_potential_flow,
)
from disentangle.traverse.common import Traversals, encode_means
from disentangle.traverse.figures import save_traversal_figures
from disentangle.traverse.linear import linear_traversals
from disentangle.traverse.score import score_traversals

METHODS = ("linear", "potential-flow")


@dataclasses.dataclass
class TraverseOptions:
    """What to traverse and how to score it."""

    num_seeds: int = 4
    num_steps: int = 11  # linear steps for continuous latents (codebook models use V)
    quantiles: tuple[float, float] = (0.02, 0.98)
    num_codes: int = 5000  # encoded images: quantile ranges and flow starting points
    data_seed: int = 0
    flow: PotentialFlowConfig = dataclasses.field(default_factory=PotentialFlowConfig)
    score: bool = True
    measure: str = "tv"
    active_threshold: float = 0.25
    predictor_steps: int = 3000  # disentangle.methods.factor_predictor.model.DEFAULT_STEPS
    cache_dir: str | None = None
    scale: int = 1  # figure upscaling


def _predictor(dataset, options: TraverseOptions, log):
    from disentangle.methods.factor_predictor.model import train_factor_predictor

    return train_factor_predictor(dataset, cache_dir=options.cache_dir,
                                  steps=options.predictor_steps, log=log)


def make_traversals(model, dataset, method: str, options: TraverseOptions, figures_dir: Path,
                    flow_dir: Path | None = None, log: Callable[[str], None] | None = print,
                    ) -> tuple[Traversals, dict]:
    """Traverse ``model`` with ``method`` and write the figures; returns (traversals, info)."""
    log = log or (lambda msg: None)
    if method not in METHODS:
        from disentangle.errors import UserError
        raise UserError(f"traversal method {method!r}; accepted: {', '.join(METHODS)}")
    rng = np.random.default_rng(options.data_seed)
    _, images = dataset.sample(options.num_codes, rng)
    _, seeds = dataset.sample(options.num_seeds, np.random.default_rng(options.data_seed + 1))
    began = time.time()
    info: dict = {"method": method}
    if method == "linear":
        traversals = linear_traversals(model, seeds, images, options.num_steps, options.quantiles)
    else:
        if flow_dir is None:
            raise ValueError("potential-flow traversals need a flow_dir for their checkpoints")
        codes = encode_means(model, images)
        held = max(len(codes) // 10, 1)  # flows start from the other 90 %
        flow = train_potential_flow(model, codes[held:], dataset.observation_shape,
                                    options.flow, flow_dir, log)
        traversals = flow_traversals(flow, model, encode_means(model, seeds),
                                     options.flow.num_steps)
        info["classifier_accuracy"] = classifier_accuracy(
            flow, model, codes[:min(held, 64)], options.flow.num_steps)
        info["speeds"] = [float(c) for c in np.asarray(flow.potentials.speed)]
        info["flow_dir"] = str(flow_dir)
    stem = figures_dir / f"traversal_{method.replace('-', '_')}"
    png, gif = save_traversal_figures(traversals.images, stem, traversals.row_labels,
                                      options.scale)
    info["figures"] = [str(png), str(gif)]
    latent_move = np.abs(traversals.latents[:, :, -1] - traversals.latents[:, :, 0])
    info["mean_latent_move"] = float(latent_move.sum(-1).mean())
    info["seconds"] = time.time() - began
    return traversals, info


def traverse_model(model, dataset, method: str, options: TraverseOptions, figures_dir: Path,
                   flow_dir: Path | None = None, predictor=None,
                   log: Callable[[str], None] | None = print) -> dict:
    """Traverse ``model`` with ``method``, write figures, return the scores (a dict)."""
    traversals, result = make_traversals(model, dataset, method, options, figures_dir,
                                         flow_dir, log)
    if options.score:
        predictor = predictor or _predictor(dataset, options, log)
        result.update(score_traversals(predictor, traversals, options.measure,
                                       options.active_threshold))
    return result


def write_scores(run_dir: str | Path, method: str, result: dict) -> None:
    """Merge one method's result into ``RUN/traversal.json`` (written atomically)."""
    out = Path(run_dir) / "traversal.json"
    scores = json.loads(out.read_text()) if out.exists() else {}
    scores[method.replace("-", "_")] = result
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(scores, indent=2))
    tmp.replace(out)


def traverse_run(run_dir: str | Path, method: str, options: TraverseOptions, predictor=None,
                 log: Callable[[str], None] | None = print) -> dict:
    """Traverse a finished run; merge the scores into ``RUN/traversal.json``."""
    from disentangle.runs import load_run

    run = load_run(run_dir)
    run_dir = Path(run_dir)
    result = traverse_model(run.model, run.dataset, method, options, run.figures,
                            run_dir / "potential_flow", predictor, log)
    result["run_step"] = int(run.step)
    write_scores(run_dir, method, result)
    return result
