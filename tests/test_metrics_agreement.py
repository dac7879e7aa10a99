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


@pytest.mark.parametrize("kind", KINDS)
def test_dci_default_matches_sklearn_gbt(kind):
    """200 training samples (factors of 3 and 5 classes keep sklearn's side quick), 1000
    held-out samples so test accuracy is not quantised in steps of 1/40."""
    f = _factors(1200)
    z = _codes(kind, f)
    f = f[:, :2]
    ours = metrics.dci(z[:200], f[:200], z[200:], f[200:])
    ref = reference.dci_reference(z[:200], f[:200], z[200:], f[200:])
    for key in ("disentanglement", "completeness", "informativeness"):
        assert abs(ours[key] - ref[key]) < 0.03, (key, ours[key], ref[key])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["continuous", "entangled", "noise"])
def test_dci_default_matches_sklearn_gbt_binned(kind):
    """4800 training samples: continuous latents have > 4096 distinct values, so our trees
    only see 256 quantile thresholds per latent while sklearn sees all of them."""
    f = _factors(6000)
    z = _codes(kind, f)
    ours, ref = metrics.dci(z, f), reference.dci_reference(z, f)
    for key in ("disentanglement", "completeness", "informativeness"):
        assert abs(ours[key] - ref[key]) < 0.03, (key, ours[key], ref[key])


def test_dci_sklearn_gbt_option_is_the_reference():
    f = _factors(150)[:, :1]
    z = _codes("entangled", _factors(150))
    ours, ref = metrics.dci(z, f, importance="sklearn_gbt"), reference.dci_reference(z, f)
    np.testing.assert_allclose(ours["importance"], ref["importance"], atol=1e-12)
    assert ours["informativeness"] == ref["informativeness"]


@pytest.mark.parametrize("num_classes", [2, 4])
def test_gbt_importances_equal_sklearn_on_discrete_codes(num_classes):
    """Few distinct values -> our thresholds are sklearn's: same trees, same importances."""
    from sklearn.ensemble import GradientBoostingClassifier

    from metrics._gbt import fit_gbt, predict

    rng = np.random.default_rng(5)
    y = rng.integers(0, num_classes, 400)
    x = np.stack([np.where(rng.random(400) < 0.7, y, rng.integers(0, num_classes, 400)),
                  rng.integers(0, 3, 400), (y + rng.integers(0, 2, 400)) // 2], 1).astype(float)
    ours = fit_gbt(x, y, num_classes)
    model = GradientBoostingClassifier(random_state=0).fit(x, y)
    np.testing.assert_allclose(ours["importance"], model.feature_importances_, atol=1e-3)
    assert np.mean(predict(ours["raw"]) == model.predict(x)) > 0.99


def test_gbt_separating_feature_gets_all_importance():
    """A latent equal to the label splits every class tree into pure leaves (impurity 0,
    no further splits): it gets all the importance; importances sum to 1."""
    from metrics._gbt import fit_gbt, predict

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 500)
    x = np.concatenate([y[:, None] + 0.01 * rng.standard_normal((500, 1)),
                        rng.standard_normal((500, 3))], axis=1)
    out = fit_gbt(x, y, 5, x[:50], n_stages=20)
    assert abs(out["importance"].sum() - 1.0) < 1e-12
    assert out["importance"][0] > 1 - 1e-9
    np.testing.assert_array_equal(predict(out["raw"]), y)
    np.testing.assert_array_equal(predict(out["raw_test"]), y[:50])
    noise = fit_gbt(rng.standard_normal((300, 3)), rng.integers(0, 3, 300), 3, n_stages=5)
    assert abs(noise["importance"].sum() - 1.0) < 1e-12 and noise["importance"].min() > 0


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


def test_knn_mi_labels_and_value_order_do_not_change_it():
    """Any integer labels (negative, sparse, singletons) and a precomputed stable value order
    (nmi_matrix shares one per latent) give the estimate of the encoded labels to the bit,
    ties in the latent included; the estimate itself is checked against sklearn above."""
    infomec_module = __import__("importlib").import_module("metrics.infomec")
    rng = np.random.default_rng(5)
    y = rng.integers(0, 5, 800)
    y[:2] = [5, 6]  # two classes of one point each: left out
    z = np.round(rng.standard_normal(800) + 0.5 * y, 1)  # many ties
    base = infomec_module.knn_mutual_info(z, y, 10)
    assert base > 0.1
    sparse = np.array([-7, 3, 1000, 12, -1, 40, 41])[y]
    assert infomec_module.knn_mutual_info(z, sparse, 10) == base
    order = np.argsort(z, kind="stable")
    assert infomec_module.knn_mutual_info(z, y, 10, order) == base
    assert infomec_module.knn_mutual_info(z, sparse.astype(float), 10, order) == base
