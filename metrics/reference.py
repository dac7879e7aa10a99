"""Plain scikit-learn reference implementations of the published metric definitions.

Straight transcriptions of the definitions (PAPERS.md; the InfoMEC authors' code and
disentanglement_lib) with scikit-learn's estimators, one estimator per (factor) or
(latent, factor) pair, no shortcuts. The tests check :mod:`metrics` against them and
``benchmarks/metrics.py`` times them. Deliberate, documented choices shared with
:mod:`metrics`: a fixed seed for the k-NN jitter, logistic regressions fitted to
convergence (large ``max_iter``), the same fixed-seed train/test split, and the same
conventions for degenerate slices (an all-zero NMI row/column counts as the floor).

scikit-learn is imported inside the functions: it is a dev dependency, and importing this
module (the metric registry imports every module of the package) must not need it.
"""

from __future__ import annotations

import warnings as _warnings

import numpy as np

from metrics._common import histogram_discretize, train_test


def _encode(factors):
    from sklearn.preprocessing import LabelEncoder

    return np.stack([LabelEncoder().fit_transform(factors[:, i])
                     for i in range(factors.shape[1])], axis=1)


def infomec_reference(codes, factors, discrete_latents: bool | None = None, seed: int = 0,
                      max_iter: int = 5000) -> dict:
    """InfoM, InfoE, InfoC with ``mutual_info_classif`` / ``mutual_info_score`` /
    ``LogisticRegression(C=inf, class_weight="balanced")`` + unweighted ``log_loss``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.feature_selection import mutual_info_classif
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, mutual_info_score
    from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

    codes, factors = np.asarray(codes), _encode(np.asarray(factors))
    if discrete_latents is None:
        discrete_latents = np.issubdtype(codes.dtype, np.integer)
    num_k, num_l = factors.shape[1], codes.shape[1]
    if discrete_latents:
        z = np.stack([LabelEncoder().fit_transform(codes[:, j]) for j in range(num_l)], 1)
    else:
        z = StandardScaler().fit_transform(codes.astype(np.float64))
    nmi = np.zeros((num_k, num_l))
    for i in range(num_k):
        for j in range(num_l):
            if discrete_latents:
                nmi[i, j] = mutual_info_score(factors[:, i], z[:, j])
            else:
                nmi[i, j] = mutual_info_classif(z[:, j:j + 1], factors[:, i],
                                                n_neighbors=10, random_state=seed)[0]
        nmi[i] /= mutual_info_score(factors[:, i], factors[:, i])
    ranges = codes.max(0).astype(np.float64) - codes.min(0)
    active = ranges > 0 if discrete_latents else ranges > ranges.max() / 20
    pruned = nmi[:, active]
    num_a = int(active.sum())

    def ratio(axis, floor):
        total = pruned.sum(axis=axis)
        return np.where(total > 0, pruned.max(axis=axis) / np.where(total > 0, total, 1), floor)

    infom = (np.mean(ratio(0, 1 / num_k)) - 1 / num_k) / (1 - 1 / num_k)
    infoc = (np.mean(ratio(1, 1 / num_a)) - 1 / num_a) / (1 - 1 / num_a)
    if discrete_latents:
        x = OneHotEncoder(sparse_output=False).fit_transform(codes)
    else:
        x = StandardScaler().fit_transform(codes.astype(np.float64))
    def fitted_log_loss(inputs, labels):
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", ConvergenceWarning)
            model = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=max_iter,
                                       tol=1e-6).fit(inputs, labels)
        return log_loss(labels, model.predict_proba(inputs))

    per_factor = []
    for i in range(num_k):
        ce = fitted_log_loss(x, factors[:, i])
        h = fitted_log_loss(np.zeros_like(x), factors[:, i])
        per_factor.append((h - ce) / h)
    return {"infom": float(infom), "infoe": float(np.mean(per_factor)), "infoc": float(infoc),
            "nmi": nmi, "active": active}


def mig_reference(codes, factors, num_bins: int = 20) -> dict:
    """disentanglement_lib's MIG with ``np.histogram`` bins and ``mutual_info_score``."""
    from sklearn.metrics import mutual_info_score

    binned = histogram_discretize(np.asarray(codes), num_bins)
    factors = np.asarray(factors)
    m = np.array([[mutual_info_score(factors[:, k], binned[:, j])
                   for k in range(factors.shape[1])] for j in range(binned.shape[1])])
    entropy = np.array([mutual_info_score(factors[:, k], factors[:, k])
                        for k in range(factors.shape[1])])
    top = np.sort(m, axis=0)[::-1]
    return {"mig": float(np.mean((top[0] - top[1]) / entropy))}


