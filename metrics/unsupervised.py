"""Unsupervised scores of a representation (no factors needed), as in disentanglement_lib
(Locatello et al., ICML 2019) and used by Bonheme & Grzes ("Be More Active!") to compare
active, mixed and passive variables.

* Gaussian total correlation of ``N(mu, Sigma)`` fitted to the codes:
  ``TC = 0.5 * (sum_j log Sigma_jj - log det Sigma)``.
* Gaussian Wasserstein correlation: the squared 2-Wasserstein distance between
  ``N(0, Sigma)`` and ``N(0, diag Sigma)``,
  ``GWC = 2 tr Sigma - 2 tr (Sigma diag Sigma)^{1/2}``; ``..._norm`` divides by ``tr Sigma``.
* Mutual information matrix ``[L, L]`` of the ``num_bins``-bin discretised latents
  (diagonal = entropies) and its mean off-diagonal value (``mutual_info_score``).

``Sigma`` is the sample covariance (ddof = 1). Constant latents are left out of TC and
GWC (they are independent of everything) and a singular covariance has its correlation
eigenvalues floored at 1e-10 so that TC stays finite; both are reported as warnings.
"""

from __future__ import annotations

import numpy as np

from metrics import register_metric
from metrics._common import check_codes, discrete_mutual_info, histogram_discretize

_EIG_FLOOR = 1e-10


def _covariance(codes: np.ndarray, warnings: list) -> np.ndarray:
    cov = np.atleast_2d(np.cov(codes.astype(np.float64), rowvar=False))
    constant = np.diag(cov) <= 0
    if constant.any():
        warnings.append(f"constant latents {np.flatnonzero(constant).tolist()} are left out")
        cov = cov[~constant][:, ~constant]
    return cov


def gaussian_total_correlation(codes, warnings: list | None = None) -> float:
    """``0.5 * (sum log diag Sigma - log det Sigma)`` of ``codes [n, L]`` (nats)."""
    warnings = [] if warnings is None else warnings
    cov = _covariance(check_codes(codes), warnings)
    if cov.shape[0] < 2:
        return 0.0
    std = np.sqrt(np.diag(cov))
    eig = np.linalg.eigvalsh(cov / np.outer(std, std))  # correlation matrix eigenvalues
    if eig.min() < _EIG_FLOOR:
        warnings.append("covariance is singular (linearly dependent latents); total "
                        f"correlation uses eigenvalues floored at {_EIG_FLOOR}")
    # log det Sigma = sum log Sigma_jj + log det(correlation)
    return float(-0.5 * np.sum(np.log(np.maximum(eig, _EIG_FLOOR))))


def gaussian_wasserstein_correlation(codes, normalize: bool = False,
                                     warnings: list | None = None) -> float:
    """``2 tr Sigma - 2 tr sqrt(Sigma diag Sigma)`` (divided by ``tr Sigma`` if normalize)."""
    warnings = [] if warnings is None else warnings
    cov = _covariance(check_codes(codes), warnings)
    if cov.shape[0] == 0:
        return 0.0
    std = np.sqrt(np.diag(cov))
    # Sigma diag(Sigma) is similar to D^1/2 Sigma D^1/2 (D = diag Sigma), which is symmetric
    eig = np.linalg.eigvalsh(cov * np.outer(std, std))
    gwc = 2.0 * np.trace(cov) - 2.0 * np.sum(np.sqrt(np.maximum(eig, 0.0)))
    return float(gwc / np.trace(cov)) if normalize else float(gwc)


def mutual_info_matrix(codes, num_bins: int = 20) -> np.ndarray:
    """``[L, L]`` plug-in MI (nats) between ``num_bins``-bin discretised latents."""
    binned = histogram_discretize(check_codes(codes), num_bins)
    return discrete_mutual_info(binned, binned)


def mean_pairwise_mutual_info(codes, num_bins: int = 20) -> float:
    """Mean of the off-diagonal entries of :func:`mutual_info_matrix` (0 for one latent)."""
    mi = mutual_info_matrix(codes, num_bins)
    num = mi.shape[0]
    if num < 2:
        return 0.0
    return float((mi.sum() - np.trace(mi)) / (num * num - num))


@register_metric("unsupervised")
def unsupervised(codes, factors=None, *, num_bins: int = 20) -> dict:
    """The unsupervised scores of ``codes [n, L]`` (``factors`` is ignored)."""
    warnings: list[str] = []
    codes = check_codes(codes)
    if codes.shape[1] < 2:
        warnings.append("a single latent: correlation scores are 0")
    return {
        "gaussian_total_correlation": gaussian_total_correlation(codes, warnings),
        "gaussian_wasserstein_correlation": gaussian_wasserstein_correlation(codes),
        "gaussian_wasserstein_correlation_norm": gaussian_wasserstein_correlation(codes, True),
        "mutual_info_score": mean_pairwise_mutual_info(codes, num_bins),
        "warnings": warnings,
    }
