"""Analytic properties of the metrics: known values, invariances, degenerate inputs."""

from __future__ import annotations

import importlib

import numpy as np
import pytest

import metrics
from disentangle.data.base import GroundTruthData
from metrics._common import MetricInputError

dci_module = importlib.import_module("metrics.dci")
sap_module = importlib.import_module("metrics.sap")

SIZES = (4, 6, 10)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _factors(n=1500, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, s, n) for s in SIZES], axis=1)


def _identity(f, noise=0.01, seed=1):
    rng = np.random.default_rng(seed)
    return f / np.asarray(SIZES) + noise * rng.standard_normal(f.shape)


def test_identity_codes_score_near_one():
    f = _factors()
    z = _identity(f)
    info = metrics.infomec(z, f)
    assert info["infom"] > 0.95 and info["infoc"] > 0.95 and info["infoe"] > 0.95
    assert metrics.mig(z, f)["mig"] > 0.9
    # SAP's LinearSVC (C = 0.01) on one latent cannot carve out middle classes, and is
    # scale-dependent: on factor-index-scaled codes the gap is large, not 1
    sap = metrics.sap(f + 0.05 * np.random.default_rng(0).standard_normal(f.shape), f)
    assert sap["sap"] > 0.3 and np.all(np.argmax(sap["sap_matrix"], axis=0) == [0, 1, 2])
    assert metrics.modularity_explicitness(z, f)["modularity"] > 0.95
    fast = metrics.dci(z, f, importance="logistic")
    assert fast["disentanglement"] > 0.8 and fast["completeness"] > 0.8
    disc = metrics.infomec(f, f)  # integer codes = discrete latents
    # plug-in MI is biased upward (independent factors share a little), hence ~0.98-0.99
    assert disc["infom"] > 0.97 and disc["infoc"] > 0.97
    assert disc["infoe"] > 0.99


def test_noise_codes_near_floor():
    f = _factors()
    z = np.random.default_rng(5).standard_normal((f.shape[0], 4))
    assert metrics.mig(z, f)["mig"] < 0.03
    assert metrics.sap(z, f)["sap"] < 0.05
    info = metrics.infomec(z, f)
    assert info["infoe"] < 0.05
    assert np.all(info["nmi"] < 0.05)


def test_permuting_and_rescaling_latents_changes_nothing():
    f = _factors()
    rng = np.random.default_rng(2)
    mix = np.array([[1.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0.4, 0.0, 1.0]])
    z = f / np.asarray(SIZES) @ mix + 0.05 * rng.standard_normal(f.shape)
    z = np.concatenate([z, rng.standard_normal((f.shape[0], 1))], axis=1)
    perm = np.array([2, 0, 3, 1])
    scale = np.array([0.5, 2.0, 1.5, 0.8])
    z2 = z[:, perm] * scale[perm] + 3.0
    a, b = metrics.infomec(z, f), metrics.infomec(z2, f)
    for key in ("infom", "infoc", "infoe"):
        assert a[key] == pytest.approx(b[key], abs=2e-3), key
    np.testing.assert_allclose(a["nmi"][:, perm], b["nmi"], atol=2e-3)
    assert metrics.mig(z, f)["mig"] == pytest.approx(metrics.mig(z2, f)["mig"], abs=1e-12)
    # SAP's LinearSVC (C = 0.01, intercept regularised) is not scale/shift invariant:
    # only permutation is checked for it
    assert metrics.sap(z, f)["sap"] == pytest.approx(metrics.sap(z[:, perm], f)["sap"])
    m1, m2 = metrics.modularity_explicitness(z, f), metrics.modularity_explicitness(z2, f)
    assert m1["modularity"] == pytest.approx(m2["modularity"], abs=1e-12)
    assert m1["explicitness"] == pytest.approx(m2["explicitness"], abs=1e-3)


def test_duplicated_latent_lowers_mig_and_infoc():
    f = _factors()
    z = _identity(f)
    dup = np.concatenate([z, z[:, :1] + 0.001], axis=1)
    assert metrics.mig(dup, f)["mig"] < metrics.mig(z, f)["mig"] - 0.25
    assert metrics.infomec(dup, f)["infoc"] < metrics.infomec(z, f)["infoc"] - 0.1


