"""Scoring a run: encode a fixed sample of its dataset and run the metric suite.

``evaluate_run(run_dir)`` writes ``RUN/eval.json`` and ``RUN/figures/nmi*.png``.
The sample is drawn with a fixed seed (``eval.seed``, default 0) so every model of a
dataset is scored on the same factors. Representations scored: the integer codes for
quantized models; the mean and the sampled (mean + sigma * eps) representation for
VAEs; the output for autoencoders. The first one is the run's ``primary`` representation,
the one reports show. ``reconstruction`` is the mean per-image reconstruction loss of
the deterministic representation on the first 1,000 samples.

``names`` may mix the registered metrics of codes (:data:`metrics.METRICS`) with the
interventional scores (:data:`metrics.INTERVENTIONAL_METRICS`: ``beta_vae_score``,
``factor_vae_score``), which sample the run's dataset through its encoder. The run-set
metric UDR compares several runs: :func:`udr_of_runs`.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from disentangle import viz, xla_options
from disentangle.errors import UserError
from disentangle.represent import encode_batches, represent
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


def sample_settings(config, num_samples: int | None, seed: int | None) -> tuple[int, int]:
    """The evaluation sample size and seed: the given ones, else the config's ``eval``."""
    ev = config.get("eval", {})
    return num_samples or ev.get("num_samples", 10_000), ev.get("seed", 0) if seed is None else seed


