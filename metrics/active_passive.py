"""Active, mixed and passive latent variables of VAEs and how mean and sampled codes differ.

Bonheme & Grzes, "Be More Active! Understanding the Differences between Mean and Sampled
Representations of Variational Autoencoders". For each latent dimension i and the
encoder's posterior variances sigma_i^2(x) over a sample of N inputs:

    m_i = mean_x sigma_i^2(x)          (mean of the variances)
    v_i = var_x  sigma_i^2(x)          (variance of the variances)

    active  :  v_i < var_threshold  and  m_i <= mean_tolerance          (sigma_i^2 ~ 0)
    passive :  v_i < var_threshold  and  |m_i - 1| <= mean_tolerance    (sigma_i^2 ~ 1,
               the posterior equals the prior: a collapsed dimension)
    mixed   :  everything else (e.g. collapsed for some inputs, informative for others)

with ``var_threshold = mean_tolerance = 0.1`` in the paper. Boundaries: the variance test
is strict (v_i = 0.1 is *not* below the threshold), the mean tests are inclusive
(m_i = 0.1, 0.9 and 1.1 are inside). Comparisons are done in float64 with an absolute
slack of ``BOUNDARY_SLACK = 1e-12`` on the inclusive side so that decimal boundaries such
as |1.1 - 1| (= 0.10000000000000009 in float64) count as on the boundary.

``study`` compares the *mean* representation mu(x) with the *sampled* one
mu(x) + sigma(x) * eps on all / active / mixed / passive / non-passive (active + mixed)
variables with the Gaussian total
correlation, the mean pairwise mutual information of the latents (20-bin histograms),
InfoMEC, MIG and the accuracy of two downstream classifiers per factor (multinomial
logistic regression and Gaussian naive Bayes, the latter being a model that assumes
independent inputs and so is sensitive to correlated ones). The paper's finding: passive
variables are strongly correlated in the mean representation and uncorrelated in the
sampled one (where they are prior noise); active variables score alike in both.

This module is a pure function of arrays: it never imports models. The scores themselves
come from the other ``metrics`` modules (imported when ``study`` runs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

ACTIVE, MIXED, PASSIVE = "active", "mixed", "passive"
NON_PASSIVE = "non_passive"  # active + mixed: the representation with passive latents dropped
GROUPS = ("all", ACTIVE, MIXED, PASSIVE, NON_PASSIVE)
BOUNDARY_SLACK = 1e-12
REPRESENTATIONS = ("mean", "sampled")


# ----------------------------------------------------------------------------- classify
def posterior_variance_moments(logvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, v), each float64 [L]: mean and variance over inputs of sigma^2 = exp(logvar).

    ``logvar``: float [n, L], the encoder's log posterior variances of n inputs.
    """
    variance = np.exp(np.asarray(logvar, np.float64))  # sigma_i^2(x), [n, L]
    return variance.mean(axis=0), variance.var(axis=0)  # m_i, v_i (population variance)


def label_latents(variance_mean: np.ndarray, variance_var: np.ndarray,
                  var_threshold: float = 0.1, mean_tolerance: float = 0.1) -> np.ndarray:
    """Labels ("active" | "mixed" | "passive"), str [L], from m_i and v_i (each [L])."""
    m = np.asarray(variance_mean, np.float64)
    v = np.asarray(variance_var, np.float64)
    stable = v < var_threshold  # strict: v_i < 0.1
    active = stable & (m <= mean_tolerance + BOUNDARY_SLACK)  # m_i <= 0.1
    passive = stable & (np.abs(m - 1.0) <= mean_tolerance + BOUNDARY_SLACK)  # |m_i - 1| <= 0.1
    labels = np.full(m.shape, MIXED, dtype=object)
    labels[active] = ACTIVE
    labels[passive & ~active] = PASSIVE  # disjoint unless mean_tolerance >= 0.5
    return labels.astype(str)


def _check_pair(mean: np.ndarray, logvar: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, logvar = np.asarray(mean), np.asarray(logvar)
    if mean.ndim != 2 or mean.shape != logvar.shape:
        raise ValueError(f"mean {mean.shape} and logvar {logvar.shape} must both be [n, L] "
                         "arrays of the same shape")
    if mean.shape[0] < 2:
        raise ValueError(f"need at least 2 inputs to measure variances, got {mean.shape[0]}")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(logvar))):
        raise ValueError("mean and logvar must be finite")
    return mean, logvar


