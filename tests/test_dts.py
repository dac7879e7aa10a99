"""DTS and the recurrent VAE baselines: decomposition, objective, recurrences, MI weight."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from disentangle.errors import ConfigError
from disentangle.methods import Batch, DataSpec, build_model
from disentangle.methods.dts.dts import DTS
from disentangle.methods.dts.lstm_vae import LSTMVAE, active_units, kl_diagnostics
from disentangle.methods.gaussian import mws_decomposition

SPEC = DataSpec(observation_shape=(12, 2), dataset_size=100)
# one compiled program per call shape instead of op-by-op dispatch
mws = jax.jit(mws_decomposition, static_argnames=("dataset_size", "groups"))
loss_of = nnx.jit(lambda model, x, key: model.loss(Batch(x), key))


# ----------------------------------------------------------------------------- decomposition
def brute_force_terms(z, mean, logvar, n):
    """I, TC, dimKL by explicit loops over the MWS formula (numpy, float64)."""
    z, mean, logvar = (np.asarray(a, np.float64) for a in (z, mean, logvar))
    m, L = z.shape
    lq = lambda zz, i, dims: sum(-0.5 * (math.log(2 * math.pi) + logvar[i, d]
                                         + (zz[d] - mean[i, d]) ** 2 / math.exp(logvar[i, d]))
                                 for d in dims)
    lse = lambda v: max(v) + math.log(sum(math.exp(a - max(v)) for a in v))
    mi = tc = dim = 0.0
    for a in range(m):
        log_qzx = lq(z[a], a, range(L))
        log_qz = lse([lq(z[a], b, range(L)) for b in range(m)]) - math.log(n * m)
        log_qzj = sum(lse([lq(z[a], b, [d]) for b in range(m)]) - math.log(n * m)
                      for d in range(L))
        log_pz = sum(-0.5 * (math.log(2 * math.pi) + z[a, d] ** 2) for d in range(L))
        mi += (log_qzx - log_qz) / m
        tc += (log_qz - log_qzj) / m
        dim += (log_qzj - log_pz) / m
    return mi, tc, dim


def test_decomposition_adds_up_and_matches_brute_force():
    k1, k2, k3 = jax.random.split(jax.random.key(0), 3)
    mean = jax.random.normal(k1, (6, 3))
    logvar = 0.5 * jax.random.normal(k2, (6, 3))
    z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(k3, (6, 3))
    parts = mws(z, mean, logvar, dataset_size=50, groups=((0,), (1, 2)))
    mi, tc, dim = brute_force_terms(z, mean, logvar, 50)
    np.testing.assert_allclose([parts["mi"], parts["tc"], parts["dimwise_kl"]], [mi, tc, dim],
                               rtol=1e-4, atol=1e-4)
    # I + TC + dimKL = E[log q(z|x) - log p(z)], the Monte-Carlo KL they decompose
    zn, mn, lv = (np.asarray(a, np.float64) for a in (z, mean, logvar))
    # log q(z|x) - log p(z) = sum_j [-(lv + (z - mu)^2 / s^2) + z^2] / 2
    kl_mc = np.mean((-0.5 * (lv + (zn - mn) ** 2 / np.exp(lv)) + 0.5 * zn**2).sum(-1))
    total = parts["mi"] + parts["tc"] + parts["dimwise_kl"]
    np.testing.assert_allclose([total, parts["kl_mc"]], [kl_mc, kl_mc], rtol=1e-5)
    np.testing.assert_allclose(parts["group_tc"] + parts["within_group_tc"], parts["tc"])


def test_decomposition_exact_mixtures():
    """Well-separated posteriors on the evaluation set itself (dataset size 1: q(z) exact)."""
    tiny = jnp.full((4, 2), math.log(1e-4))
    # product grid of means: q(z) = q(z1) q(z2) exactly -> TC = 0, I = log 4
    grid = jnp.array([[-10.0, -10.0], [-10.0, 10.0], [10.0, -10.0], [10.0, 10.0]])
    p = mws(grid, grid, tiny, dataset_size=1, groups=((0,), (1,)))
    np.testing.assert_allclose([p["mi"], p["tc"], p["group_tc"]], [math.log(4), 0, 0], atol=1e-5)
    # z1 = z2 (two clusters on the diagonal): I = log 2, TC = log 2, all of it between groups
    diag = jnp.array([[-10.0, -10.0], [10.0, 10.0]])
    p = mws(diag, diag, tiny[:2], dataset_size=1, groups=((0,), (1,)))
    np.testing.assert_allclose([p["mi"], p["tc"], p["group_tc"]], [math.log(2)] * 3, atol=1e-5)
    p = mws(diag, diag, tiny[:2], dataset_size=1, groups=((0, 1),))
    np.testing.assert_allclose([p["group_tc"], p["within_group_tc"]], [0, math.log(2)], atol=1e-5)


# ----------------------------------------------------------------------------- objectives
@pytest.fixture(scope="module")
def batch():
    t = jnp.linspace(0, 1, 12)
    phase = jax.random.uniform(jax.random.key(1), (16, 1, 1)) * 6
    return jnp.concatenate([jnp.sin(6 * t[None, :, None] + phase),
                            jnp.cos(3 * t[None, :, None] + phase)], -1)


def test_objectives_are_the_stated_sums(batch):
    key = jax.random.key(2)
    dts = DTS(SPEC, alpha=0.3, beta=5.0, gamma=2.0, group_weight=1.5, latent_dim=4,
              hidden=8, rngs=nnx.Rngs(0))
    loss, t = loss_of(dts, batch, key)
    assert dts.groups == ((0, 1), (2, 3))
    expect = (t["reconstruction"] + 0.3 * t["mi"] + 5.0 * t["tc"] + 2.0 * t["dimwise_kl"]
              + 1.5 * t["group_tc"])
    np.testing.assert_allclose(loss, expect, rtol=1e-5)
    np.testing.assert_allclose(sum(t[f"kl_{j}"] for j in range(4)), t["kl"], rtol=1e-5)
    assert 0 <= t["active_units"] <= 4
    # unit weights would give the MWS estimate of the KL (the negative ELBO)
    np.testing.assert_allclose(t["mi"] + t["tc"] + t["dimwise_kl"], t["kl_mc"], rtol=1e-4,
                               atol=1e-4)
    vae = LSTMVAE(SPEC, latent_dim=4, hidden=8, rngs=nnx.Rngs(0))
    loss, t = loss_of(vae, batch, key)
    np.testing.assert_allclose(loss, t["reconstruction"] + t["kl"], rtol=1e-6)
    # reconstruction = sum (x - xhat)^2 / (2 obs_std^2), batch mean
    np.testing.assert_allclose(t["reconstruction"], t["mse"] * 12 * 2 / (2 * 0.1**2), rtol=1e-5)


def test_active_units_counts_variance_of_means():
    mean = jnp.stack([jnp.linspace(-1, 1, 50), jnp.full(50, 3.0), 0.05 * jnp.linspace(-1, 1, 50),
                      0.2 * jnp.linspace(-1, 1, 50)], axis=1)
    # variances: 0.347, 0, 0.00087, 0.0139 -> units 0 and 3 are active
    assert float(active_units(mean)) == 2.0


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_decoder_is_causal_and_generation_matches_teacher_forcing(cell):
    model = LSTMVAE(SPEC, latent_dim=3, hidden=8, cell=cell, rngs=nnx.Rngs(0))
    z = jax.random.normal(jax.random.key(0), (5, 3))
    x = jax.random.normal(jax.random.key(1), (5, 12, 2))
    teacher = nnx.jit(lambda m, z, x: m.decoder(z, x))
    out = teacher(model, z, x)
    bumped = teacher(model, z, x.at[:, 7].add(1.0))
    np.testing.assert_allclose(out[:, :8], bumped[:, :8], atol=1e-6)  # step t sees x_<t only
    assert np.abs(np.asarray(out[:, 8] - bumped[:, 8])).max() > 1e-4
    generated = nnx.jit(lambda m, z: m.decode(z))(model, z)  # own outputs fed back
    np.testing.assert_allclose(teacher(model, z, generated), generated, atol=1e-5)
    assert model.encode(x).mean.shape == (5, 3)


def test_config_errors():
    import ml_collections

    cfg = ml_collections.ConfigDict({"name": "dts", "latent_dim": 4, "cell": "rnn"})
    with pytest.raises(ConfigError, match="model.cell='rnn'"):
        build_model(cfg, SPEC, nnx.Rngs(0))
    cfg = ml_collections.ConfigDict({"name": "dts", "latent_dim": 4, "latent_groups": (3, 2)})
    with pytest.raises(ConfigError, match="adding up to model.latent_dim=4"):
        build_model(cfg, SPEC, nnx.Rngs(0))


# ----------------------------------------------------------------------------- MI weight
def train_in_one_program(model, opt, data, steps, batch_size=32):
    """``steps`` Adam steps on random batches of ``data``, all inside one jitted fori_loop."""
    graphdef, state = nnx.split((model, opt))
    n = data.shape[0]

    @jax.jit
    def train(state):
        def body(i, state):
            model, opt = nnx.merge(graphdef, state)
            idx = jax.random.randint(jax.random.fold_in(jax.random.key(4), i), (batch_size,), 0,
                                     n)
            grads = nnx.grad(lambda m: m.loss(Batch(data[idx]), jax.random.key(i))[0])(model)
            opt.update(model, grads)
            return nnx.state((model, opt))

        return jax.lax.fori_loop(0, steps, body, state)

    nnx.update((model, opt), train(state))


@pytest.mark.slow
def test_mi_weight_changes_measured_mutual_information():
    """alpha = +1 (the ELBO's weight) vs alpha = -1 (MI rewarded), same seed, data, steps.

    The decoder is autoregressive and the likelihood weak (obs_std 1), the setting where the
    KL vanishes: with alpha = 1 I(x;z) collapses to 0, with alpha = -1 it stays well above.
    I(x;z) is measured on the 128 training series with the exact aggregate posterior.
    """
    n = 128
    t = jnp.linspace(0, 1, 10)
    params = jax.random.uniform(jax.random.key(3), (n, 2))
    data = jnp.sin(2 * math.pi * (1 + 2 * params[:, :1]) * t + 6 * params[:, 1:])[..., None]
    spec = DataSpec(observation_shape=(10, 1), dataset_size=n)
    measured = {}
    for alpha in (1.0, -1.0):
        model = DTS(spec, alpha=alpha, beta=1.0, gamma=1.0, group_weight=0.0, latent_dim=2,
                    hidden=8, obs_std=1.0, rngs=nnx.Rngs(0))
        train_in_one_program(model, nnx.Optimizer(model, optax.adam(1e-2), wrt=nnx.Param), data,
                             steps=120)
        measured[alpha] = kl_diagnostics(model, np.asarray(data), jax.random.key(5))
    # I(x;z) <= log 128 = 4.85 here; measured: about 0.0 (alpha 1) and 1.9 (alpha -1)
    assert measured[1.0]["mi"] < 0.3 and measured[1.0]["active_units"] == 0, measured[1.0]
    assert measured[-1.0]["mi"] > 1.5 and measured[-1.0]["active_units"] >= 1, measured[-1.0]


def test_study_notes_count_alive_seeds_and_show_the_raw_baseline():
    from experiments import dts, harness
    figs = {"vanish1/lstm_vae/mi": [0.0, 0.01, -0.002], "vanish1/dts/mi": [3.9, 0.2, 4.0],
            "vanish1/lstm_vae/active_units": [0, 0, 0], "vanish1/dts/active_units": [1, 0, 2],
            "proc/dts/infom": [0.1, 0.2, 0.3], "ucr/mean/raw_logreg": [0.85, 0.85, 0.85],
            "ucr/mean/dts": [0.8, 0.7, 0.9]}
    text = dts.notes({"figures": {k: harness.interval(v) for k, v in figs.items()}})
    assert "| lstm_vae | 0.00, 0.01, -0.00 | 0 of 3 | 0.000 [0.000, 0.000] |" in text
    assert "| dts | 3.90, 0.20, 4.00 | 2 of 3 | 1.000" in text
    assert "| dts | 0.200 [" in text and "raw_logreg 0.850" in text and "dts 0.800 [" in text
