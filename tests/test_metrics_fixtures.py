"""The metrics on codes of trained models (benchmarks/fixtures/) agree with the plain
scikit-learn references; the logistic fits match sklearn column by column."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import metrics
from metrics import reference
from metrics._linear import fit_softmax, log_proba

FIXTURES = Path(__file__).resolve().parents[1] / "benchmarks" / "fixtures"
CASES = ("beta_vae_mean", "beta_vae_sampled", "qlae_codes")


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _load(case: str, n: int | None = None):
    data = np.load(FIXTURES / f"{case}.npz")
    return data["codes"][:n], data["factors"][:n].astype(np.int64)


def _mean_log_loss(x, y, w, b, sample_weight=None):
    logp = log_proba(x, w, b)[0]
    ce = -logp[np.arange(len(y)), y]
    return float(np.average(ce, weights=sample_weight))


@pytest.mark.parametrize("penalised", [False, True])
def test_fit_softmax_matches_sklearn_per_column(penalised):
    """Columns of 3 and 7 classes fitted together (on parallel threads, padded outputs)
    each reach sklearn's optimum: same objective value, same predictions."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    n = 700
    x = rng.standard_normal((n, 4))
    y = np.stack([np.digitize(x[:, 0] + 0.7 * rng.standard_normal(n), [-0.5, 0.5]),
                  np.clip(np.round(2 * x[:, 1] - x[:, 2] + 3 + rng.standard_normal(n)), 0, 6)
                  .astype(np.int64)], axis=1)
    num_classes = np.array([3, 7])
    if penalised:  # sklearn's default C = 1: l2 = 1 / n on the mean loss
        w, b, iterations = fit_softmax(x, y, num_classes, l2=1.0 / n, tol=1e-7)
    else:  # InfoE's fit: balanced class weights, no penalty
        w, b, iterations = fit_softmax(x, y, num_classes, balanced=True, tol=1e-7)
    assert iterations < 2000  # converged before the cap
    for k in range(2):
        c = int(num_classes[k])
        model = LogisticRegression(C=1.0 if penalised else np.inf, max_iter=10000, tol=1e-10,
                                   class_weight=None if penalised else "balanced")
        model.fit(x, y[:, k])
        counts = np.bincount(y[:, k], minlength=c)
        weight = None if penalised else (n / (c * counts))[y[:, k]]
        ours = _mean_log_loss(x, y[:, k], w[k:k + 1, :, :c], b[k:k + 1, :c], weight)
        ref_w, ref_b = model.coef_.T[None], model.intercept_[None]
        ref = _mean_log_loss(x, y[:, k], ref_w, ref_b, weight)
        if penalised:
            ours += 0.5 / n * np.sum(w[k, :, :c] ** 2)
            ref += 0.5 / n * np.sum(ref_w ** 2)
        assert abs(ours - ref) < 1e-4, (k, ours, ref)
        pred = log_proba(x, w[k:k + 1, :, :c], b[k:k + 1, :c])[0].argmax(-1)
        assert np.mean(pred == model.predict(x)) > 0.99


def test_infomec_explicitness_match_sklearn_on_vae_codes():
    codes, factors = _load("beta_vae_mean", 2000)
    ours, ref = metrics.infomec(codes, factors), reference.infomec_reference(codes, factors)
    for key in ("infom", "infoe", "infoc"):
        assert abs(ours[key] - ref[key]) < 0.01, (key, ours[key], ref[key])
    ours = metrics.modularity_explicitness(codes, factors)
    ref = reference.modularity_explicitness_reference(codes, factors)
    assert abs(ours["explicitness"] - ref["explicitness"]) < 0.01


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES)
def test_suite_matches_sklearn_on_real_codes(case):
    """Full 10,000 samples: InfoMEC, MIG, SAP, modularity/explicitness within 0.01; DCI
    (2,000 training samples: sklearn's trees take minutes on more) within 0.03."""
    codes, factors = _load(case)
    pairs = {"infomec": (metrics.infomec, reference.infomec_reference),
             "mig": (metrics.mig, reference.mig_reference),
             "sap": (metrics.sap, reference.sap_reference),
             "modularity_explicitness": (metrics.modularity_explicitness,
                                         reference.modularity_explicitness_reference)}
    for name, (ours_fn, ref_fn) in pairs.items():
        ours, ref = ours_fn(codes, factors), ref_fn(codes, factors)
        for key in ("infom", "infoe", "infoc", "mig", "sap", "modularity", "explicitness"):
            if key in ref:
                assert abs(ours[key] - ref[key]) < 0.01, (name, key, ours[key], ref[key])
    tr, te = slice(0, 2000), slice(2000, 2500)
    ours = metrics.dci(codes[tr], factors[tr], codes[te], factors[te])
    ref = reference.dci_reference(codes[tr], factors[tr], codes[te], factors[te])
    for key in ("disentanglement", "completeness", "informativeness"):
        assert abs(ours[key] - ref[key]) < 0.03, (key, ours[key], ref[key])


def test_thread_budget_from_environment(monkeypatch):
    from metrics._threads import ENV, thread_budget

    monkeypatch.setenv(ENV, "1")
    assert thread_budget() == 1
    monkeypatch.setenv(ENV, "two")
    with pytest.raises(metrics.MetricInputError, match="two"):
        thread_budget()
    monkeypatch.delenv(ENV)
    assert thread_budget() >= 1
