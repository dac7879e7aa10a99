"""Unsupervised Disentanglement Ranking (Duan, Matthey, Saraiva, Watters, Burgess,
Lerchner, Higgins, "Unsupervised Model Selection for Variational Disentangled
Representation Learning", ICLR 2020), as computed by disentanglement_lib's ``udr_sklearn``.

UDR scores a set of M runs (different seeds or hyperparameters) by how similar their
representations of the same inputs are, up to permutation, sign and scale of the latents.
Each representation ``z_m [n, L_m]`` is standardised per latent; latents whose mean KL to
the prior is <= ``kl_threshold`` (0.01) are uninformative: zeroed and left out. For an
ordered pair (a, b) a similarity matrix ``R [L_a, L_b] >= 0`` is formed,

* ``spearman``: ``R_ij = |Spearman rho(z_a[:, i], z_b[:, j])|``;
* ``lasso``: ``R = |W|`` with ``W = argmin (1/2n) ||z_b - z_a W||^2 + alpha ||W||_1``
  (``alpha = 0.1``, one Lasso per latent of b, as ``sklearn.linear_model.Lasso``),

restricted to the informative rows and columns, and scored by relative strength:

    UDR_ab = ( mean_j max_i R_ij^2 / sum_i R_ij  +  mean_i max_j R_ij^2 / sum_j R_ij ) / 2

(a column or row summing to 0 scores 0). The paper writes the outer average as
``1/(d_a + d_b) (sum_j ... + sum_i ...)``; disentanglement_lib's (and this) average of the
two means differs from it only when the numbers of informative latents differ. A run's UDR
is the median of ``UDR_ab`` over the other runs a (it is b, the regression target).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import rankdata

from metrics import register_run_set_metric
from metrics._common import MetricInputError, check_codes


def standardize(z: np.ndarray) -> np.ndarray:
    """Zero-mean, unit-variance columns of ``[n, L]``; constant columns become 0."""
    centred = z - z.mean(axis=0)
    std = z.std(axis=0)
    return centred / np.where(std > 0, std, 1.0)


def spearman_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[L_a, L_b]`` absolute Spearman correlations (average ranks for ties); a constant
    column correlates 0 with everything."""
    ra, rb = standardize(rankdata(a, axis=0)), standardize(rankdata(b, axis=0))
    return np.abs(ra.T @ rb) / a.shape[0]  # Pearson correlation of the ranks


def lasso_matrix(a: np.ndarray, b: np.ndarray, alpha: float = 0.1, tol: float = 1e-10,
                 max_sweeps: int = 10_000) -> np.ndarray:
    """``[L_a, L_b]`` ``|W|`` of the Lasso ``min_W (1/2n)||b - a W||^2 + alpha ||W||_1``.

    ``a [n, L_a]`` and ``b [n, L_b]`` must be centred (standardised), so no intercept is
    needed. Cyclic coordinate descent on the Gram matrix ``G = a^T a / n``, all targets at
    once: ``W_i <- S(c_i - G_i W + G_ii W_i, alpha) / G_ii`` with ``c = a^T b / n`` and
    ``S(x, t) = sign(x) max(|x| - t, 0)``, until no coefficient moves more than ``tol``.
    """
    n = a.shape[0]
    gram, cross = a.T @ a / n, a.T @ b / n
    w = np.zeros((a.shape[1], b.shape[1]))
    diag = np.diag(gram)
    for _ in range(max_sweeps):
        largest = 0.0
        for i in np.flatnonzero(diag > 0):
            rho = cross[i] - gram[i] @ w + diag[i] * w[i]
            new = np.sign(rho) * np.maximum(np.abs(rho) - alpha, 0.0) / diag[i]
            largest = max(largest, float(np.max(np.abs(new - w[i]))))
            w[i] = new
        if largest < tol:
            break
    return np.abs(w)


CORRELATIONS: dict[str, Callable[..., np.ndarray]] = {
    "spearman": lambda a, b, alpha: spearman_matrix(a, b),
    "lasso": lambda a, b, alpha: lasso_matrix(a, b, alpha),
}