def _split(codes, factors, codes_test, factors_test, seed=0, test_fraction=0.2):
    x, y, x_test, y_test, _ = train_test(codes, factors, codes_test, factors_test,
                                         test_fraction, seed)
    return x.astype(np.float64), y, x_test.astype(np.float64), y_test


def _entropy_score(matrix):
    from scipy.stats import entropy

    per = 1.0 - entropy(matrix.T + 1e-11, base=matrix.shape[1])
    weights = matrix if matrix.sum() > 0 else np.ones_like(matrix)
    return float(np.sum(per * weights.sum(axis=1) / weights.sum()))


def dci_reference(codes, factors, codes_test=None, factors_test=None, seed: int = 0) -> dict:
    """disentanglement_lib's DCI with ``GradientBoostingClassifier()`` per factor."""
    from sklearn.ensemble import GradientBoostingClassifier

    x, y, x_test, y_test = _split(codes, factors, codes_test, factors_test, seed)
    importance = np.zeros((x.shape[1], y.shape[1]))
    acc = []
    for k in range(y.shape[1]):
        model = GradientBoostingClassifier(random_state=seed).fit(x, y[:, k])
        importance[:, k] = np.abs(model.feature_importances_)
        acc.append(np.mean(model.predict(x_test) == y_test[:, k]))
    return {"disentanglement": _entropy_score(importance),
            "completeness": _entropy_score(importance.T), "informativeness": float(np.mean(acc)),
            "importance": importance}


def sap_reference(codes, factors, codes_test=None, factors_test=None, seed: int = 0) -> dict:
    """disentanglement_lib's SAP with ``LinearSVC(C=0.01, class_weight="balanced")``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    x, y, x_test, y_test = _split(codes, factors, codes_test, factors_test, seed)
    matrix = np.zeros((x.shape[1], y.shape[1]))
    for j in range(x.shape[1]):
        for k in range(y.shape[1]):
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore", ConvergenceWarning)
                model = LinearSVC(C=0.01, class_weight="balanced").fit(x[:, j:j + 1], y[:, k])
            matrix[j, k] = np.mean(model.predict(x_test[:, j:j + 1]) == y_test[:, k])
    top = np.sort(matrix, axis=0)[::-1]
    return {"sap": float(np.mean(top[0] - top[1])), "sap_matrix": matrix}


def modularity_explicitness_reference(codes, factors, codes_test=None, factors_test=None,
                                      seed: int = 0) -> dict:
    """disentanglement_lib's modularity (20-bin MI) and explicitness (``LogisticRegression()``
    + ``roc_auc_score`` per class)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import mutual_info_score, roc_auc_score

    x, y, x_test, y_test = _split(codes, factors, codes_test, factors_test, seed)
    binned = histogram_discretize(x, 20)
    mi = np.array([[mutual_info_score(y[:, k], binned[:, j]) for k in range(y.shape[1])]
                   for j in range(x.shape[1])])
    sq = np.square(mi)
    peak = sq.max(axis=1)
    delta = (sq.sum(axis=1) - peak) / (peak * (sq.shape[1] - 1.0))
    modularity = np.where(peak == 0, 0.0, 1.0 - delta)
    mean, std = x.mean(0), x.std(0)
    xn, xn_test = (x - mean) / std, (x_test - mean) / std
    aucs = []
    for k in range(y.shape[1]):
        model = LogisticRegression(max_iter=5000, tol=1e-8).fit(xn, y[:, k])
        proba = model.predict_proba(xn_test)
        present = [c for c in range(proba.shape[1]) if 0 < np.sum(y_test[:, k] == c) < len(y_test)]
        aucs.append(np.mean([roc_auc_score(y_test[:, k] == c, proba[:, c]) for c in present]))
    return {"modularity": float(np.mean(modularity)), "explicitness": float(np.mean(aucs))}


