"""InfoMEC: InfoM (modularity), InfoE (explicitness), InfoC (compactness).

Hsu, Dorrell, Whittington, Wu, Finn, "Disentanglement via Latent Quantization",
NeurIPS 2023 (formulas as gathered in /work/shared/PAPERS.md and the authors' public code).

With sources (factors) s_i, i < K, and latents z_j, j < L:

* ``NMI_ij = I(s_i; z_j) / H(s_i)`` in nats. Discrete latents: plug-in MI of the
  label-encoded values. Continuous latents: the k-nearest-neighbour continuous-discrete
  estimator of Ross (2014), "Mutual information between discrete and continuous data sets"
  (what ``sklearn.feature_selection.mutual_info_classif`` computes), k = 10 on standardised
  latents, with sklearn's 1e-10 tie-breaking jitter drawn from a seeded generator.
* Active latents: range > 0 (discrete), range > max_j range_j / 20 (continuous).
* ``InfoM = (mean_j [max_i NMI_ij / sum_i NMI_ij] - 1/K) / (1 - 1/K)`` over active j.
* ``InfoC = (mean_i [max_j NMI_ij / sum_j NMI_ij] - 1/L_a) / (1 - 1/L_a)`` over active j.
* ``InfoE = mean_i (H_i - CE_i) / H_i``: CE_i is the log loss of an unpenalised multinomial
  logistic regression with balanced class weights from all latents (one-hot for discrete,
  standardised for continuous) to s_i, on the training data; H_i is the log loss of the same
  fit on all-zero inputs. By default (as the authors' code: ``sklearn.metrics.log_loss``
  without sample weights) the log loss is the plain, *unweighted* mean over samples; the
  zero-input balanced fit predicts the uniform distribution, so ``H_i = log C_i``.
  ``weighted_log_loss=True`` weights both by the balanced class weights instead (then too
  ``H_i = log C_i``). Unlike the authors' ``max_iter=100`` the fit runs to convergence
  (L-BFGS-B, then Newton-CG for the slow dense fits; on one-hot codes L-BFGS-B on
  Kronecker-preconditioned coordinates; gradient max-norm < ``tol``).

The 1-D structure of each latent makes the k-NN estimator a matter of sorting: within a
class the k nearest neighbours of a point are a window of k+1 consecutive sorted values
containing it, and the count of all points closer than that radius is two ``searchsorted``.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.special import digamma

from metrics import register_metric
from metrics._common import (
    contingency,
    is_discrete,
    label_encode,
    mutual_info_from_counts,
    prepare,
)
from metrics._linear import fit_softmax, log_proba, one_hot_columns, standardize
from metrics._threads import thread_map


@functools.lru_cache(maxsize=4)
def _digamma_table(n: int) -> np.ndarray:
    """``digamma(0..n)`` (read-only; entry 0 is -inf, never used)."""
    with np.errstate(divide="ignore"):
        table = digamma(np.arange(n + 1, dtype=np.float64))
    table.flags.writeable = False
    return table


def knn_mutual_info(latent: np.ndarray, labels: np.ndarray, n_neighbors: int = 10,
                    value_order: np.ndarray | None = None) -> float:
    """Ross (2014) k-NN estimate of ``I(z; s)`` (nats) for a 1-D continuous ``latent [n]``.

    ``I = psi(N) + <psi(k_i)> - <psi(N_{s_i})> - <psi(m_i)>``, where k_i = min(k, N_s - 1),
    d_i is the distance to the k_i-th nearest neighbour of the same class, and m_i counts all
    points (self included) closer than d_i. Points alone in their class are ignored; the
    result is clipped at 0 (as sklearn). ``value_order``: ``np.argsort(latent,
    kind="stable")`` when the caller has it (one sort per latent for all factors).
    """
    labels = np.asarray(labels)
    if not (np.issubdtype(labels.dtype, np.integer) and len(labels)
            and 0 <= labels.min() and labels.max() < 4 * len(labels)):
        labels = label_encode(labels)[0]  # else empty classes are harmless
    counts = np.bincount(labels)
    label_counts = counts[labels]
    keep = label_counts > 1
    if keep.sum() < 2:
        return 0.0
    c, y, label_counts = latent[keep], labels[keep], label_counts[keep]
    n = c.shape[0]
    counts = np.bincount(y, minlength=counts.shape[0])
    if value_order is None:
        value_order = np.argsort(latent, kind="stable")
    if not keep.all():  # the kept points' indices among the kept, in value order
        value_order = (np.cumsum(keep) - 1)[value_order[keep[value_order]]]
    everything = c[value_order]  # all kept values, sorted
    # by class, then value (ties by index, as np.lexsort((c, y))): a stable sort of the
    # value-ordered labels (radix sort for 16-bit labels)
    small = y.astype(np.int16) if counts.shape[0] <= np.iinfo(np.int16).max else y
    order = value_order[np.argsort(small[value_order], kind="stable")]
    cs, ys = c[order], y[order]
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    seg_start = starts[ys]
    seg_last = seg_start + counts[ys] - 1
    kk = np.minimum(n_neighbors, counts[ys] - 1)
    pos = np.arange(n)
    radius = np.full(n, np.inf)
    for a in range(int(kk.max()) + 1):
        # window [s, s + k] of k+1 consecutive same-class values containing pos
        s = pos - kk + a
        valid = (a <= kk) & (s >= seg_start) & (s + kk <= seg_last)
        lo = cs[np.clip(s, 0, n - 1)]
        hi = cs[np.clip(s + kk, 0, n - 1)]
        radius = np.where(valid, np.minimum(radius, np.maximum(cs - lo, hi - cs)), radius)
    # m_i = #{j : |c_j - c_i| < d_i}, self included (sklearn: radius nextafter(d, 0), <=)
    hi = np.searchsorted(everything, cs + radius, "left")  # first index with v >= c + d
    lo = np.searchsorted(everything, cs - radius, "right")  # first index with v > c - d
    # c +- d rounds; fix the boundary by comparing distances computed as differences, the
    # way d itself was computed (the k-th neighbour, at distance exactly d, is excluded)
    for _ in range(2):
        hi = np.where((hi > 0) & (everything[np.maximum(hi - 1, 0)] - cs >= radius), hi - 1, hi)
        hi = np.where((hi < n) & (everything[np.minimum(hi, n - 1)] - cs < radius), hi + 1, hi)
        lo = np.where((lo < n) & (cs - everything[np.minimum(lo, n - 1)] >= radius), lo + 1, lo)
        lo = np.where((lo > 0) & (cs - everything[np.maximum(lo - 1, 0)] < radius), lo - 1, lo)
    m = np.maximum(hi - lo, 1)
    psi = _digamma_table(n)  # every argument is an integer in [1, n]
    mi = psi[n] + np.mean(psi[kk]) - np.mean(psi[label_counts]) - np.mean(psi[m])
    return max(float(mi), 0.0)


def _jitter(codes: np.ndarray, seed: int) -> np.ndarray:
    """sklearn's tie-breaking noise ``+ 1e-10 * max(1, mean|z|) * N(0, 1)``, drawn per latent
    from ``RandomState(seed)`` exactly as ``mutual_info_classif(z[:, j:j+1], ...,
    random_state=seed)`` draws it, so both break ties alike."""
    scale = np.maximum(1.0, np.mean(np.abs(codes), axis=0))
    noise = np.stack([np.random.RandomState(seed).standard_normal(codes.shape[0])
                      for _ in range(codes.shape[1])], axis=1)
    return codes + 1e-10 * scale * noise


def nmi_matrix(codes: np.ndarray, factors: np.ndarray, discrete: np.ndarray,
               n_neighbors: int = 10, seed: int = 0) -> np.ndarray:
    """``NMI [K, L] = I(s_i; z_j) / H(s_i)`` for label-encoded ``factors [n, K]``."""
    num_k, num_l = factors.shape[1], codes.shape[1]
    out = np.zeros((num_k, num_l))
    continuous = ~discrete
    if continuous.any():
        z = _jitter(standardize(codes[:, continuous].astype(np.float64)), seed)
    enc = {j: label_encode(codes[:, j]) for j in np.flatnonzero(discrete)}
    orders = [np.argsort(z[:, col], kind="stable") for col in range(int(continuous.sum()))]
    for i in range(num_k):
        s, num_s = label_encode(factors[:, i])
        h = mutual_info_from_counts(contingency(s, s, num_s, num_s))  # H(s_i) = I(s_i; s_i)
        for col, j in enumerate(np.flatnonzero(continuous)):
            out[i, j] = knn_mutual_info(z[:, col], s, n_neighbors, orders[col])
        for j, (zl, num_z) in enc.items():
            out[i, j] = mutual_info_from_counts(contingency(s, zl, num_s, num_z))
        out[i] /= h
    return out


def active_latents(codes: np.ndarray, discrete: np.ndarray) -> np.ndarray:
    """Range > 0 for discrete latents, > max continuous range / 20 for continuous ones."""
    ranges = codes.max(axis=0).astype(np.float64) - codes.min(axis=0)
    active = ranges > 0
    if (~discrete).any():
        threshold = ranges[~discrete].max() / 20.0
        active = np.where(discrete, active, ranges > threshold)
    return active


def _ratio_mean(nmi: np.ndarray, axis: int, floor: float, what: str, warnings: list) -> float:
    """``mean [max NMI / sum NMI]`` along ``axis``; an all-zero slice counts as ``floor``."""
    total = nmi.sum(axis=axis)
    zero = total <= 0
    if zero.any():
        warnings.append(f"{int(zero.sum())} {what} carry no information; they count as the floor")
    ratio = np.where(zero, floor, nmi.max(axis=axis) / np.where(zero, 1.0, total))
    return float(ratio.mean())


# InfoE's gradient tolerance. On the benchmark fixtures (10,000 samples) 3e-5 against 1e-5
# moves InfoE by at most 1.0e-5 and a factor's term by 5.0e-5 (synthetic codes; InfoE by
# <= 4.1e-7 and a term by <= 2.1e-6 on the others), and InfoMEC takes 0.69 instead of 1.06 s
# on the QLAE codes (its slowest factor takes 279 iterations at either tolerance):
# benchmarks/results/metrics_infoe_tol.json.
INFOE_TOL = 3e-5


def infoe_features(codes: np.ndarray, discrete: np.ndarray) -> np.ndarray:
    """Inputs of the InfoE regressions: one-hot discrete latents, standardised continuous."""
    parts = []
    if discrete.any():
        parts.append(one_hot_columns(codes[:, discrete]))
    if (~discrete).any():
        parts.append(standardize(codes[:, ~discrete].astype(np.float64)))
    return np.concatenate(parts, axis=1)


def infoe(codes: np.ndarray, factors: np.ndarray, num_classes: np.ndarray,
          discrete: np.ndarray, weighted_log_loss: bool = False, tol: float = INFOE_TOL,
          max_iter: int = 2000) -> tuple[float, np.ndarray]:
    """``InfoE`` and the per-factor ``(H_i - CE_i) / H_i`` for label-encoded ``factors``."""
    x = infoe_features(codes, discrete)
    w, b, _ = fit_softmax(x, factors, num_classes, balanced=True, tol=tol, max_iter=max_iter)
    n = x.shape[0]

    def information(i):  # (H_i - CE_i) / H_i of factor i
        ce = -log_proba(x, w[i:i + 1], b[i:i + 1])[0, np.arange(n), factors[:, i]]
        if weighted_log_loss:
            counts = np.bincount(factors[:, i], minlength=num_classes[i])
            weight = (n / (num_classes[i] * counts))[factors[:, i]]
            ce_i = float(np.sum(weight * ce) / np.sum(weight))
        else:
            ce_i = float(np.mean(ce))
        h_i = float(np.log(num_classes[i]))  # log loss of the zero-input (uniform) fit
        return (h_i - ce_i) / h_i

    order = np.argsort(-np.asarray(num_classes), kind="stable")
    per_factor = np.empty(factors.shape[1])
    per_factor[order] = thread_map(information, order.tolist())
    return float(per_factor.mean()), per_factor


@register_metric("infomec")
def infomec(codes, factors, discrete_latents=None, *, n_neighbors: int = 10, seed: int = 0,
            weighted_log_loss: bool = False, tol: float = INFOE_TOL, max_iter: int = 2000) -> dict:
    """InfoM, InfoE, InfoC of ``codes [n, L]`` against ``factors int [n, K]``.

    Args:
      codes: float or int ``[n, L]``; integer codes are discrete latents unless
        ``discrete_latents`` (bool or ``[L]`` bools) says otherwise.
      factors: int ``[n, K]``; single-valued factors are left out (with a warning).
      n_neighbors: k of the k-NN MI estimator for continuous latents.
      seed: seed of the tie-breaking jitter.
      weighted_log_loss: weight InfoE's log loss by balanced class weights (default: plain mean
        over samples, as the authors' code).
      tol, max_iter: the InfoE fits' L-BFGS-B gradient tolerance and iteration cap.
    Returns:
      ``{"infom", "infoe", "infoc": float, "nmi": [K, L] over all latents (inactive ones
      included; see "active"; rows of left-out single-valued factors are 0),
      "active": [L] bool, "infoe_per_factor": [K_used] (kept factors only),
      "warnings": list[str]}``.
    """
    factors_given = factors
    prep = prepare(codes, factors)
    codes, factors, warnings = prep.codes, prep.factors, prep.warnings
    discrete = is_discrete(codes, discrete_latents)
    nmi = nmi_matrix(codes, factors, discrete, n_neighbors, seed)
    active = active_latents(codes, discrete)
    num_k, num_active = factors.shape[1], int(active.sum())
    pruned = nmi[:, active]
    if num_active == 0:
        warnings.append("no active latent: InfoM and InfoC are 0")
        info_m = info_c = 0.0
    else:
        if num_k == 1:
            warnings.append("a single factor: InfoM is 1 by convention")
            info_m = 1.0
        else:
            m = _ratio_mean(pruned, 0, 1.0 / num_k, "active latents", warnings)
            info_m = (m - 1.0 / num_k) / (1.0 - 1.0 / num_k)
        if num_active == 1:
            warnings.append("a single active latent: InfoC is 1 by convention")
            info_c = 1.0
        else:
            c = _ratio_mean(pruned, 1, 1.0 / num_active, "factors", warnings)
            info_c = (c - 1.0 / num_active) / (1.0 - 1.0 / num_active)
    info_e, per_factor = infoe(codes, factors, prep.num_classes, discrete, weighted_log_loss,
                               tol, max_iter)
    num_given = np.asarray(factors_given).reshape(len(codes), -1).shape[1]
    nmi_all = np.zeros((num_given, nmi.shape[1]))  # rows of left-out factors stay zero
    nmi_all[prep.kept_factors] = nmi
    return {
        "infom": float(info_m),
        "infoe": info_e,
        "infoc": float(info_c),
        "nmi": nmi_all,
        "active": active,
        "infoe_per_factor": per_factor,
        "warnings": warnings,
    }