def classify(mean: np.ndarray, logvar: np.ndarray, var_threshold: float = 0.1,
             mean_tolerance: float = 0.1) -> dict[str, np.ndarray]:
    """Active / mixed / passive label of each latent of a Gaussian encoder.

    Args:
      mean: float [n, L], posterior means mu(x) of n inputs.
      logvar: float [n, L], posterior log-variances log sigma^2(x).
      var_threshold: v_i must be strictly below it for active and passive.
      mean_tolerance: active if m_i <= tol; passive if |m_i - 1| <= tol.

    Returns a dict of arrays [L]: ``labels`` (str), ``posterior_variance_mean`` (m_i),
    ``posterior_variance_var`` (v_i) and ``mean_variance`` (var_x mu_i(x), how much the
    posterior mean itself moves; tiny for passive variables).
    """
    mean, logvar = _check_pair(mean, logvar)
    m, v = posterior_variance_moments(logvar)
    return {
        "labels": label_latents(m, v, var_threshold, mean_tolerance),
        "posterior_variance_mean": m,
        "posterior_variance_var": v,
        "mean_variance": np.asarray(mean, np.float64).var(axis=0),
    }


def groups_of(labels: Sequence[str]) -> dict[str, np.ndarray]:
    """Latent indices (int [size]) of each group: all, active, mixed, passive, non_passive.

    ``non_passive`` (active + mixed) is the representation with the passive latents
    dropped, the paper's advice for models sensitive to correlated inputs.
    """
    labels = np.asarray(labels)
    out = {"all": np.arange(len(labels))}
    for name in (ACTIVE, MIXED, PASSIVE):
        out[name] = np.flatnonzero(labels == name)
    out[NON_PASSIVE] = np.flatnonzero(labels != PASSIVE)
    return out


def sampled_representation(mean: np.ndarray, logvar: np.ndarray,
                           rng: np.random.Generator) -> np.ndarray:
    """z = mu + exp(logvar / 2) * eps, eps ~ N(0, I): float [n, L]."""
    eps = rng.standard_normal(np.shape(mean))
    return np.asarray(mean, np.float64) + np.exp(0.5 * np.asarray(logvar, np.float64)) * eps


# ----------------------------------------------------------------------------- scores
def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


def mean_pairwise_mi(codes: np.ndarray, num_bins: int = 20) -> float | None:
    """mean_{i != j} I(z_i; z_j) in nats (20-bin histograms); None below 2 latents.

    ``metrics.mean_pairwise_mutual_info``, disentanglement_lib's unsupervised "mutual info
    score"; with a single latent there is no pair, so the score is undefined here.
    """
    from metrics import mean_pairwise_mutual_info

    if codes.shape[1] < 2:
        return None
    return _finite_or_none(mean_pairwise_mutual_info(codes, num_bins=num_bins))


def classifier_accuracies(codes: np.ndarray, factors: np.ndarray, train: np.ndarray,
                          test: np.ndarray, pad_to: int = 0) -> dict[str, list[float]]:
    """Test accuracy per factor of two classifiers fit on standardised codes.

    ``logistic``: multinomial logistic regression with sklearn's default ridge (C = 1,
    i.e. l2 = 1 / n_train on the mean loss), fitted by L-BFGS (``metrics._linear``);
    ``naive_bayes``: Gaussian naive Bayes (sklearn), which treats the latents as
    independent given the factor and so double counts correlated inputs.
    ``codes`` [n, L], ``factors`` int [n, K], ``train``/``test``: index arrays.
    ``pad_to``: append zero columns up to this width before the logistic fit; a zero
    input keeps a zero weight, so the fit is unchanged, and every group of latents then
    shares one compiled L-BFGS program. Returns {classifier: [K test accuracies]}.
    """
    from sklearn.naive_bayes import GaussianNB

    from metrics._common import label_encode
    from metrics._linear import fit_softmax, log_proba, standardize

    x = np.asarray(codes, np.float64)
    x = standardize(x, x[train])  # training statistics
    encoded = [label_encode(factors[:, k]) for k in range(factors.shape[1])]
    y = np.stack([labels for labels, _ in encoded], axis=1)  # int [n, K], 0..C_k-1
    num_classes = np.array([num for _, num in encoded])
    padded = np.pad(x, ((0, 0), (0, max(0, pad_to - x.shape[1]))))
    w, b, _ = fit_softmax(padded[train], y[train], num_classes, l2=1.0 / len(train),
                          max_iter=500)
    predicted = log_proba(padded[test], w, b).argmax(axis=-1)  # [K, n_test]
    logistic = (predicted == y[test].T).mean(axis=1)
    bayes = [GaussianNB().fit(x[train], y[train, k]).score(x[test], y[test, k])
             for k in range(y.shape[1])]
    return {"logistic": [float(a) for a in logistic], "naive_bayes": [float(a) for a in bayes]}


