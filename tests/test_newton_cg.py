"""The host Newton-CG of the dense logistic fits (metrics/_linear.py): exact curvature,
the same optimum as a long L-BFGS run, robust on separable data."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from metrics import _linear


def _loss(n=600, num_d=3, num_c=4, l2=0.0, separation=1.0, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, num_c, n)
    x = rng.standard_normal((n, num_d)) + separation * np.eye(num_c, num_d)[y] * 3
    x1 = np.concatenate([x, np.ones((n, 1))], axis=1).astype(dtype)
    w = rng.random(n)
    return _linear._SoftmaxLoss(x1, y, (w / w.sum()).astype(dtype), num_c, l2)


@pytest.mark.parametrize("l2", [0.0, 0.3])
def test_hessian_products_are_the_gradients_derivative(l2):
    loss = _loss(l2=l2)
    rng = np.random.default_rng(1)
    theta = 0.3 * rng.standard_normal(4 * 4)
    curv = _linear._SoftmaxCurvature(loss, m=600)  # every row: the preconditioner is H
    curv.at(theta)
    v = rng.standard_normal(theta.shape)
    eps = 1e-6
    numeric = (loss(theta + eps * v)[1] - loss(theta - eps * v)[1]) / (2 * eps)
    np.testing.assert_allclose(curv.hvp(v), numeric, atol=1e-8)
    # off the null directions (one shift of all classes' intercepts; unpenalised, of all
    # classes' weights of a latent too) it inverts H, up to its 1e-6 relative ridge
    v = v.reshape(4, 4)
    rows = slice(None) if l2 == 0 else slice(-1, None)
    v[rows] -= v[rows].mean(axis=1, keepdims=True)
    np.testing.assert_allclose(curv.precondition(curv.hvp(v.ravel())), v.ravel(), atol=1e-4)


@pytest.mark.parametrize("l2", [0.0, 1e-3])
def test_newton_reaches_the_lbfgs_optimum(l2):
    """float32 work arrays as in the fits; the objective at Newton's point is no higher than
    a long L-BFGS run's, in a few tens of steps."""
    loss = _loss(n=3000, num_d=5, num_c=6, l2=l2, separation=0.5, dtype=np.float32)
    theta0 = np.zeros(6 * 6)
    ref = minimize(loss, theta0, jac=True, method="L-BFGS-B",
                   options={"maxiter": 5000, "gtol": 1e-7, "ftol": 1e-14})
    theta, steps = _linear.newton_cg(loss, theta0, tol=1e-6, max_iter=100)
    f, g = loss(theta)
    assert steps < 30
    assert f <= ref.fun + 1e-6, (f, ref.fun)
    assert np.abs(g).max() < 1e-4  # stopped where float32 losses stop decreasing


def test_newton_on_separable_data_decreases_and_stops():
    """Separable classes: the unpenalised optimum is at infinity, probabilities saturate and
    the subsample Hessian becomes singular; the fit still lowers the loss and stops."""
    loss = _loss(n=400, separation=4.0, dtype=np.float32)
    theta0 = np.zeros(4 * 4)
    f0 = loss(theta0)[0]
    theta, steps = _linear.newton_cg(loss, theta0, tol=1e-5, max_iter=200)
    f, g = loss(theta)
    assert f < 1e-3 * f0 and steps <= 200
    assert np.all(np.isfinite(theta))


def test_fit_softmax_switches_to_newton_after_the_warmup(monkeypatch):
    """A dense fit that L-BFGS does not finish in LBFGS_WARMUP iterations continues with
    Newton-CG; a one-hot (indexed) design keeps L-BFGS."""
    calls = []
    newton = _linear.newton_cg

    def counted(*args, **kwargs):
        calls.append(1)
        return newton(*args, **kwargs)

    monkeypatch.setattr(_linear, "newton_cg", counted)
    rng = np.random.default_rng(0)
    n = 2000
    y = rng.integers(0, 8, n)
    x = rng.standard_normal((n, 4)) + np.stack([np.sin(y), np.cos(y), y / 4, -y / 8], 1)
    w, b, iterations = _linear.fit_softmax(x, y[:, None], [8], balanced=True, tol=1e-6)
    assert calls and iterations > _linear.LBFGS_WARMUP
    calls.clear()
    codes = rng.integers(0, 6, (n, 3))
    x = _linear.one_hot_columns(codes)
    _linear.fit_softmax(x, (codes[:, :1] + codes[:, 1:2]) % 8, [8], balanced=True)
    assert not calls
