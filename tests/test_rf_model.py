"""DR-RFF losses on small known cases, the networks' contracts, and which step updates what."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from flax import nnx

from disentangle.methods import DataSpec, build_model
from disentangle.methods.dr_rff import model as rf_dr


def test_hypersphere_logits_are_scaled_cosines_bounded_by_s():
    rng = np.random.default_rng(0)
    z = jnp.asarray(rng.normal(size=(50, 8)) * 10)
    w = jnp.asarray(rng.normal(size=(8, 5)))
    logits = rf_dr.hypersphere_logits(z, w, 16.0)
    assert float(jnp.max(jnp.abs(logits))) <= 16.0 + 1e-4
    # A fingerprint along w_k gets logit s for class k; its negation -s.
    aligned = rf_dr.hypersphere_logits(3.0 * w[:, 2][None], w, 16.0)
    assert float(aligned[0, 2]) == pytest.approx(16.0, rel=1e-5)
    assert float(rf_dr.hypersphere_logits(-w[:, 2][None], w, 16.0)[0, 2]) == pytest.approx(
        -16.0, rel=1e-5)
    # Invariant to the norms of z and of the class weights.
    np.testing.assert_allclose(rf_dr.hypersphere_logits(0.1 * z, 7 * w, 16.0), logits,
                               rtol=1e-4, atol=1e-4)


def test_q_loss_hinge_is_zero_when_f_is_uniform_on_x_bar():
    x = jnp.ones((4, 8, 2))
    x_bar = x + 0.5  # squared error 0.25 per element
    labels = jnp.array([0, 1, 2, 0])
    loss, hinge = rf_dr.q_loss(jnp.zeros((4, 3)), labels, x_bar, x, alpha=10.0)
    assert float(hinge) == pytest.approx(0.0, abs=1e-6)
    assert float(loss) == pytest.approx(0.25, rel=1e-6)
    # Below uniform (F confidently wrong) the hinge stays zero.
    wrong = jax.nn.one_hot((labels + 1) % 3, 3) * 5.0
    assert float(rf_dr.q_loss(wrong, labels, x, x)[1]) == 0.0


def test_q_loss_hinge_value_when_f_still_knows_the_device():
    # K = 2, p(y | x_bar) = 3/4 for every sample: hinge = log(3/4) - log(1/2) = log(1.5).
    logits = jnp.array([[math.log(3.0), 0.0], [0.0, math.log(3.0)]])
    x = jnp.zeros((2, 4, 2))
    loss, hinge = rf_dr.q_loss(logits, jnp.array([0, 1]), x, x, alpha=10.0)
    assert float(hinge) == pytest.approx(math.log(1.5), rel=1e-5)
    assert float(loss) == pytest.approx(10 * math.log(1.5), rel=1e-5)


def test_g_loss_terms():
    x = jnp.zeros((2, 4, 2))
    z = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    # Perfect reconstruction, fingerprint of x_hat opposite to F(x): ||-z - z||^2 = 4.
    assert float(rf_dr.g_loss(x, x, -z, z, beta=10.0)) == pytest.approx(40.0)
    # Matching fingerprints: only the signal error (mean over elements) remains.
    assert float(rf_dr.g_loss(x + 2.0, x, z, z, beta=10.0)) == pytest.approx(4.0)


def test_f_loss_with_lambda_zero_is_cross_entropy():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(6, 4)))
    logits_hat = jnp.asarray(rng.normal(size=(6, 4)))
    y = jnp.array([0, 1, 2, 3, 0, 1])
    ce = float(rf_dr.cross_entropy(logits, y))
    manual = -np.mean(np.asarray(jax.nn.log_softmax(logits))[np.arange(6), np.asarray(y)])
    assert ce == pytest.approx(manual, rel=1e-5)
    assert float(rf_dr.f_loss(logits, logits_hat, y, 0.0)) == pytest.approx(ce, rel=1e-6)
    ce_hat = float(rf_dr.cross_entropy(logits_hat, y))
    assert float(rf_dr.f_loss(logits, logits_hat, y, 0.5)) == pytest.approx(
        0.5 * ce + 0.5 * ce_hat, rel=1e-6)
    assert float(rf_dr.cross_entropy(jnp.zeros((3, 2)), jnp.array([0, 1, 0]))) == pytest.approx(
        math.log(2.0))


def test_awgn_augmentation_has_the_drawn_snr():
    x = jnp.ones((2000, 64, 2)) / math.sqrt(2.0)  # unit power
    noisy = rf_dr.add_awgn(x, jax.random.key(0), (10.0, 10.0))
    noise_power = float(jnp.mean(jnp.sum(jnp.square(noisy - x), -1)))
    assert 10 * math.log10(1.0 / noise_power) == pytest.approx(10.0, abs=0.05)


def tiny_model():
    cfg = rf_dr.DRRFFConfig(embed_dim=8, channels=(4, 4), q_width=4, q_bottleneck=2,
                            g_width=4, scale=8.0)
    return rf_dr.DRRFF(16, 3, cfg, rngs=nnx.Rngs(0))


def params(module):
    return jax.tree.map(np.asarray, nnx.state(module, nnx.Param))


def changed(before, after) -> bool:
    return any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(before),
                                                         jax.tree.leaves(after)))


def test_networks_and_steps_update_only_their_own_parameters():
    model = tiny_model()
    x = jnp.asarray(np.random.default_rng(0).normal(size=(6, 16, 2)), jnp.float32)
    y = jnp.array([0, 1, 2, 0, 1, 2])
    z, logits = model.f(x)
    assert z.shape == (6, 8) and logits.shape == (6, 3)
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    assert float(jnp.max(jnp.abs(logits))) <= 8.0 + 1e-5
    np.testing.assert_array_equal(model.encode(x).mean, z)
    x_bar = model.qg.q(x)
    assert x_bar.shape == x.shape
    np.testing.assert_array_equal(model.qg.q(x), x_bar)  # no key: deterministic
    assert not np.array_equal(model.qg.q(x, jax.random.key(1)), x_bar)  # bottleneck noise
    assert model.qg.g(x_bar, z).shape == x.shape

    opt_f = nnx.Optimizer(model.f, optax.adam(1e-2), wrt=nnx.Param)
    opt_qg = nnx.Optimizer(model.qg, optax.adam(1e-2), wrt=nnx.Param)
    f0, qg0 = params(model.f), params(model.qg)
    metrics = rf_dr.qg_step(model.f, model.qg, opt_qg, x, y, jax.random.key(0))
    assert {"loss_q", "loss_g", "hinge"} <= set(metrics)
    assert not changed(f0, params(model.f)) and changed(qg0, params(model.qg))
    f1, qg1 = params(model.f), params(model.qg)
    rf_dr.f_step(model.f, model.qg, opt_f, x, y, jax.random.key(1))
    assert changed(f1, params(model.f)) and not changed(qg1, params(model.qg))
    losses = [float(rf_dr.ml_step(model.f, opt_f, x, y, jax.random.key(2))["loss_f"])
              for _ in range(15)]
    assert losses[-1] < losses[0]


def test_registered_as_dr_rff_with_the_dataset_spec():
    config = ml_collections.ConfigDict(dict(name="dr_rff", embed_dim=8, channels=[4, 4],
                                            q_width=4, q_bottleneck=2, g_width=4))
    model = build_model(config, DataSpec((16, 2), (5, 2)), nnx.Rngs(0))
    assert isinstance(model, rf_dr.DRRFF) and model.config.channels == (4, 4)
    assert model.f.num_classes == 5 and model.latent_dim == 8
    assert model.encode(jnp.zeros((3, 16, 2))).mean.shape == (3, 8)
