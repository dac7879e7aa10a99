"""Scoring a run: encode a fixed sample of its dataset and run the metric suite.

``evaluate_run(run_dir)`` writes ``RUN/eval.json`` and ``RUN/figures/nmi*.png``.
The sample is drawn with a fixed seed (``eval.seed``, default 0) so every model of a
dataset is scored on the same factors. Representations scored: the integer codes for
quantized models; the mean and the sampled (mean + sigma * eps) representation for
VAEs; the output for autoencoders. The first one is the run's ``primary`` representation,
the one reports show. ``reconstruction`` is the mean per-image reconstruction loss of
the deterministic representation on the first 1,000 samples.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from disentangle import viz, xla_options
from disentangle.represent import represent
from disentangle.runs import load_run


def to_jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray | jax.Array):
        return to_jsonable(np.asarray(value).tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


_reconstruction_error = xla_options.jit_apply(lambda m, x: m.reconstruction_error(x))


def reconstruction_nll(model, dataset, n: int = 1000, seed: int = 0) -> float:
    """Mean per-example ``model.reconstruction_error`` on n fixed samples."""
    x = dataset.sample(n, np.random.default_rng([seed, 7]))[1]
    losses = [np.asarray(_reconstruction_error(model, jnp.asarray(x[i : i + 250])))
              for i in range(0, n, 250)]
    return float(np.concatenate(losses).mean())


def evaluate_run(run_dir: str | Path, num_samples: int | None = None, seed: int | None = None,
                 names: list[str] | None = None, verbose: bool = True) -> dict:
    """Score the run's latest checkpoint; writes eval.json and NMI heatmaps."""
    import metrics

    run = load_run(run_dir)
    ev = run.config.get("eval", {})
    num_samples = num_samples or ev.get("num_samples", 10_000)
    seed = ev.get("seed", 0) if seed is None else seed
    names = names or list(ev.get("metrics", ())) or None
    enc = represent(run.model, run.dataset, num_samples, seed)
    reps = enc.representations()
    out: dict[str, Any] = {
        "step": run.step, "num_samples": num_samples, "seed": seed,
        "dataset": run.config.data.name, "model": run.config.model.name,
        "factor_names": list(run.dataset.factor_names), "primary": next(iter(reps)),
        "reconstruction": reconstruction_nll(run.model, run.dataset),
        "representations": {},
    }
    for rep_name, codes in reps.items():
        scores = metrics.evaluate(codes, enc.factors, names=names)
        out["representations"][rep_name] = to_jsonable(scores)
        if "nmi" in scores:
            suffix = "" if rep_name == out["primary"] else f"_{rep_name}"
            viz.nmi_heatmap(scores["nmi"], run.dataset.factor_names,
                            run.figures / f"nmi{suffix}.png",
                            title=f"{run.path.name}: NMI ({rep_name} representation)",
                            active=scores.get("active"))
    (run.path / "eval.json").write_text(json.dumps(to_jsonable(out), indent=1))
    if verbose:
        print(format_table(out))
    return out


def format_table(result: dict) -> str:
    """Plain-text table of the scalar scores of each representation."""
    from metrics import scalars

    reps = {name: scalars(scores) for name, scores in result["representations"].items()}
    keys = sorted({k for s in reps.values() for k in s})
    head = f"{'metric':<28}" + "".join(f"{r:>12}" for r in reps)
    lines = [f"step {result['step']}, {result['num_samples']} samples of {result['dataset']}, "
             f"reconstruction {result['reconstruction']:.2f}", head, "-" * len(head)]
    for k in keys:
        cells = "".join(f"{reps[r][k]:>12.4f}" if k in reps[r] else f"{'-':>12}"
                        for r in reps)
        lines.append(f"{k:<28}{cells}")
    return "\n".join(lines)
