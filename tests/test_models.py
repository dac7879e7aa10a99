"""Objectives of the VAE family and QLAE equal their published formulas on a batch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from disentangle.methods import Batch, DataSpec, build_model
from disentangle.methods.gaussian import kl_to_standard_normal, log_normal
from disentangle.nn import reconstruction_loss

SPEC = DataSpec((8, 8, 1), (3, 4), 1000)


def _model(make_config, method, **overrides):
    config = make_config(method, **{"model.latent_dim": 3, **overrides})
    return build_model(config.model, SPEC, nnx.Rngs(0))


def _batch():
    return jnp.asarray(np.random.default_rng(0).random((16, 8, 8, 1)), jnp.float32)


def test_beta_vae_loss_is_recon_plus_beta_kl(make_config):
    model = _model(make_config, "beta_vae", **{"model.beta": 3.0})
    x, key = _batch(), jax.random.key(1)
    loss, terms = model.loss(Batch(x), key)
    rep = model.encode(x)
    z = rep.sample(key)
    recon = reconstruction_loss("bernoulli", model.decode(z), x).mean()
    kl = (0.5 * (rep.mean**2 + jnp.exp(rep.logvar) - 1 - rep.logvar)).sum(-1).mean()
    np.testing.assert_allclose(terms["kl"], kl, rtol=1e-6)
    np.testing.assert_allclose(loss, recon + 3.0 * kl, rtol=1e-6)


def test_beta_tcvae_loss_is_recon_plus_kl_plus_beta_minus_one_tc(make_config):
    model = _model(make_config, "beta_tcvae", **{"model.beta": 6.0})
    x, key = _batch(), jax.random.key(2)
    loss, terms = model.loss(Batch(x), key)
    rep = model.encode(x)
    z = rep.sample(key)
    # TC by MWS written out: log q(z_i) ~ logsumexp_m log q(z_i|x_m) - log(N M).
    n, m = SPEC.dataset_size, z.shape[0]
    pair = log_normal(z[:, None], rep.mean[None], rep.logvar[None])  # [M, M, L]
    log_qz = jax.nn.logsumexp(pair.sum(-1), 1) - np.log(n * m)
    log_prod = (jax.nn.logsumexp(pair, 1) - np.log(n * m)).sum(-1)
    tc = jnp.mean(log_qz - log_prod)
    kl = kl_to_standard_normal(rep.mean, rep.logvar).sum(-1).mean()
    recon = reconstruction_loss("bernoulli", model.decode(z), x).mean()
    np.testing.assert_allclose(terms["tc"], tc, rtol=1e-5)
    np.testing.assert_allclose(loss, recon + kl + 5.0 * tc, rtol=1e-5)


def test_qlae_loss_and_straight_through_gradient(make_config):
    # configs/qlae_dsprites.py has the authors' 0.001 for both; distinct large weights here
    # so that a swapped or missing term changes the loss well above float32 noise.
    model = _model(make_config, "qlae", **{"model.quantization_weight": 3.0,
                                           "model.commitment_weight": 5.0})
    x = _batch()
    loss, terms = model.loss(Batch(x), jax.random.key(0))
    z = model.encoder(x)
    q, _ = model.quantize(z)
    bce_mean = reconstruction_loss("bernoulli", model.decode(q), x).mean() / 64
    sq = jnp.mean((z - q) ** 2)
    np.testing.assert_allclose(loss, bce_mean + 3.0 * sq + 5.0 * sq, rtol=1e-5)
    np.testing.assert_allclose([terms["quantization"], terms["commitment"]], [sq, sq], rtol=1e-6)
    # Straight-through: the encoder receives the decoder's gradient although argmin has none.
    grads = nnx.grad(lambda m: m.loss(Batch(x), jax.random.key(0))[0])(model)
    assert float(jnp.abs(grads.encoder.net.layers[0].kernel[...]).sum()) > 0
    assert float(jnp.abs(grads.codebook[...]).sum()) > 0