def split_metric_names(names: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """``(metrics of codes or None for the default suite, interventional metrics)``; a name
    in neither registry is a :class:`UserError` listing what is accepted."""
    import metrics

    if not names:
        return None, []
    codes, interventional = [], []
    for name in names:
        if name in metrics.METRICS:
            codes.append(name)
        elif name in metrics.INTERVENTIONAL_METRICS:
            interventional.append(name)
        elif name in metrics.RUN_SET_METRICS:
            raise UserError(f"metric {name!r} scores a set of runs, not one run: give several "
                            f"runs, `disentangle evaluate RUN1 RUN2 ... --metrics {name}`")
        else:
            raise UserError(
                f"unknown metric {name!r}; accepted: {', '.join(metrics.METRICS)} (codes), "
                f"{', '.join(metrics.INTERVENTIONAL_METRICS)} (interventional), "
                f"{', '.join(metrics.RUN_SET_METRICS)} (several runs)")
    return codes, interventional


def represent_fns(model, kinds, rng: np.random.Generator) -> dict[str, Any]:
    """Per representation kind (``Encoded.representations`` keys), ``obs -> codes [n, L]``."""
    fields = {"mean": 0, "codes": 2}

    def field(i):
        return lambda obs: encode_batches(model, obs)[i]

    def sampled(obs):
        mean, logvar, _ = encode_batches(model, obs)
        return mean + np.exp(0.5 * logvar) * rng.standard_normal(mean.shape)

    return {k: sampled if k == "sampled" else field(fields[k]) for k in kinds}


def evaluate_run(run_dir: str | Path, num_samples: int | None = None, seed: int | None = None,
                 names: list[str] | None = None, verbose: bool = True,
                 options: dict | None = None) -> dict:
    """Score the run's latest checkpoint; writes eval.json and NMI heatmaps.

    ``options`` go to every metric whose signature names them (e.g. ``num_train`` of the
    interventional scores, ``importance`` of DCI).
    """
    import metrics

    run = load_run(run_dir)
    num_samples, seed = sample_settings(run.config, num_samples, seed)
    code_names, interventional = split_metric_names(
        names or list(run.config.get("eval", {}).get("metrics", ())))
    options = options or {}
    chosen = [(metrics.METRICS.get(n), 2) for n in code_names or metrics.DEFAULT_METRICS]
    chosen += [(metrics.INTERVENTIONAL_METRICS.get(n), 3) for n in interventional]
    accepted = {p for fn, skip in chosen for p in list(inspect.signature(fn).parameters)[skip:]}
    unused = sorted(set(options) - accepted)
    if unused:
        raise UserError(f"metric option(s) {', '.join(unused)} are not options of the metrics "
                        f"asked for; accepted: {', '.join(sorted(accepted))}")
    enc = represent(run.model, run.dataset, num_samples, seed)
    reps = enc.representations()
    out: dict[str, Any] = {
        "step": run.step, "num_samples": len(enc.factors), "seed": seed,
        "dataset": run.config.data.name, "model": run.config.model.name,
        "factor_names": list(run.dataset.factor_names), "primary": next(iter(reps)),
        "reconstruction": reconstruction_nll(run.model, run.dataset),
        "representations": {},
    }
    if len(enc.factors) < num_samples:
        out["num_samples_requested"] = num_samples  # a finite dataset with fewer rows
    fns = represent_fns(run.model, reps, np.random.default_rng([seed, 3]))
    for rep_name, codes in reps.items():
        scores = metrics.evaluate(codes, enc.factors, names=code_names, **options)
        for name in interventional:
            fn = metrics.INTERVENTIONAL_METRICS.get(name)
            kwargs = {k: v for k, v in options.items() if k in inspect.signature(fn).parameters}
            result = fn(run.dataset, fns[rep_name], np.random.default_rng([seed, 2]), **kwargs)
            scores["warnings"] += [f"{name}: {w}" for w in result.pop("warnings", [])]
            scores.update(result)
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


def latent_kl(mean: np.ndarray, logvar: np.ndarray) -> np.ndarray:
    """``[L]`` mean KL of each diagonal-Gaussian latent to N(0, 1) over the samples:
    ``mean_x 0.5 (mu^2 + sigma^2 - log sigma^2 - 1)``."""
    mean, logvar = np.asarray(mean, np.float64), np.asarray(logvar, np.float64)
    return 0.5 * np.mean(mean**2 + np.exp(logvar) - logvar - 1.0, axis=0)


def udr_of_runs(run_dirs: list[str | Path], num_samples: int | None = None,
                seed: int | None = None, **options) -> dict:
    """UDR (:func:`metrics.udr`) of several runs on one dataset, from their mean (or code)
    representations of the same ``num_samples`` inputs (default: the first run's
    ``eval.num_samples`` and ``eval.seed``). A VAE's latents count when their mean KL to the
    prior exceeds ``kl_threshold`` (0.01); models without a posterior variance (autoencoders,
    QLAE) keep every latent. Returns ``{"runs", "udr" (per run), "udr_pairwise",
    "udr_informative", "kl", "warnings", ...}``."""
    import metrics

    unknown = sorted(set(options) - set(list(inspect.signature(metrics.udr).parameters)[3:]))
    if unknown:
        raise UserError(f"udr has no option(s) {', '.join(unknown)}; accepted: correlation, "
                        "kl_threshold, lasso_alpha")
    runs = [load_run(d) for d in run_dirs]
    datasets = {str(r.config.data.name) for r in runs}
    if len(datasets) > 1:
        raise UserError(f"UDR compares runs on the same inputs; these runs use the datasets "
                        f"{sorted(datasets)}")
    num_samples, seed = sample_settings(runs[0].config, num_samples, seed)
    reps, kls, masks = [], [], []
    threshold = options.get("kl_threshold", 0.01)
    for run in runs:
        enc = represent(run.model, run.dataset, num_samples, seed)
        reps.append(next(iter(enc.representations().values())))
        kl = None if enc.logvar is None else latent_kl(enc.mean, enc.logvar)
        kls.append(kl)
        masks.append(np.ones(reps[-1].shape[1], bool) if kl is None else kl > threshold)
    result = metrics.udr(reps, informative=masks, **options)
    return {"runs": [str(r.path) for r in runs], "num_samples": len(reps[0]), "seed": seed,
            "kl": kls, **result}


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
