"""Mutual Information Gap (Chen, Li, Grosse, Duvenaud, "Isolating Sources of
Disentanglement in VAEs", NeurIPS 2018), as computed by disentanglement_lib
(Locatello et al., ICML 2019).

Each latent is discretised into ``num_bins`` equal-width bins (``np.histogram`` edges per
latent), ``I(z_j; v_k)`` is the plug-in MI of the bin indices, and

    MIG = mean_k (I_(1)k - I_(2)k) / H(v_k)

with ``I_(1)k >= I_(2)k`` the two largest MIs of factor k over the latents.
"""

from __future__ import annotations

import numpy as np

from metrics import register_metric
from metrics._common import discrete_entropy, discrete_mutual_info, histogram_discretize, prepare


def mutual_info_codes_factors(codes: np.ndarray, factors: np.ndarray,
                              num_bins: int = 20) -> np.ndarray:
    """``[L, K]`` plug-in MI between ``num_bins``-bin discretised codes and factors (nats)."""
    return discrete_mutual_info(histogram_discretize(codes, num_bins), factors)


@register_metric("mig")
def mig(codes, factors, num_bins: int = 20) -> dict:
    """MIG of ``codes [n, L]`` against ``factors int [n, K]``.

    Returns ``{"mig": float, "mig_per_factor": [K_used], "warnings": list}``; factors with a
    single value are left out; with one latent the second-largest MI is taken as 0.
    """
    prep = prepare(codes, factors)
    m = mutual_info_codes_factors(prep.codes, prep.factors, num_bins)  # [L, K]
    entropy = discrete_entropy(prep.factors)  # H(v_k)
    top = np.sort(m, axis=0)[::-1]
    if m.shape[0] == 1:
        prep.warnings.append("a single latent: the second-largest MI is taken as 0")
        second = np.zeros(m.shape[1])
    else:
        second = top[1]
    per_factor = (top[0] - second) / entropy  # (I_(1) - I_(2)) / H(v_k)
    return {"mig": float(per_factor.mean()), "mig_per_factor": per_factor,
            "warnings": prep.warnings}
