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


@pytest.mark.parametrize("extra_dense", [0, 2])
def test_one_hot_kernels_give_the_dense_loss_and_gradient(extra_dense):
    """The one-hot design (QLAE codes' blocks + intercept, optionally two continuous columns)
    is found, and its gather/scatter kernels return the dense products' loss and gradient
    (the balanced weights and the ridge included)."""
    from metrics._linear import (
        _fused_design,
        _IndexedSoftmaxLoss,
        _ones_index,
        _SoftmaxLoss,
        balanced_weights,
        one_hot_columns,
    )

    codes, factors = _load("qlae_codes", 3000)
    rng = np.random.default_rng(1)
    x = np.concatenate([one_hot_columns(codes), rng.standard_normal((3000, extra_dense))], 1)
    x1 = np.concatenate([x, np.ones((3000, 1))], axis=1).astype(np.float32)
    design = _ones_index(x1)
    assert design[0].shape == (3000, codes.shape[1] + 1)  # one 1 per latent + the intercept
    assert design[1].tolist() == list(range(x.shape[1] - extra_dense, x.shape[1]))
    num_classes = factors.max(axis=0) + 1
    k = 3
    sw = balanced_weights(factors, num_classes)[k]
    sw = (sw / sw.sum()).astype(np.float32)
    theta = 0.3 * rng.standard_normal(x1.shape[1] * int(num_classes[k]))
    dense = _SoftmaxLoss(x1, factors[:, k], sw, int(num_classes[k]), 0.01)(theta)
    indexed = _IndexedSoftmaxLoss(x1, _fused_design(x1), factors[:, k], sw,
                                  int(num_classes[k]), 0.01)(theta)
    assert abs(dense[0] - indexed[0]) < 1e-5
    np.testing.assert_allclose(indexed[1], dense[1], atol=2e-7)
    # rows with different numbers of ones among the 0/1 columns: no one-hot design
    x1[0, 0] = 1 - x1[0, 0]
    assert _ones_index(x1) is None


@pytest.mark.parametrize("one_hot", [False, True])
def test_softmax_loss_is_exact_where_probabilities_underflow(one_hot):
    """With logits spread over hundreds of nats (late iterations on separable data), the
    loss still counts each sample's exact label logit, and the gradient matches float64
    arithmetic: the floor on the exponentials' arguments (no subnormal products) moves
    nothing that matters."""
    from metrics._linear import _fused_design, _IndexedSoftmaxLoss, _SoftmaxLoss

    rng = np.random.default_rng(3)
    n, num_c = 400, 5
    if one_hot:
        x = np.eye(4)[rng.integers(0, 4, n)]
    else:
        x = rng.standard_normal((n, 3))
    x1 = np.concatenate([x, np.ones((n, 1))], axis=1)
    labels = rng.integers(0, num_c, n)
    sw = np.full(n, 1.0 / n)
    theta = 80.0 * rng.standard_normal(x1.shape[1] * num_c)  # logit gaps up to ~1000 nats
    loss_fn = (_IndexedSoftmaxLoss(x1.astype(np.float32), _fused_design(x1.astype(np.float32)),
                                   labels, sw.astype(np.float32), num_c, 0.0) if one_hot else
               _SoftmaxLoss(x1.astype(np.float32), labels, sw.astype(np.float32), num_c, 0.0))
    loss, grad = loss_fn(theta)
    logits = x1 @ theta.astype(np.float32).astype(np.float64).reshape(-1, num_c)
    logits -= logits.max(axis=1, keepdims=True)
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    assert np.min(log_p[np.arange(n), labels]) < -200  # some labels far below the floor
    exact = -np.mean(log_p[np.arange(n), labels])
    assert abs(loss - exact) < 1e-4 * exact
    resid = np.exp(log_p) - np.eye(num_c)[labels]
    np.testing.assert_allclose(grad, (x1.T @ resid / n).ravel(), atol=1e-6)


@pytest.mark.parametrize("max_rows", [1, 12, 1000])
def test_grouped_one_hot_tables_sum_the_rows_of_each_sample(max_rows):
    """Fused groups of one-hot columns: each sample's sum over its groups' table rows equals
    the sum of W's rows at its ones, with at most as many terms."""
    from metrics._linear import _group_ones

    rng = np.random.default_rng(0)
    sizes = [3, 4, 1, 5]  # the third column is the intercept (one value)
    offsets = np.cumsum([0] + sizes[:-1])
    index = np.stack([o + rng.integers(0, s, 200) for o, s in zip(offsets, sizes)], 1)
    group_index, tables = _group_ones(index.astype(np.int32), sum(sizes) + 2, max_rows)
    w = rng.standard_normal((sum(sizes) + 2, 3))
    np.testing.assert_allclose((tables @ w)[group_index].sum(1), w[index].sum(1), atol=1e-12)
    expected_groups = {1: 3, 12: 2, 1000: 1}[max_rows]  # the intercept always joins a group
    assert group_index.shape[1] == expected_groups


def test_one_hot_fit_matches_the_dense_fit():
    """InfoE's fit on one-hot QLAE codes reaches the dense path's optimum (same log loss)."""
    from metrics import _linear

    codes, factors = _load("qlae_codes", 2000)
    x = _linear.one_hot_columns(codes)
    num_classes = factors.max(axis=0) + 1
    fast = fit_softmax(x, factors[:, 2:4], num_classes[2:4], balanced=True, tol=1e-6)
    kernels = _linear._kernels
    _linear._kernels = lambda: None  # the dense products
    try:
        slow = fit_softmax(x, factors[:, 2:4], num_classes[2:4], balanced=True, tol=1e-6)
    finally:
        _linear._kernels = kernels
    for k in range(2):
        losses = [_mean_log_loss(x, factors[:, 2 + k], w[k:k + 1], b[k:k + 1])
                  for w, b, _ in (fast, slow)]
        assert abs(losses[0] - losses[1]) < 1e-4, (k, losses)


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


def test_thread_map_runs_items_side_by_side_in_order(monkeypatch):
    import threading

    from metrics._threads import ENV, thread_map

    monkeypatch.setenv(ENV, "2")
    meet = threading.Barrier(2, timeout=10)  # both items must run at the same time
    assert thread_map(lambda v: (meet.wait(), v * v)[1], [3, 4]) == [9, 16]
    monkeypatch.setenv(ENV, "1")  # one thread: in order, in this thread
    seen = []
    assert thread_map(lambda v: seen.append(threading.get_ident()) or -v, range(3)) == [0, -1, -2]
    assert seen == [threading.get_ident()] * 3
    # The metrics that use it give the same values with one thread as with two.
    codes, factors = _load("qlae_codes")
    one = metrics.sap(codes[:3000], factors[:3000])["sap_matrix"]
    explicit = metrics.modularity_explicitness(codes[:3000], factors[:3000])
    monkeypatch.setenv(ENV, "2")
    np.testing.assert_array_equal(metrics.sap(codes[:3000], factors[:3000])["sap_matrix"], one)
    assert metrics.modularity_explicitness(codes[:3000], factors[:3000]) == explicit