def test_hand_computed_mig_and_nmi():
    v = np.array([0, 0, 1, 1] * 25)[:, None]
    z = np.stack([v[:, 0], np.array([0, 1, 1, 1] * 25)], axis=1).astype(float)
    # I(v; z0) = log 2; I(v; z1) = H(1/4) - H(z1 | v) = H(1/4) - log(2) / 2
    h_quarter = -(0.25 * np.log(0.25) + 0.75 * np.log(0.75))
    expected = (np.log(2) - (h_quarter - 0.5 * np.log(2))) / np.log(2)
    assert metrics.mig(z, v)["mig"] == pytest.approx(expected, abs=1e-12)
    info = metrics.infomec(z.astype(int), v)
    np.testing.assert_allclose(info["nmi"][0], [1.0, (h_quarter - 0.5 * np.log(2)) / np.log(2)])
    # InfoC with one factor and 2 active latents: (max/sum - 1/2) / (1/2)
    ratio = 1.0 / (1.0 + info["nmi"][0, 1])
    assert info["infoc"] == pytest.approx((ratio - 0.5) / 0.5)


def test_dci_entropy_formulas():
    assert dci_module.disentanglement(np.eye(3)) == pytest.approx(1.0, abs=1e-6)
    assert dci_module.completeness(np.eye(3)) == pytest.approx(1.0, abs=1e-6)
    assert dci_module.disentanglement(np.ones((3, 3))) == pytest.approx(0.0, abs=1e-6)
    # latent 0 used for two of K = 3 factors equally: D_0 = 1 - log_3(2); latent 1 perfect
    r = np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    expected = 0.5 * (1 - np.log(2) / np.log(3)) + 0.5 * 1.0  # rho = (1/2, 1/2)
    assert dci_module.disentanglement(r) == pytest.approx(expected, abs=1e-6)
    # completeness: factors 0, 1 each in one latent; factor 2 in one latent -> 1
    assert dci_module.completeness(r) == pytest.approx(1.0, abs=1e-6)


def test_one_feature_svm_is_the_exact_minimiser():
    from scipy.optimize import minimize

    rng = np.random.default_rng(4)
    x = rng.standard_normal(400)
    y = (x + 0.7 * rng.standard_normal(400) > 0.3).astype(int)
    cw = 400 / (2 * np.bincount(y))
    w, b = sap_module.linear_svc_1d(x, y, 2, c=0.01)
    sign = np.where(y == 1, 1.0, -1.0)
    cost = 0.01 * cw[y]

    def f(p):
        return 0.5 * (p[0] ** 2 + p[1] ** 2) + np.sum(
            cost * np.maximum(0, 1 - sign * (p[0] * x + p[1])) ** 2)

    best = minimize(f, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-10,
                                                                 "fatol": 1e-12})
    assert f([w[0], b[0]]) <= best.fun + 1e-9
    np.testing.assert_allclose([w[0], b[0]], best.x, atol=1e-4)


def test_roc_auc_is_sklearns_with_ties_and_undefined_classes():
    """Explicitness' one-vs-rest AUC: sklearn's roc_auc_score per class, with tied scores
    (rounded probabilities) and a class that never occurs (undefined, reported as such)."""
    from sklearn.metrics import roc_auc_score

    modularity = importlib.import_module("metrics.modularity")
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 700)  # class 4 of 5 is absent
    proba = np.round(rng.random((700, 5)) + 0.3 * (y[:, None] == np.arange(5)), 1)
    auc, defined = modularity.roc_auc_ovr(y, proba)
    assert defined.tolist() == [True, True, True, True, False] and auc[4] == 0.0
    expected = [roc_auc_score(y == c, proba[:, c]) for c in range(4)]
    np.testing.assert_allclose(auc[:4], expected, atol=1e-12)
    auc, defined = modularity.roc_auc_ovr(y[:0], proba[:0])  # no samples: nothing defined
    assert not defined.any() and not auc.any()


