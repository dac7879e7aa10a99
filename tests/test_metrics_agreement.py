"""metrics.* agree with the plain scikit-learn transcriptions in metrics.reference."""

from __future__ import annotations

import numpy as np
import pytest

import metrics
from metrics import reference

SIZES = (3, 5, 8)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small matmuls crawl with OpenBLAS threads on a shared machine; time both sides alike."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _factors(n, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


def _codes(kind: str, factors: np.ndarray, seed=1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = factors.shape[0]
    scaled = factors / np.asarray(SIZES)
    if kind == "continuous":  # one noisy latent per factor + one nuisance latent
        return np.concatenate([scaled + 0.05 * rng.standard_normal(scaled.shape),
                               rng.standard_normal((n, 1))], axis=1)
    if kind == "entangled":  # noisy mixture: every latent sees several factors
        mix = np.array([[1.0, 0.5, 0.0, 0.2], [0.0, 1.0, 0.4, 0.0], [0.3, 0.0, 1.0, 0.5]])
        return scaled @ mix + 0.1 * rng.standard_normal((n, 4))
    if kind == "discrete":  # quantised latents: factors, one coarsened, one noise
        return np.concatenate([factors[:, :2], factors[:, 2:] // 2,
                               rng.integers(0, 4, (n, 1))], axis=1)
    if kind == "noise":
        return rng.standard_normal((n, 4))
    raise ValueError(kind)


KINDS = ["continuous", "entangled", "discrete", "noise"]


@pytest.mark.parametrize("kind", ["continuous", "discrete"])
def test_infomec_matches_sklearn(kind):
    f = _factors(600)
    z = _codes(kind, f)
    ours, ref = metrics.infomec(z, f), reference.infomec_reference(z, f)
    for key in ("infom", "infoe", "infoc"):
        assert abs(ours[key] - ref[key]) < 0.01, (key, ours[key], ref[key])
    assert np.abs(ours["nmi"] - ref["nmi"]).max() < 0.01
    np.testing.assert_array_equal(ours["active"], ref["active"])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["entangled", "noise"])
def test_infomec_matches_sklearn_more(kind):
    f = _factors(2000)
    z = _codes(kind, f)
    ours, ref = metrics.infomec(z, f), reference.infomec_reference(z, f)
    for key in ("infom", "infoe", "infoc"):
        assert abs(ours[key] - ref[key]) < 0.01, (key, ours[key], ref[key])


@pytest.mark.parametrize("kind", KINDS)
def test_mig_matches_sklearn(kind):
    f = _factors(2000)
    z = _codes(kind, f)
    assert abs(metrics.mig(z, f)["mig"] - reference.mig_reference(z, f)["mig"]) < 1e-9


@pytest.mark.parametrize("kind", KINDS)
def test_sap_matches_sklearn(kind):
    f = _factors(1500)
    z = _codes(kind, f)
    ours, ref = metrics.sap(z, f), reference.sap_reference(z, f)
    assert abs(ours["sap"] - ref["sap"]) < 0.01
    assert np.abs(ours["sap_matrix"] - ref["sap_matrix"]).max() < 0.01


@pytest.mark.parametrize("kind", ["entangled", "discrete"])
def test_modularity_explicitness_match_sklearn(kind):
    f = _factors(1000)
    z = _codes(kind, f)
    ours = metrics.modularity_explicitness(z, f)
    ref = reference.modularity_explicitness_reference(z, f)
    assert abs(ours["modularity"] - ref["modularity"]) < 0.01
    assert abs(ours["explicitness"] - ref["explicitness"]) < 0.01


def test_dci_default_matches_sklearn_gbt():
    f = _factors(200)[:, :2]
    z = _codes("entangled", _factors(200))
    ours, ref = metrics.dci(z, f), reference.dci_reference(z, f)
    for key in ("disentanglement", "completeness", "informativeness"):
        assert abs(ours[key] - ref[key]) < 0.03, (key, ours[key], ref[key])


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_dci_default_matches_sklearn_gbt_all_kinds(kind):
    f = _factors(1000)
    z = _codes(kind, f)
    ours, ref = metrics.dci(z, f), reference.dci_reference(z, f)
    for key in ("disentanglement", "completeness", "informativeness"):
        assert abs(ours[key] - ref[key]) < 0.03, (key, ours[key], ref[key])


def test_knn_mi_matches_mutual_info_classif():
    from sklearn.feature_selection import mutual_info_classif

    infomec_module = __import__("importlib").import_module("metrics.infomec")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 6, 3000)
    wave = np.sin(2.0 * y) + 0.3 * rng.standard_normal(3000)
    for z in (y + rng.standard_normal(3000), rng.standard_normal(3000), wave):
        z = (z - z.mean()) / z.std()
        ours = infomec_module.knn_mutual_info(z, y, 10)
        ref = mutual_info_classif(z[:, None], y, n_neighbors=10, random_state=0)[0]
        assert abs(ours - ref) < 0.005, (ours, ref)
