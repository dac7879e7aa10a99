"""The device path of the logistic fits (``metrics._linear_device``) reaches the host path's
optimum (same objective, same probabilities), masks padded classes, weights classes as
sklearn's ``class_weight="balanced"``, and is chosen by ``DISENTANGLE_FIT`` / the backend."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from disentangle import backend
from disentangle.errors import UserError
from metrics import _linear_device
from metrics._linear import fit_softmax, log_proba
from metrics._linear_device import fit_softmax_device
from metrics.infomec import infoe


@pytest.fixture(autouse=True)
def _one_blas_thread():
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        yield


def _problem(n: int = 600, seed: int = 0):
    """Inputs ``[n, 4]`` and two label columns of 3 and 7 classes (the 3-class one padded)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4))
    y = np.stack([np.digitize(x[:, 0] + 0.7 * rng.standard_normal(n), [-0.5, 0.5]),
                  np.clip(np.round(2 * x[:, 1] - x[:, 2] + 3 + rng.standard_normal(n)), 0, 6)
                  .astype(np.int64)], axis=1)
    return x, y, np.array([3, 7])


def _objective(x, y, c, w, b, balanced: bool, l2: float) -> float:
    """``sum_i s_i CE_i / sum_i s_i + l2/2 ||W||^2`` with ``s_i = n / (C count(y_i))`` if
    balanced else 1, written out here (not the library's code)."""
    logits = x @ w[:, :c] + b[:c]
    logits = logits - logits.max(axis=1, keepdims=True)
    ce = np.log(np.exp(logits).sum(axis=1)) - logits[np.arange(len(y)), y]
    s = len(y) / (c * np.bincount(y, minlength=c))[y] if balanced else np.ones(len(y))
    return float(np.sum(s * ce) / np.sum(s) + 0.5 * l2 * np.sum(w[:, :c] ** 2))


@pytest.mark.parametrize("balanced", [True, False])
def test_device_fit_reaches_the_host_optimum(balanced):
    """Same objective to 2e-6 per column, same probabilities to 2e-3, padding as the host's."""
    x, y, num_classes = _problem()
    l2 = 0.0 if balanced else 1.0 / len(x)
    host = fit_softmax(x, y, num_classes, balanced=balanced, l2=l2, tol=1e-7)
    device = fit_softmax_device(x, y, num_classes, balanced=balanced, l2=l2, tol=1e-7)
    assert device[0].shape == host[0].shape == (2, 4, 7) and device[1].shape == (2, 7)
    assert 0 < device[2] < 2000
    for k, c in enumerate(num_classes):
        ours = _objective(x, y[:, k], c, device[0][k], device[1][k], balanced, l2)
        theirs = _objective(x, y[:, k], c, host[0][k], host[1][k], balanced, l2)
        assert abs(ours - theirs) < 2e-6, (k, ours, theirs)
    np.testing.assert_allclose(np.exp(log_proba(x, *device[:2])),
                               np.exp(log_proba(x, *host[:2])), atol=2e-3)
    assert np.all(device[1][0, 3:] == -np.inf) and np.all(device[0][0, :, 3:] == 0)
    assert np.all(np.isfinite(device[1][0, :3])) and np.all(np.isfinite(device[1][1]))


def test_padded_classes_get_no_probability_and_change_nothing():
    """A 2-class column fitted beside a 7-class one (padded to 7) equals its fit alone: the
    padded logits are masked out of the softmax, not merely pushed down by the fit."""
    x, y, _ = _problem(seed=1)
    y2 = np.stack([(y[:, 0] > 0).astype(np.int64), y[:, 1]], axis=1)
    both = fit_softmax_device(x, y2, np.array([2, 7]), balanced=True, tol=1e-7)
    alone = fit_softmax_device(x, y2[:, :1], np.array([2]), balanced=True, tol=1e-7)
    proba = np.exp(log_proba(x, both[0][:1], both[1][:1]))[0]  # [n, 7], padded included
    assert proba[:, 2:].max() == 0.0
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(proba[:, :2], np.exp(log_proba(x, *alone[:2]))[0], atol=1e-4)
    # the 2-class fit is a logistic regression: its log-odds are linear in x
    log_odds = np.log(proba[:, 1]) - np.log(proba[:, 0])
    coef = both[0][0, :, 1] - both[0][0, :, 0]
    np.testing.assert_allclose(log_odds, x @ coef + both[1][0, 1] - both[1][0, 0], atol=1e-4)