def test_unsupervised_scores_known_values():
    rng = np.random.default_rng(0)
    rho = 0.6
    cov = np.array([[1.0, rho], [rho, 1.0]])
    z = rng.multivariate_normal([0, 0], cov, size=200_000)
    assert metrics.gaussian_total_correlation(z) == pytest.approx(
        -0.5 * np.log(1 - rho**2), abs=0.01)
    from scipy.linalg import sqrtm

    c = np.cov(z, rowvar=False)
    expected = 2 * np.trace(c) - 2 * np.trace(sqrtm(c * np.diag(c)[:, None])).real
    assert metrics.gaussian_wasserstein_correlation(z) == pytest.approx(expected, rel=1e-8)
    independent = rng.standard_normal((5000, 3))
    assert metrics.gaussian_total_correlation(independent) < 0.01
    mi = metrics.mutual_info_matrix(np.stack([z[:5000, 0], z[:5000, 0]], 1))
    assert mi[0, 1] == pytest.approx(mi[0, 0])  # MI of a latent with itself = its entropy
    warnings: list[str] = []
    tc = metrics.gaussian_total_correlation(np.stack([z[:, 0], z[:, 0], z[:, 1]], 1), warnings)
    assert np.isfinite(tc) and any("singular" in w for w in warnings)


def test_degenerate_inputs_are_errors_or_warned():
    f = _factors(300)
    z = _identity(f)
    bad = z.copy()
    bad[3, 1] = np.nan
    for fn in (metrics.infomec, metrics.mig, metrics.sap, metrics.dci):
        with pytest.raises(MetricInputError, match="NaN"):
            fn(bad, f)
    with pytest.raises(MetricInputError, match="rows"):
        metrics.mig(z[:10], f)
    with pytest.raises(MetricInputError, match="single value"):
        metrics.mig(z, np.zeros_like(f))
    const_factor = f.copy()
    const_factor[:, 1] = 7
    out = metrics.evaluate(z, const_factor, names=["mig", "infomec"])
    assert any("single value" in w for w in out["warnings"])
    assert np.isfinite(out["mig"]) and out["nmi"].shape == (3, 3)
    assert np.all(out["nmi"][1] == 0)
    const_latent = np.concatenate([z, np.ones((300, 1))], axis=1)
    info = metrics.infomec(const_latent, f)
    assert not info["active"][-1] and np.isfinite(info["infom"])
    one = metrics.mig(z[:, :1], f)
    assert np.isfinite(one["mig"]) and one["warnings"]


def test_evaluate_keys_and_options():
    f = _factors(400)
    z = _identity(f)
    out = metrics.evaluate(z, f, importance="logistic")
    for key in ("infom", "infoe", "infoc", "mig", "dci_disentanglement", "dci_completeness",
                "dci_informativeness", "sap", "modularity", "explicitness",
                "gaussian_total_correlation", "mutual_info_score"):
        assert np.isfinite(out[key]), key
    assert out["nmi"].shape == (3, 3)
    assert set(metrics.scalars(out)) >= {"infom", "mig", "sap"}
    with pytest.raises(KeyError):
        metrics.evaluate(z, f, names=["no_such_metric"])
    # near-uniform factors: the class-weighted log loss is close to the plain one
    weighted = metrics.infomec(z, f, weighted_log_loss=True)["infoe"]
    assert weighted == pytest.approx(out["infoe"], abs=0.02)


class _Toy(GroundTruthData):
    """Observations are the factors scaled to [0, 1] with a little noise."""

    name = "toy"
    factor_names = ("a", "b", "c")
    factor_sizes = (5, 5, 5)
    observation_shape = (3,)

    def sample_observations_from_factors(self, factors, rng):
        return (factors / 4.0 + 0.01 * rng.standard_normal(factors.shape)).astype(np.float32)


def test_interventional_scores():
    ds = _Toy()
    rng = np.random.default_rng(0)
    ident = metrics.beta_vae_score(ds, lambda x: x, rng, batch_size=16, num_train=300,
                                   num_eval=200)
    assert ident["beta_vae"] > 0.95
    noise = metrics.beta_vae_score(ds, lambda x: rng.standard_normal(x.shape), rng,
                                   batch_size=16, num_train=300, num_eval=200)
    assert noise["beta_vae"] < 0.6
    fv = metrics.factor_vae_score(ds, lambda x: x, rng, batch_size=16, num_train=300,
                                  num_eval=200, num_variance_estimate=1000)
    assert fv["factor_vae"] > 0.95 and fv["factor_vae_num_active"] == 3
    mixed = metrics.factor_vae_score(ds, lambda x: x @ np.ones((3, 3)) / 3, rng, batch_size=16,
                                     num_train=300, num_eval=200, num_variance_estimate=1000)
    assert mixed["factor_vae"] < 0.7
