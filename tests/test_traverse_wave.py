"""Wave-equation residual of potential flows (Song et al., ICML 2023) on analytic fields."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle.methods.potential_flow.model import laplacian, wave_residual

L = 6


def _unit(v):
    return v / jnp.linalg.norm(v)


def _plane_wave(a, c):
    """u = sin(a.z - c t): u_tt = -c^2 u, laplacian u = -|a|^2 u."""
    return lambda z, t: jnp.sin(jnp.dot(a, z) - c * t)


@pytest.fixture
def points():
    key = jax.random.key(0)
    z = jax.random.normal(key, (16, L))
    t = jax.random.uniform(jax.random.key(1), (16,), minval=0.0, maxval=10.0)
    return z, t


def test_exact_residual_vanishes_on_a_solution(points):
    a = _unit(jnp.arange(1.0, L + 1.0))
    c = 1.7
    u = _plane_wave(a, c)
    res = jax.jit(jax.vmap(lambda z, t: wave_residual(u, z, t, jnp.asarray(c), "exact")))(*points)
    assert float(jnp.max(jnp.abs(res))) < 1e-4


def test_exact_residual_of_non_solution_has_known_value(points):
    # |a| = 2: residual = -c^2 u + c^2 * 4 u = 3 c^2 u.
    a = 2.0 * _unit(jnp.arange(1.0, L + 1.0))
    c = 0.8
    u = _plane_wave(a, c)
    z, t = points
    res = jax.jit(jax.vmap(lambda zi, ti: wave_residual(u, zi, ti, jnp.asarray(c), "exact")))(z, t)
    expected = 3 * c**2 * jnp.sin(z @ a - c * t)
    np.testing.assert_allclose(res, expected, atol=1e-4)
    assert float(jnp.mean(jnp.abs(res))) > 0.3
    # A quadratic: u = |z|^2 + t^2 -> u_tt = 2, laplacian = 2 L.
    q = lambda zz, tt: jnp.sum(zz**2) + tt**2
    quad = jax.jit(lambda zz, tt: wave_residual(q, zz, tt, jnp.asarray(0.5), "exact"))
    assert float(quad(z[0], t[0])) == pytest.approx(
        2 - 0.25 * 2 * L, abs=1e-4)


def test_hutchinson_residual_vanishes_on_a_solution_on_average(points):
    a = _unit(jnp.asarray([1.0, -2.0, 0.5, 3.0, 0.0, 1.0]))
    c = 1.3
    u = _plane_wave(a, c)
    z, t = points[0][0], points[1][0]
    res = wave_residual(u, z, t, jnp.asarray(c), "hutchinson", jax.random.key(3), num_probes=4096)
    scale = c**2 * abs(float(jnp.sin(jnp.dot(a, z) - c * t)))
    assert abs(float(res)) < 0.05 * max(scale, 0.1)
    bad = wave_residual(_plane_wave(2 * a, c), z, t, jnp.asarray(c), "hutchinson",
                        jax.random.key(3), num_probes=4096)
    np.testing.assert_allclose(bad, 3 * c**2 * jnp.sin(2 * jnp.dot(a, z) - c * t), rtol=0.05,
                               atol=0.02)


def test_hutchinson_is_unbiased_for_a_dense_hessian():
    # u = z^T A z / 2 + sin(w.z): dense Hessian, laplacian = tr(A) - |w|^2 sin(w.z).
    rng = np.random.default_rng(0)
    m = rng.normal(size=(L, L))
    A = jnp.asarray(m + m.T)
    w = jnp.asarray(rng.normal(size=L))
    u = lambda z, t: 0.5 * z @ A @ z + jnp.sin(w @ z) + 0.0 * t
    z = jnp.asarray(rng.normal(size=L))
    exact = laplacian(u, z, jnp.asarray(0.0), "exact")
    np.testing.assert_allclose(exact, jnp.trace(A) - jnp.sum(w**2) * jnp.sin(w @ z), rtol=1e-4)
    estimates = jax.jit(jax.vmap(lambda k: laplacian(u, z, jnp.asarray(0.0), "hutchinson", k, 1)))(
        jax.random.split(jax.random.key(7), 4000))
    stderr = float(jnp.std(estimates)) / np.sqrt(len(estimates))
    assert stderr > 0  # single probes do vary for a dense Hessian
    assert abs(float(jnp.mean(estimates) - exact)) < 4 * stderr


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="hutchinson"):
        laplacian(lambda z, t: jnp.sum(z), jnp.zeros(2), jnp.asarray(0.0), "trace")