def test_balanced_weights_match_sklearn_and_differ_from_unweighted():
    """On imbalanced classes (90/10 %) the balanced device fit is sklearn's
    ``LogisticRegression(C=inf, class_weight="balanced")`` optimum. At an unpenalised optimum
    the intercept's gradient vanishes: the mean probability of each class is its frequency
    (unweighted fit), or 1/C under the balanced weights ``n / (C count_c)``."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(2)
    n = 600
    y = (rng.random(n) < 0.1).astype(np.int64)
    x = rng.standard_normal((n, 4))
    x[:, :2] += 0.8 * y[:, None]
    balanced = fit_softmax_device(x, y[:, None], np.array([2]), balanced=True, tol=1e-7)
    plain = fit_softmax_device(x, y[:, None], np.array([2]), tol=1e-7)
    ref = LogisticRegression(C=np.inf, class_weight="balanced", max_iter=10000, tol=1e-10)
    ref.fit(x, y)
    ours = _objective(x, y, 2, balanced[0][0], balanced[1][0], True, 0.0)
    ref_w = np.concatenate([np.zeros((4, 1)), ref.coef_.T], axis=1)  # binary: class 1's logit
    theirs = _objective(x, y, 2, ref_w, np.array([0.0, ref.intercept_[0]]), True, 0.0)
    assert abs(ours - theirs) < 2e-6, (ours, theirs)
    p_balanced = np.exp(log_proba(x, *balanced[:2]))[0]
    np.testing.assert_allclose(p_balanced, ref.predict_proba(x), atol=2e-3)
    weights = (n / (2 * np.bincount(y)))[y]
    np.testing.assert_allclose(np.average(p_balanced, axis=0, weights=weights), [0.5, 0.5],
                               atol=1e-4)
    p_plain = np.exp(log_proba(x, *plain[:2]))[0]
    np.testing.assert_allclose(p_plain.mean(axis=0), np.bincount(y) / n, atol=1e-4)
    assert p_balanced[:, 1].mean() > 0.3 > 0.15 > p_plain[:, 1].mean()


def test_x64_fit_is_float64_and_tighter():
    """Under x64 the program runs in float64 and meets a gradient test of 1e-9 that float32
    cannot: sklearn's penalised optimum to 1e-10."""
    from sklearn.linear_model import LogisticRegression

    x, y, num_classes = _problem(n=400, seed=3)
    with jax.enable_x64(True):
        w, b, iterations = fit_softmax_device(x, y[:, 1:], num_classes[1:], l2=1.0 / 400,
                                              tol=1e-9)
    assert iterations < 2000
    ref = LogisticRegression(C=1.0, max_iter=10000, tol=1e-12).fit(x, y[:, 1])
    ours = _objective(x, y[:, 1], 7, w[0], b[0], False, 1.0 / 400)
    theirs = _objective(x, y[:, 1], 7, ref.coef_.T, ref.intercept_, False, 1.0 / 400)
    assert abs(ours - theirs) < 1e-10, (ours, theirs)


def test_fit_path_follows_the_backend_unless_overridden(monkeypatch):
    monkeypatch.delenv(backend.FIT_ENV, raising=False)
    assert backend.fit_path("cpu") == "host"
    assert backend.fit_path("gpu") == backend.fit_path("tpu") == "device"
    monkeypatch.setenv(backend.FIT_ENV, "device")
    assert backend.fit_path("cpu") == "device"
    monkeypatch.setenv(backend.FIT_ENV, "host")
    assert backend.fit_path("gpu") == "host"
    monkeypatch.setenv(backend.FIT_ENV, "gpu")
    with pytest.raises(UserError) as err:
        backend.fit_path()
    message = str(err.value)
    assert message == ("DISENTANGLE_FIT (environment variable)='gpu'; accepted: host, device "
                       "(unset: the backend's default, 'host' on CPU, 'device' elsewhere)")
    x, y, num_classes = _problem(n=50)
    with pytest.raises(UserError, match=r"DISENTANGLE_FIT \(environment variable\)='gpu'"):
        fit_softmax(x, y, num_classes)


def test_fit_softmax_dispatches_on_the_fit_path(monkeypatch):
    calls = []

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return fit_softmax_device(*args, **kwargs)

    monkeypatch.setattr(_linear_device, "fit_softmax_device", spy)
    x, y, num_classes = _problem()
    monkeypatch.setenv(backend.FIT_ENV, "host")
    fit_softmax(x, y, num_classes, balanced=True)
    assert calls == []
    monkeypatch.setenv(backend.FIT_ENV, "device")
    fit_softmax(x, y, num_classes, balanced=True, l2=0.5, tol=1e-4, max_iter=7)
    assert calls == [{"balanced": True, "l2": 0.5, "tol": 1e-4, "max_iter": 7}]


@pytest.mark.parametrize("discrete", [False, True])
def test_infoe_is_the_same_on_either_path(monkeypatch, discrete):
    """InfoE of a small synthetic code (continuous: noisy linear mix of three factors plus a
    noise latent; discrete: the same binned to 8 levels, one-hot inputs) to 1e-3."""
    rng = np.random.default_rng(4)
    n = 1000
    factors = np.stack([rng.integers(0, s, n) for s in (3, 5, 8)], axis=1)
    mix = np.array([[1.0, 0.2, 0.0], [0.0, 1.0, 0.3], [0.1, 0.0, 1.0]])
    codes = np.concatenate([factors / factors.max(axis=0) @ mix
                            + 0.1 * rng.standard_normal((n, 3)),
                            rng.standard_normal((n, 1))], axis=1)
    if discrete:
        codes = np.stack([np.digitize(c, np.quantile(c, np.linspace(0, 1, 9)[1:-1]))
                          for c in codes.T], axis=1)
    flags = np.full(codes.shape[1], discrete)
    values = {}
    for path in ("host", "device"):
        monkeypatch.setenv(backend.FIT_ENV, path)
        values[path] = infoe(codes, factors, np.array([3, 5, 8]), flags)
    assert 0.1 < values["host"][0] < 0.95
    assert abs(values["host"][0] - values["device"][0]) < 1e-3
    np.testing.assert_allclose(values["host"][1], values["device"][1], atol=1e-3)
