"""Disentanglement metrics: pure functions of ``codes [n, L]`` and ``factors int [n, K]``.

Rows are samples. Every supervised metric is ``name(codes, factors, **options) -> dict``;
the interventional scores (BetaVAE, FactorVAE) take ``(dataset, represent_fn, rng)``.
``evaluate(codes, factors, names=None, **options)`` runs a set of registered metrics and
returns one flat dict. Metrics never import models.

Registered names and the keys ``evaluate`` returns (floats unless noted):

==========================  ===============================================================
name                        keys
==========================  ===============================================================
``infomec``                 ``infom``, ``infoe``, ``infoc``, ``nmi`` ([K, L] array over all
                            latents), ``active`` ([L] bool), ``infoe_per_factor`` ([K])
``mig``                     ``mig``, ``mig_per_factor`` ([K])
``dci``                     ``dci_disentanglement``, ``dci_completeness``,
                            ``dci_informativeness`` (test accuracy),
                            ``dci_informativeness_train``, ``dci_importance`` ([L, K])
``sap``                     ``sap``, ``sap_matrix`` ([L, K] test accuracies)
``modularity_explicitness`` ``modularity``, ``explicitness`` (test ROC-AUC),
                            ``explicitness_train``
``unsupervised``            ``gaussian_total_correlation``,
                            ``gaussian_wasserstein_correlation``,
                            ``gaussian_wasserstein_correlation_norm``, ``mutual_info_score``
                            (mean pairwise 20-bin MI of the latents)
==========================  ===============================================================

``warnings`` (list of str) collects every value that was defined by convention rather than
by formula (constant factor left out, latent with no information, singular covariance...),
each prefixed with the metric name. Invalid inputs (NaN codes, mismatched rows, every factor
constant) raise :class:`MetricInputError` (a ``UserError`` and ``ValueError``).

Options given to ``evaluate`` go to every metric whose signature names them (e.g.
``discrete_latents`` to ``infomec``, ``importance`` to ``dci``, ``codes_test`` and
``factors_test`` to the metrics with a held-out set). The plain scikit-learn versions of
the same definitions live in :mod:`metrics.reference`. See docs/metrics.md.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import numpy as np

from disentangle.registry import Registry

METRICS: Registry[Callable[..., dict]] = Registry("metric", __name__)
register_metric = METRICS.register

DEFAULT_METRICS = ("infomec", "mig", "dci", "sap", "modularity_explicitness", "unsupervised")

# Result keys renamed on the way into ``evaluate``'s flat dict.
_RENAME = {
    "dci": {"disentanglement": "dci_disentanglement", "completeness": "dci_completeness",
            "informativeness": "dci_informativeness",
            "informativeness_train": "dci_informativeness_train",
            "importance": "dci_importance"},
}


def evaluate(codes, factors, names: Sequence[str] | None = None, **options) -> dict:
    """Run the metrics ``names`` (default :data:`DEFAULT_METRICS`) on the same codes.

    Args:
      codes: float or int ``[n, L]``.
      factors: int ``[n, K]``.
      names: registered metric names.
      **options: passed to each metric whose signature accepts the keyword.
    Returns:
      A flat dict of floats and arrays (keys in the module docstring), plus ``warnings``.
    """
    names = list(DEFAULT_METRICS if names is None else names)
    results: dict = {}
    warnings: list[str] = []
    for name in names:
        fn = METRICS.get(name)
        params = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in options.items() if k in params}
        out = fn(codes, factors, **kwargs)
        for w in out.pop("warnings", []):
            warnings.append(f"{name}: {w}")
        rename = _RENAME.get(name, {})
        for key, value in out.items():
            results[rename.get(key, key)] = value
    results["warnings"] = warnings
    return results


def scalars(results: dict) -> dict[str, float]:
    """The float entries of an ``evaluate`` result (for JSON logs and tables)."""
    return {k: float(v) for k, v in results.items()
            if isinstance(v, float | int | np.floating | np.integer) and not isinstance(v, bool)}


from metrics._common import MetricInputError  # noqa: E402
from metrics.dci import dci  # noqa: E402
from metrics.infomec import infomec  # noqa: E402
from metrics.interventional import beta_vae_score, factor_vae_score  # noqa: E402
from metrics.mig import mig  # noqa: E402
from metrics.modularity import modularity_explicitness  # noqa: E402
from metrics.sap import sap  # noqa: E402
from metrics.unsupervised import (  # noqa: E402
    gaussian_total_correlation,
    gaussian_wasserstein_correlation,
    mean_pairwise_mutual_info,
    mutual_info_matrix,
    unsupervised,
)

__all__ = [
    "DEFAULT_METRICS", "METRICS", "MetricInputError", "beta_vae_score", "dci", "evaluate",
    "factor_vae_score",
    "gaussian_total_correlation", "gaussian_wasserstein_correlation", "infomec",
    "mean_pairwise_mutual_info", "mig", "modularity_explicitness", "mutual_info_matrix",
    "register_metric", "sap", "scalars", "unsupervised",
]
