"""Interventional Robustness Score (Suter, Miladinovic, Schoelkopf, Bauer, "Robustly
Disentangled Causal Mechanisms: Validating Deep Representations for Interventional
Robustness", ICML 2019), as computed by disentanglement_lib (Locatello et al., ICML 2019).

Factors are discretised like disentanglement_lib's (``num_bins`` equal-width
``np.histogram`` bins per factor; factors with at most ``num_bins`` values keep one bin per
value). Latents with zero variance are dropped. For latent j and factor k:

    EMPIDA_jk = mean_v  Q_q( |z_j - E[z_j | g_k = v]|  over samples with g_k = v )
    IRS_jk    = 1 - EMPIDA_jk / max_i |z_ij - mean(z_j)|

with ``Q_q`` the ``q = diff_quantile`` quantile (linear interpolation, ``np.percentile``;
``q = 1`` is the paper's maximum). A latent's score is ``max_k IRS_jk`` (its "parent" factor
is the argmax) and

    IRS = sum_j maxdev_j * max_k IRS_jk / sum_j maxdev_j

(weights = each latent's maximal deviation from its mean), in [0, 1].
"""

from __future__ import annotations

import numpy as np

from metrics import register_metric
from metrics._common import MetricInputError, histogram_discretize, prepare


def empida(codes: np.ndarray, factors: np.ndarray, diff_quantile: float = 0.99) -> np.ndarray:
    """``[L, K]`` EMPIDA: mean over the values of factor k of the ``diff_quantile`` quantile
    of ``|z_j - E[z_j | g_k]|`` within the samples holding that value.

    Args:
      codes: float ``[n, L]``.
      factors: int ``[n, K]`` (the groups; any integer labels).
    """
    out = np.zeros((codes.shape[1], factors.shape[1]))
    for k in range(factors.shape[1]):
        values, groups = np.unique(factors[:, k], return_inverse=True)
        groups = groups.reshape(-1)
        for v in range(len(values)):
            z = codes[groups == v]
            out[:, k] += np.percentile(np.abs(z - z.mean(axis=0)), 100 * diff_quantile, axis=0)
        out[:, k] /= len(values)
    return out


@register_metric("irs")
def irs(codes, factors, diff_quantile: float = 0.99, num_bins: int | None = 20) -> dict:
    """IRS of ``codes [n, L]`` against ``factors int [n, K]``.

    Args:
      diff_quantile: quantile of the within-group deviations (1.0: the paper's maximum).
      num_bins: factor discretisation as disentanglement_lib (None: each value its own group).
    Returns:
      ``{"irs": float, "irs_per_latent": [L], "irs_matrix": [L, K_used], "irs_parents": [L]
      (factor index, -1 for dropped latents), "irs_num_active": int, "warnings": list}``;
      dropped (constant) latents score 0 and weigh 0.
    """
    prep = prepare(codes, factors)
    if not 0.0 < diff_quantile <= 1.0:
        raise MetricInputError(f"irs: diff_quantile={diff_quantile}; accepted: 0 < q <= 1")
    z = prep.codes.astype(np.float64)
    raw = np.asarray(factors)
    raw = (raw[:, None] if raw.ndim == 1 else raw)[:, prep.kept_factors]
    groups = raw if num_bins is None else histogram_discretize(raw, num_bins)
    num_l = z.shape[1]
    active = z.var(axis=0) > 0
    if not active.all():
        prep.warnings.append(f"latents {np.flatnonzero(~active).tolist()} are constant: "
                             "left out (score 0, weight 0)")
    matrix = np.zeros((num_l, len(prep.kept_factors)))
    per_latent = np.zeros(num_l)
    parents = np.full(num_l, -1)
    if not active.any():
        prep.warnings.append("every latent is constant: IRS is 0")
        return {"irs": 0.0, "irs_per_latent": per_latent, "irs_matrix": matrix,
                "irs_parents": parents, "irs_num_active": 0, "warnings": prep.warnings}
    za = z[:, active]
    max_dev = np.max(np.abs(za - za.mean(axis=0)), axis=0)  # [L_active]
    matrix[active] = 1.0 - empida(za, groups, diff_quantile) / max_dev[:, None]
    per_latent[active] = matrix[active].max(axis=1)
    parents[active] = prep.kept_factors[matrix[active].argmax(axis=1)]
    score = float(np.sum(per_latent[active] * max_dev) / np.sum(max_dev))
    return {"irs": score, "irs_per_latent": per_latent, "irs_matrix": matrix,
            "irs_parents": parents, "irs_num_active": int(active.sum()),
            "warnings": prep.warnings}