SCORES = ("total_correlation", "pairwise_mi", "infomec", "mig", "classifiers")


def score_representation(codes: np.ndarray, factors: np.ndarray, train: np.ndarray,
                         test: np.ndarray, num_bins: int = 20, seed: int = 0,
                         pad_to: int = 0, scores: Sequence[str] = SCORES) -> dict[str, Any]:
    """Scores of one representation restricted to one group of latents (``codes`` [n, g]).

    ``scores`` selects among: ``total_correlation`` (Gaussian TC, 0 for a single latent),
    ``pairwise_mi`` (mean pairwise MI, None for a single latent), ``infomec``
    (InfoM/InfoC/InfoE), ``mig`` and ``classifiers`` (test accuracy per factor, see
    :func:`classifier_accuracies`). Values that a metric cannot define on these codes are
    None, with the reason (and the metrics' own warnings) in ``notes``.
    """
    unknown = set(scores) - set(SCORES)
    if unknown:
        raise ValueError(f"unknown scores {sorted(unknown)}; accepted: {list(SCORES)}")
    notes: list[str] = []
    out: dict[str, Any] = {}

    def guarded(name: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (ValueError, ZeroDivisionError, np.linalg.LinAlgError, FloatingPointError) as e:
            notes.append(f"{name}: {e}")
            return None

    if "total_correlation" in scores:
        from metrics import gaussian_total_correlation

        # TC(z) = 0.5 * (sum_i log Cov_ii - log det Cov); a single latent has TC 0.
        tc_warnings: list[str] = []
        tc = guarded("gaussian_total_correlation",
                     lambda: gaussian_total_correlation(codes, warnings=tc_warnings))
        out["gaussian_total_correlation"] = None if tc is None else _finite_or_none(tc)
        notes += [f"gaussian_total_correlation: {w}" for w in tc_warnings]
    if "pairwise_mi" in scores:
        out["mean_pairwise_mi"] = guarded("mean_pairwise_mi",
                                          lambda: mean_pairwise_mi(codes, num_bins))
    if "infomec" in scores:
        from metrics import infomec

        info = guarded("infomec", lambda: infomec(codes, factors, seed=seed))
        for key in ("infom", "infoc", "infoe"):
            out[key] = None if info is None else _finite_or_none(info[key])
        if info is not None:
            notes += [f"infomec: {w}" for w in info.get("warnings", [])]
    if "mig" in scores:
        from metrics import mig

        result = guarded("mig", lambda: mig(codes, factors, num_bins=num_bins))
        out["mig"] = None if result is None else _finite_or_none(result["mig"])
        if result is not None:
            notes += [f"mig: {w}" for w in result.get("warnings", [])]
    if "classifiers" in scores:
        acc = classifier_accuracies(codes, factors, train, test, pad_to)
        for name, values in acc.items():
            out[f"{name}_accuracy"] = values
            out[f"{name}_accuracy_mean"] = float(np.mean(values))
    for key, value in out.items():
        if value is None and not any(n.startswith(key) for n in notes):
            notes.append(f"{key}: undefined for {codes.shape[1]} latent(s)")
    if notes:
        out["notes"] = notes
    return out


SCALAR_SCORES = ("gaussian_total_correlation", "mean_pairwise_mi", "infom", "infoc", "infoe",
                 "mig", "logistic_accuracy_mean", "naive_bayes_accuracy_mean")


def study(mean: np.ndarray, logvar: np.ndarray, factors: np.ndarray,
          rng: np.random.Generator, *, sampled: np.ndarray | None = None,
          var_threshold: float = 0.1, mean_tolerance: float = 0.1, num_bins: int = 20,
          test_fraction: float = 0.2, factor_names: Sequence[str] | None = None,
          scores: Sequence[str] = SCORES) -> dict[str, Any]:
    """Mean vs sampled representation on all / active / mixed / passive / non-passive latents.

    Args:
      mean: float [n, L] posterior means; logvar: float [n, L] posterior log-variances.
      factors: int [n, K] ground-truth factor classes of the same n inputs.
      rng: draws eps of the sampled representation (unless ``sampled`` is given), the
        train/test split of the classifiers and the seed of InfoMEC's kNN estimator.
      sampled: optional float [n, L] sampled representation mu + sigma * eps to reuse.
      test_fraction: share of the n inputs held out to score the classifiers.
      scores: which scores to compute (default all; see :func:`score_representation`).

    Returns a JSON-ready dict: ``latents`` (per-latent label, m_i, v_i, var mu_i), ``counts``
    of each label, and ``groups[g]`` for g in all/active/mixed/passive/non_passive with
    ``latents``
    (indices), ``size`` and, if the group is not empty, ``mean`` and ``sampled`` scores
    and ``gap`` (mean minus sampled) of the scalar scores. An empty group has
    ``empty: True`` and no scores.
    """
    mean, logvar = _check_pair(mean, logvar)
    factors = np.asarray(factors)
    if factors.ndim != 2 or factors.shape[0] != mean.shape[0]:
        raise ValueError(f"factors {factors.shape} must be [n, K] with n = {mean.shape[0]}")
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction={test_fraction} must be in (0, 1)")
    names = list(factor_names) if factor_names is not None else [
        f"factor_{k}" for k in range(factors.shape[1])]
    cls = classify(mean, logvar, var_threshold, mean_tolerance)
    if sampled is None:
        sampled = sampled_representation(mean, logvar, rng)
    elif np.shape(sampled) != mean.shape:
        raise ValueError(f"sampled {np.shape(sampled)} must have the shape of mean {mean.shape}")
    reps = {"mean": np.asarray(mean, np.float64), "sampled": np.asarray(sampled, np.float64)}
    n = mean.shape[0]
    order = rng.permutation(n)
    n_test = max(1, int(round(test_fraction * n)))
    test, train = np.sort(order[:n_test]), np.sort(order[n_test:])
    seed = int(rng.integers(2**31 - 1))

    groups: dict[str, Any] = {}
    for group, idx in groups_of(cls["labels"]).items():
        entry: dict[str, Any] = {"latents": idx.tolist(), "size": int(idx.size)}
        if idx.size == 0:
            entry["empty"] = True
            groups[group] = entry
            continue
        entry["empty"] = False
        for rep_name, codes in reps.items():
            entry[rep_name] = score_representation(codes[:, idx], factors, train, test,
                                                   num_bins, seed, pad_to=mean.shape[1],
                                                   scores=scores)
        entry["gap"] = {
            key: entry["mean"][key] - entry["sampled"][key]
            for key in SCALAR_SCORES
            if entry["mean"].get(key) is not None and entry["sampled"].get(key) is not None}
        groups[group] = entry

    labels = cls["labels"]
    return {
        "settings": {"var_threshold": var_threshold, "mean_tolerance": mean_tolerance,
                     "num_samples": int(n), "num_test": int(n_test), "num_bins": num_bins,
                     "classifiers": "multinomial logistic regression (L-BFGS, C=1) and "
                                    "Gaussian naive Bayes on standardised latents, "
                                    f"{1 - test_fraction:.0%}/{test_fraction:.0%} split",
                     "factor_names": names, "scores": list(scores)},
        "latents": {"labels": labels.tolist(),
                    "posterior_variance_mean": cls["posterior_variance_mean"].tolist(),
                    "posterior_variance_var": cls["posterior_variance_var"].tolist(),
                    "mean_variance": cls["mean_variance"].tolist()},
        "counts": {name: int(np.sum(labels == name)) for name in (ACTIVE, MIXED, PASSIVE)},
        "groups": groups,
    }
