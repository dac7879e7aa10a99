"""Second-order help for the logistic fits (metrics/_linear.py): the host Newton-CG of the
dense fits (exact curvature, the same optimum as a long L-BFGS run, robust on separable
data) and the Kronecker preconditioner of the unpenalised one-hot fits."""

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


def test_kronecker_factors_are_the_hessian_when_probabilities_are_shared():
    """With one probability vector p for every sample (only intercepts), the Hessian is
    exactly ``sum_i w_i x_i x_i^T (x) (diag p - p p^T)``: the factors' squares multiply to it,
    and their inverse roots invert it on zero-sum class vectors."""
    rng = np.random.default_rng(2)
    n, num_d, num_c = 500, 3, 4
    x1 = np.concatenate([rng.standard_normal((n, num_d)), np.ones((n, 1))], axis=1)
    w = rng.random(n)
    w /= w.sum()
    theta = np.zeros((num_d + 1, num_c))
    theta[-1] = rng.standard_normal(num_c)
    a_inv, a_sqrt, b_inv, b_sqrt = _linear.kronecker_factors(x1, w, theta.ravel(), num_c)
    p = np.exp(theta[-1]) / np.exp(theta[-1]).sum()
    h = np.kron((x1 * w[:, None]).T @ x1, np.diag(p) - np.outer(p, p))  # theta's (d, c) order
    np.testing.assert_allclose(np.kron(a_sqrt @ a_sqrt, b_sqrt @ b_sqrt), h, atol=1e-10)
    v = rng.standard_normal((num_d + 1, num_c))
    v -= v.mean(axis=1, keepdims=True)
    np.testing.assert_allclose(np.kron(a_inv @ a_inv, b_inv @ b_inv) @ h @ v.ravel(),
                               v.ravel(), atol=1e-8)
    # U coordinates and back: the identity on zero-sum classes
    fun = _linear._Reparametrised(None, (a_inv, a_sqrt, b_inv, b_sqrt), num_c)
    np.testing.assert_allclose(fun.theta(fun.coords(v.ravel())), v.ravel(), atol=1e-10)


def test_one_hot_fit_is_kronecker_preconditioned():
    """An unpenalised fit on correlated one-hot codes with rare values (InfoE's case) runs
    L-BFGS on the preconditioned coordinates: about a third of plain L-BFGS's iterations at
    the same tolerance, to the same objective (within 1e-4 of a long run's)."""
    rng = np.random.default_rng(0)
    n, values, num_c = 4000, 6, 8
    z0 = rng.choice(values, n, p=[0.4, 0.3, 0.15, 0.1, 0.04, 0.01])
    codes = np.stack([z0, (z0 + rng.integers(0, 2, n)) % values, rng.integers(0, values, n),
                      (2 * z0 + rng.integers(0, 3, n)) % values], axis=1)
    y = (codes[:, 0] + 3 * codes[:, 2] + rng.integers(0, 2, n)) % num_c
    x = _linear.one_hot_columns(codes)
    w, b, iterations = _linear.fit_softmax(x, y[:, None], [num_c], balanced=True, tol=1e-5)
    x1 = np.concatenate([x, np.ones((n, 1))], axis=1).astype(np.float32)
    sw = _linear.balanced_weights(y[:, None], np.array([num_c]))[0]
    loss = _linear._SoftmaxLoss(x1, y, (sw / sw.sum()).astype(np.float32), num_c, 0.0)
    f = loss(np.concatenate([w[0], b[0][None]]).ravel())[0]
    start = np.zeros(x1.shape[1] * num_c)
    plain = minimize(loss, start, jac=True, method="L-BFGS-B",
                     options={"gtol": 1e-5, "ftol": 1e-10, "maxiter": 2000,
                              "maxcor": _linear.lbfgs_memory(n)})
    long = minimize(loss, start, jac=True, method="L-BFGS-B",
                    options={"gtol": 1e-9, "ftol": 1e-16, "maxiter": 20000, "maxcor": 50})
    assert iterations < plain.nit / 2, (iterations, plain.nit)
    assert f <= min(plain.fun, long.fun) + 1e-4, (f, plain.fun, long.fun)
