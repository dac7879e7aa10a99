"""Interventional scores that sample the data themselves, as in disentanglement_lib.

* BetaVAE score (Higgins et al., "beta-VAE", ICLR 2017): a training point picks a factor k
  at random, draws ``batch_size`` pairs of factor vectors that agree on k, and takes
  ``mean_pairs |r(x1) - r(x2)|`` (``[L]``); a logistic regression (sklearn's default:
  multinomial, L2, C = 1) predicts k. Score = its accuracy on ``num_eval`` fresh points.
* FactorVAE score (Kim & Mnih, "Disentangling by Factorising", ICML 2018): latents are
  scaled by their global standard deviation (from ``num_variance_estimate`` samples) and
  those with std < ``prune_threshold`` (0.05) are dropped; a training point fixes factor k
  at one value over ``batch_size`` samples and votes for the latent with the smallest
  scaled variance; the majority-vote classifier (latent -> factor) is scored on
  ``num_eval`` fresh points.

``dataset`` follows :class:`disentangle.data.base.GroundTruthData`; ``represent_fn`` maps
observations ``[n, *obs]`` to codes ``[n, L]`` (numpy). These metrics need the dataset
rather than codes, so they are registered in ``metrics.INTERVENTIONAL_METRICS`` (as
``beta_vae_score`` and ``factor_vae_score``), not in ``evaluate``'s registry.

Pairs and batches that share a factor come from ``dataset.sample_factors_sharing``: on a
full grid the other factors are drawn uniformly (disentanglement_lib's sampling); on a
dataset that stores only some combinations (``ArrayData``: npz files, ...) they are stored
rows sharing that factor's value, so only combinations that exist are asked for. Every
factor must take at least 2 values in the dataset.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from disentangle.data.base import GroundTruthData
from metrics import register_interventional_metric
from metrics._common import MetricInputError
from metrics._linear import fit_softmax, log_proba

RepresentFn = Callable[[np.ndarray], np.ndarray]


def _represent(dataset, represent_fn, factors, rng, chunk: int) -> np.ndarray:
    out = []
    for i in range(0, factors.shape[0], chunk):
        obs = dataset.sample_observations_from_factors(factors[i: i + chunk], rng)
        codes = np.asarray(represent_fn(obs), dtype=np.float64)
        if not np.all(np.isfinite(codes)):
            raise MetricInputError("represent_fn returned NaN/inf codes")
        out.append(codes.reshape(codes.shape[0], -1))
    return np.concatenate(out)


def check_factor_values(dataset: GroundTruthData, where: str) -> None:
    """Raise unless every factor takes at least 2 values in ``dataset``."""
    for name, values in zip(dataset.factor_names, dataset.factor_values()):
        if len(values) < 2:
            raise MetricInputError(
                f"{where}: factor {name!r} of {dataset.name} takes {len(values)} value(s) "
                f"({values.tolist()}); these scores classify which factor was held fixed, so "
                "every factor needs at least 2 values -- drop the factor from the dataset")


def _beta_vae_points(dataset, represent_fn, rng, batch_size, num_points, chunk_points=64):
    """Features ``[num_points, L]`` and labels ``[num_points]`` of the BetaVAE classifier."""
    num_k = dataset.num_factors
    labels = rng.integers(0, num_k, size=num_points)
    features = []
    for start in range(0, num_points, chunk_points):
        idx = labels[start: start + chunk_points]
        m = idx.shape[0]
        f1 = dataset.sample_factors(m * batch_size, rng)
        # the chosen factor agrees within each pair
        f2 = dataset.sample_factors_sharing(f1, np.repeat(idx, batch_size), rng)
        r1 = _represent(dataset, represent_fn, f1, rng, 4096)
        r2 = _represent(dataset, represent_fn, f2, rng, 4096)
        diff = np.abs(r1 - r2).reshape(m, batch_size, -1)
        features.append(diff.mean(axis=1))
    return np.concatenate(features), labels


@register_interventional_metric("beta_vae_score")
def beta_vae_score(dataset: GroundTruthData, represent_fn: RepresentFn,
                   rng: np.random.Generator, batch_size: int = 64, num_train: int = 10000,
                   num_eval: int = 5000) -> dict:
    """BetaVAE score: ``{"beta_vae", "beta_vae_train_accuracy", "beta_vae_eval_accuracy"}``."""
    check_factor_values(dataset, "beta_vae_score")
    x_train, y_train = _beta_vae_points(dataset, represent_fn, rng, batch_size, num_train)
    x_eval, y_eval = _beta_vae_points(dataset, represent_fn, rng, batch_size, num_eval)
    num_k = dataset.num_factors
    w, b, _ = fit_softmax(x_train, y_train[:, None], np.array([num_k]),
                          l2=1.0 / num_train)
    train_acc = float(np.mean(log_proba(x_train, w, b)[0].argmax(-1) == y_train))
    eval_acc = float(np.mean(log_proba(x_eval, w, b)[0].argmax(-1) == y_eval))
    return {"beta_vae": eval_acc, "beta_vae_train_accuracy": train_acc,
            "beta_vae_eval_accuracy": eval_acc}


def _factor_vae_votes(dataset, represent_fn, rng, batch_size, num_points, global_var, active):
    num_k = dataset.num_factors
    votes = np.zeros((num_k, global_var.shape[0]), np.int64)
    labels = rng.integers(0, num_k, size=num_points)
    chunk_points = 64
    active_idx = np.flatnonzero(active)
    for start in range(0, num_points, chunk_points):
        idx = labels[start: start + chunk_points]
        m = idx.shape[0]
        # factor k of every sample in a point is fixed to the value of a drawn anchor
        anchors = np.repeat(dataset.sample_factors(m, rng), batch_size, axis=0)
        factors = dataset.sample_factors_sharing(anchors, np.repeat(idx, batch_size), rng)
        codes = _represent(dataset, represent_fn, factors, rng, 4096)
        local_var = codes.reshape(m, batch_size, -1).var(axis=1, ddof=1)
        pick = np.argmin(local_var[:, active] / global_var[active], axis=1)
        np.add.at(votes, (idx, active_idx[pick]), 1)
    return votes


@register_interventional_metric("factor_vae_score")
def factor_vae_score(dataset: GroundTruthData, represent_fn: RepresentFn,
                     rng: np.random.Generator, batch_size: int = 64, num_train: int = 10000,
                     num_eval: int = 5000, num_variance_estimate: int = 10000,
                     prune_threshold: float = 0.05) -> dict:
    """FactorVAE score: ``{"factor_vae", "factor_vae_train_accuracy",
    "factor_vae_eval_accuracy", "factor_vae_num_active", "warnings"}``."""
    check_factor_values(dataset, "factor_vae_score")
    factors = dataset.sample_factors(num_variance_estimate, rng)
    codes = _represent(dataset, represent_fn, factors, rng, 4096)
    global_var = codes.var(axis=0, ddof=1)
    active = np.sqrt(global_var) >= prune_threshold
    if not active.any():
        return {"factor_vae": 0.0, "factor_vae_train_accuracy": 0.0,
                "factor_vae_eval_accuracy": 0.0, "factor_vae_num_active": 0,
                "warnings": [f"no latent has std >= {prune_threshold}: score 0"]}
    train_votes = _factor_vae_votes(dataset, represent_fn, rng, batch_size, num_train,
                                    global_var, active)
    classifier = train_votes.argmax(axis=0)  # latent -> majority factor
    cols = np.arange(train_votes.shape[1])
    train_acc = float(train_votes[classifier, cols].sum() / train_votes.sum())
    eval_votes = _factor_vae_votes(dataset, represent_fn, rng, batch_size, num_eval,
                                   global_var, active)
    eval_acc = float(eval_votes[classifier, cols].sum() / eval_votes.sum())
    return {"factor_vae": eval_acc, "factor_vae_train_accuracy": train_acc,
            "factor_vae_eval_accuracy": eval_acc, "factor_vae_num_active": int(active.sum()),
            "warnings": []}
