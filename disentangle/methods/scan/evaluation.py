"""Evaluating SCAN (Higgins et al., ICLR 2018) with a factor predictor on observations.

- image -> symbol: accuracy per vocabulary factor of the SCAN decoder's most probable unit
  at the visual latent mean.
- symbol -> image: for a concept posterior q(z_y | y) draw S samples, decode them with the
  frozen beta-VAE and classify the observations with a factor predictor trained on the
  dataset; *accuracy* of the factors the symbol names (prediction == named value) and
  *diversity* of the factors it leaves unnamed: the entropy of the S predictions divided by
  log(number of values), 1 when the unnamed factor takes all values equally often. The same
  measure on decoded prior samples z ~ N(0, I) is the reference a perfect SCAN reaches.
- recombined concepts are scored the same way against the named factors of the target.

The judge is the project's one factor predictor (:mod:`disentangle.methods.factor_predictor.model`,
trained on the dataset's own factors and cached per dataset); its prediction of every
factor is binned into the vocabulary's values, and its own accuracy on those values is
reported so that the ceiling of the symbol -> image accuracy is visible.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from disentangle import xla_options
from disentangle.methods.factor_predictor.model import FactorPredictor
from disentangle.methods.scan.model import SCAN, SymbolVocabulary


# Evaluation programs of a trained SCAN run (read-only, jitted with the backend's options).
@xla_options.jit_apply
def posterior(model: SCAN, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Visual posterior (mean, logvar) [n, L] of observations x."""
    rep = model.encode(x)
    return rep.mean, rep.logvar


@xla_options.jit_apply
def decoded(model: SCAN, z: jax.Array) -> jax.Array:
    """The visual decoder's output (logits for Bernoulli) at latents z [n, L]."""
    return model.decode(z)


@xla_options.jit_apply
def symbol_probs(model: SCAN, z: jax.Array) -> jax.Array:
    """latent -> symbol: unit probabilities [n, U] at latents z [n, L]."""
    return model.symbol_probs(z)


@xla_options.jit_apply
def concept(model: SCAN, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """symbol -> concept: (mean, logvar) [n, L] of q(z_y|y) for k-hot symbols [n, U]."""
    rep = model.concept(y)
    return rep.mean, rep.logvar


@xla_options.jit_apply
def recombined(model: SCAN, y1: jax.Array, y2: jax.Array, op: jax.Array
               ) -> tuple[jax.Array, jax.Array]:
    """(mean, logvar) of the recombined concept of symbols y1, y2 [n, U] under op int [n]."""
    rep = model.recombine(y1, y2, op)
    return rep.mean, rep.logvar


def symbol_value_predictor(predictor: FactorPredictor, vocab: SymbolVocabulary
                           ) -> Callable[[np.ndarray], np.ndarray]:
    """Observations [m, *obs] -> symbol values int [m, K_v]: the dataset's factor predictor
    (most probable value of every factor) followed by the vocabulary's binning."""

    def predict(observations) -> np.ndarray:
        return vocab.values(predictor.predict(np.asarray(observations)))

    return predict


def batched(fn: Callable[[jax.Array], jax.Array], x: np.ndarray, batch_size: int = 256
            ) -> np.ndarray:
    """Apply a jitted ``fn`` to ``x`` in batches (the last one padded), as numpy."""
    out = []
    for i in range(0, len(x), batch_size):
        chunk = x[i: i + batch_size]
        pad = batch_size - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], pad, axis=0)])
        out.append(np.asarray(fn(jnp.asarray(chunk)))[: batch_size - pad])
    return np.concatenate(out)


def per_factor_accuracy(pred: np.ndarray, values: np.ndarray, vocab: SymbolVocabulary,
                        where: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy of each vocabulary factor over the rows (where ``where`` [n, K_v] is True)."""
    hit = np.asarray(pred) == np.asarray(values)
    w = np.ones_like(hit) if where is None else np.asarray(where, bool)
    return {name: float(hit[w[:, k], k].mean()) if w[:, k].any() else float("nan")
            for k, name in enumerate(vocab.factor_names)}


def normalised_entropy(pred: np.ndarray, bins: int) -> np.ndarray:
    """Entropy of the empirical distribution of each row of int [n, S] over ``bins`` values,
    divided by log(bins): [n] in [0, 1]."""
    counts = np.stack([(pred == b).sum(1) for b in range(bins)], axis=1) / pred.shape[1]
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.where(counts > 0, counts * np.log(counts), 0.0).sum(1)
    return h / np.log(bins) if bins > 1 else np.zeros(len(pred))


def concept_to_observation_scores(mean: np.ndarray, logvar: np.ndarray, named: np.ndarray,
                                  values: np.ndarray, vocab: SymbolVocabulary,
                                  decode: Callable[[jax.Array], jax.Array],
                                  predict: Callable[[jax.Array], jax.Array],
                                  num_samples: int, key: jax.Array) -> dict[str, dict]:
    """Sample, decode and classify concept posteriors.

    Args:
      mean, logvar: concept posteriors [n, L]; named: bool [n, K_v] factors each concept
        names; values: the named values, int [n, K_v] (ignored where not named).
      decode: z [m, L] -> observations [m, *obs] (probabilities / signal, not logits);
      predict: observations -> factor values int [m, K_v].
    Returns:
      {"accuracy": {factor: mean over named rows and samples},
       "diversity": {factor: mean normalised entropy over unnamed rows}}
    """
    n, d = mean.shape
    eps = np.asarray(jax.random.normal(key, (n, num_samples, d)))
    z = mean[:, None] + np.exp(0.5 * logvar)[:, None] * eps
    pred = batched(lambda zz: predict(decode(zz)), z.reshape(n * num_samples, d).astype(
        np.float32)).reshape(n, num_samples, -1)
    acc, div = {}, {}
    for k, name in enumerate(vocab.factor_names):
        rows = named[:, k]
        acc[name] = (float((pred[rows, :, k] == values[rows, k, None]).mean())
                     if rows.any() else float("nan"))
        div[name] = (float(normalised_entropy(pred[~rows, :, k], vocab.bins[k]).mean())
                     if (~rows).any() else float("nan"))
    return {"accuracy": acc, "diversity": div}


def mean_of(d: dict[str, float]) -> float:
    vals = [v for v in d.values() if np.isfinite(v)]
    return float(np.mean(vals)) if vals else float("nan")