def relative_strength(r: np.ndarray) -> float:
    """``(mean_j max_i r_ij^2 / sum_i r_ij + mean_i max_j r_ij^2 / sum_j r_ij) / 2`` for
    ``r [L_a, L_b] >= 0``; an all-zero column or row contributes 0."""

    def side(m):  # one term per column of m
        total = m.sum(axis=0)
        return np.mean(np.where(total > 0, m.max(axis=0) ** 2 / np.where(total > 0, total, 1),
                                0.0))

    return float((side(r) + side(r.T)) / 2)


def informative_masks(reps: list[np.ndarray], kl, informative,
                      kl_threshold: float) -> list[np.ndarray]:
    """Per run, bool ``[L_m]``: ``kl > kl_threshold``, or the given masks, or all latents."""
    if kl is not None and informative is not None:
        raise MetricInputError("udr: give kl or informative, not both")
    given, what = (kl, "kl") if kl is not None else (informative, "informative")
    if given is None:
        return [np.ones(z.shape[1], bool) for z in reps]
    if len(given) != len(reps):
        raise MetricInputError(f"udr: {len(given)} {what} vectors for {len(reps)} runs")
    masks = []
    for m, (z, g) in enumerate(zip(reps, given)):
        g = np.asarray(g)
        if g.shape != (z.shape[1],):
            raise MetricInputError(f"udr: {what}[{m}] has shape {g.shape}; run {m} has "
                                   f"{z.shape[1]} latents, so ({z.shape[1]},) is expected")
        masks.append(g > kl_threshold if kl is not None else g.astype(bool))
    return masks


@register_run_set_metric("udr")
def udr(representations: Sequence[np.ndarray], kl: Sequence[np.ndarray] | None = None,
        informative: Sequence[np.ndarray] | None = None, correlation: str = "spearman",
        kl_threshold: float = 0.01, lasso_alpha: float = 0.1) -> dict:
    """UDR of M runs from their representations of the same n inputs.

    Args:
      representations: M arrays ``[n, L_m]`` (row i of every array encodes the same input).
      kl: optional M vectors ``[L_m]``, each latent's mean KL to the prior; latents with
        ``kl <= kl_threshold`` are uninformative.
      informative: optional M bool masks ``[L_m]`` instead of ``kl`` (e.g. an activity mask).
        Neither given: every latent counts.
      correlation: ``"spearman"`` or ``"lasso"`` (alpha ``lasso_alpha``).
    Returns:
      ``{"udr": [M] per-run scores (median over the other runs), "udr_pairwise": [M, M]
      (UDR_ab, diagonal NaN: undefined), "udr_informative": M bool masks, "warnings": list}``.
    """
    if correlation not in CORRELATIONS:
        raise MetricInputError(f"udr: correlation={correlation!r}; accepted: "
                               f"{', '.join(map(repr, CORRELATIONS))}")
    if len(representations) < 2:
        raise MetricInputError(f"udr needs the representations of at least 2 runs, got "
                               f"{len(representations)}")
    reps = [check_codes(z, f"representations[{m}]").astype(np.float64)
            for m, z in enumerate(representations)]
    rows = {z.shape[0] for z in reps}
    if len(rows) > 1:
        raise MetricInputError(f"udr: the runs' representations have {sorted(rows)} rows; "
                               "they must encode the same inputs (same n)")
    masks = informative_masks(reps, kl, informative, kl_threshold)
    warnings = [f"run {m} has no informative latent: its pairs score 0"
                for m, mask in enumerate(masks) if not mask.any()]
    reps = [standardize(z) * mask for z, mask in zip(reps, masks)]
    num = len(reps)
    pairwise = np.full((num, num), np.nan)
    for a in range(num):
        for b in range(num):
            if a != b:
                r = CORRELATIONS[correlation](reps[a], reps[b], lasso_alpha)
                r = r[masks[a]][:, masks[b]]
                pairwise[a, b] = relative_strength(r) if r.size else 0.0
    scores = np.array([np.median(np.delete(pairwise[:, b], b)) for b in range(num)])
    return {"udr": scores, "udr_pairwise": pairwise, "udr_informative": masks,
            "warnings": warnings}