def _linear_quantile(values, q):
    """The q-quantile of a 1-D sample by linear interpolation between order statistics."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (pos - lo) * (ordered[hi] - ordered[lo])


def irs_reference(codes, factors, diff_quantile: float = 0.99, num_bins: int | None = 20) -> dict:
    """IRS (Suter et al. 2019) as disentanglement_lib, one (latent, factor, value) at a time.

    Factors binned by ``np.histogram`` edges (``num_bins``), constant factors and constant
    latents left out; ``EMPIDA_jk`` = mean over the values v of g_k of the q-quantile of
    ``|z_j - mean(z_j | g_k = v)|``; ``IRS = sum_j maxdev_j max_k (1 - EMPIDA_jk / maxdev_j)
    / sum_j maxdev_j``.
    """
    codes = np.asarray(codes, dtype=np.float64).reshape(len(codes), -1)
    factors = np.asarray(factors).reshape(len(factors), -1)
    groups = []
    for k in range(factors.shape[1]):
        column = factors[:, k]
        if len(set(column.tolist())) < 2:
            continue
        if num_bins is not None:
            edges = np.histogram(column, bins=num_bins)[1]
            column = np.digitize(column, edges[:-1])
        groups.append(column)
    weights, scores = [], []
    for j in range(codes.shape[1]):
        z = codes[:, j]
        centre = z.mean()
        max_dev = max(abs(v - centre) for v in z)
        if z.var() == 0:
            continue
        best = -np.inf
        for g in groups:
            deviations = []
            for value in sorted(set(g.tolist())):
                zs = z[g == value]
                deviations.append(_linear_quantile(np.abs(zs - zs.mean()), diff_quantile))
            best = max(best, 1.0 - np.mean(deviations) / max_dev)
        weights.append(max_dev)
        scores.append(best)
    if not weights:
        return {"irs": 0.0, "irs_per_latent": np.zeros(0)}
    return {"irs": float(np.dot(weights, scores) / np.sum(weights)),
            "irs_per_latent": np.asarray(scores)}


def _relative_strength_reference(r):
    """Mean over columns of max^2/sum and over rows of max^2/sum, averaged; 0 if the sum is 0."""
    def mean_over(lines):
        terms = [max(line) ** 2 / sum(line) if sum(line) > 0 else 0.0 for line in lines]
        return sum(terms) / len(terms)

    return (mean_over(r.T.tolist()) + mean_over(r.tolist())) / 2


def udr_reference(representations, kl=None, correlation: str = "spearman",
                  kl_threshold: float = 0.01, lasso_alpha: float = 0.1) -> dict:
    """UDR as disentanglement_lib's ``udr_sklearn``: ``StandardScaler`` per run, latents
    with KL <= threshold zeroed and left out, ``scipy.stats.spearmanr`` per latent pair or
    ``sklearn.linear_model.Lasso(alpha)`` from run a to run b, relative strength per ordered
    pair, median over the other runs (a run is the target b)."""
    from scipy.stats import spearmanr
    from sklearn.linear_model import Lasso
    from sklearn.preprocessing import StandardScaler

    reps = [StandardScaler().fit_transform(np.asarray(z, dtype=np.float64))
            for z in representations]
    masks = [np.ones(z.shape[1], bool) if kl is None else np.asarray(kl[m]) > kl_threshold
             for m, z in enumerate(reps)]
    reps = [z * mask for z, mask in zip(reps, masks)]
    num = len(reps)
    pairwise = np.full((num, num), np.nan)
    for a in range(num):
        for b in range(num):
            if a == b:
                continue
            la, lb = np.flatnonzero(masks[a]), np.flatnonzero(masks[b])
            if correlation == "lasso":
                coef = Lasso(alpha=lasso_alpha, tol=1e-10, max_iter=100_000).fit(
                    reps[a], reps[b]).coef_.reshape(reps[b].shape[1], -1)
                r = np.abs(coef.T)
            else:
                r = np.zeros((reps[a].shape[1], reps[b].shape[1]))
                for i in la:
                    for j in lb:
                        r[i, j] = abs(spearmanr(reps[a][:, i], reps[b][:, j])[0])
            r = r[np.ix_(la, lb)]
            pairwise[a, b] = _relative_strength_reference(r) if r.size else 0.0
    scores = [float(np.median([pairwise[a, b] for a in range(num) if a != b]))
              for b in range(num)]
    return {"udr": np.asarray(scores), "udr_pairwise": pairwise}
