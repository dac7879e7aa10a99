"""The baselines of Locatello et al. (2019, 2020): each loss equals its formula computed
independently in numpy on a small batch; the permutation and pair sampler keep what they
must; AnnealedVAE's capacity follows the trainer's step."""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from disentangle import train as train_lib
from disentangle.config import load_config
from disentangle.data import get_dataset
from disentangle.data.pairs import PairedData, change_factors
from disentangle.errors import ConfigError, UserError
from disentangle.methods import Batch, DataSpec, Update
from disentangle.methods.vae.annealed_vae import AnnealedVAE, capacity
from disentangle.methods.vae.dip_vae import DIPVAEI, DIPVAEII, batch_covariance, dip_penalties
from disentangle.methods.vae.factor_vae import (
    Discriminator,
    FactorVAE,
    discriminator_cross_entropy,
    discriminator_tc,
    permute_dims,
)
from disentangle.methods.weak.ada import (
    AdaGVAE,
    AdaMLVAE,
    gvae_average,
    mlvae_average,
    shared_dimensions,
)

ROOT = Path(__file__).resolve().parents[1]
SPEC = DataSpec(observation_shape=(6, 6, 1))
TINY = {"latent_dim": 3, "network": "mlp_small"}
KEY = jax.random.key(7)


def images(n: int, seed: int = 0, shape=(6, 6, 1)) -> jax.Array:
    return jnp.asarray(np.random.default_rng(seed).random((n, *shape)), jnp.float32)


def f64(a) -> np.ndarray:
    return np.asarray(a, np.float64)


def np_bce(logits, x) -> float:
    """Mean over examples of the pixel-summed Bernoulli NLL: softplus(l) - x l."""
    logits, x = f64(logits), f64(x)
    per = np.logaddexp(0.0, logits) - x * logits
    return float(per.reshape(len(per), -1).sum(1).mean())


def np_kl(mean, logvar) -> float:
    mean, logvar = f64(mean), f64(logvar)
    return float((0.5 * (mean**2 + np.exp(logvar) - 1 - logvar)).sum(1).mean())


def encoded(model, x):
    rep = model.encode(x)
    return f64(rep.mean), f64(rep.logvar)


def sample_as_model(mean, logvar, key, shape):
    """z = mean + exp(logvar / 2) eps with the key the model draws eps with."""
    eps = f64(jax.random.normal(key, shape))
    return mean + np.exp(0.5 * logvar) * eps


def np_discriminator(model: FactorVAE, z: np.ndarray) -> np.ndarray:
    """D's logits [n, 2] from its weights: Linear + LeakyReLU(0.2) layers, then Linear."""
    h = f64(z)
    for layer in model.discriminator.hidden:
        h = h @ f64(layer.kernel[...]) + f64(layer.bias[...])
        h = np.where(h > 0, h, 0.2 * h)
    out = model.discriminator.out
    return h @ f64(out.kernel[...]) + f64(out.bias[...])


def np_log_softmax(logits: np.ndarray) -> np.ndarray:
    return logits - np.logaddexp(logits[:, :1], logits[:, 1:])


# ----------------------------------------------------------------------------- FactorVAE
def test_permute_dims_keeps_each_marginal_and_permutes_dimensions_independently():
    z = jnp.asarray(np.random.default_rng(0).normal(size=(64, 5)), jnp.float32)
    zp = np.asarray(permute_dims(z, KEY))
    z = np.asarray(z)
    np.testing.assert_array_equal(np.sort(zp, 0), np.sort(z, 0))  # same values per column
    # The row each value came from, per column: a permutation, different across columns.
    rows = np.stack([np.argsort(z[:, j])[np.argsort(np.argsort(zp[:, j]))] for j in range(5)])
    assert all(sorted(r) == list(range(64)) for r in rows)
    assert len({tuple(r) for r in rows}) == 5 and not (rows == np.arange(64)).all(1).any()


def test_factor_vae_loss_is_recon_plus_kl_plus_gamma_times_the_discriminator_tc():
    model = FactorVAE(SPEC, **TINY, gamma=7.0, discriminator_width=8, discriminator_depth=2,
                      rngs=nnx.Rngs(0))
    x = images(16)
    loss, terms = model.loss(Batch(x), KEY)
    mean, logvar = encoded(model, x)
    z = sample_as_model(mean, logvar, KEY, mean.shape)
    logits = np_discriminator(model, z)
    tc = float(np.mean(logits[:, 0] - logits[:, 1]))
    recon = np_bce(model.decode(jnp.asarray(z, jnp.float32)), x)
    expected = recon + np_kl(mean, logvar) + 7.0 * tc
    assert float(terms["tc"]) == pytest.approx(tc, rel=1e-4, abs=1e-5)
    assert abs(tc) > 1e-3  # an untrained D gives a non-zero estimate: the check has teeth
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_factor_vae_discriminator_loss_is_the_cross_entropy_of_real_vs_permuted():
    model = FactorVAE(SPEC, **TINY, discriminator_width=8, discriminator_depth=2,
                      rngs=nnx.Rngs(1))
    x = images(32, seed=1)
    loss, terms = model.discriminator_loss(Batch(x), KEY)
    sample_key, perm_key = jax.random.split(KEY)
    mean, logvar = encoded(model, x)
    z = sample_as_model(mean, logvar, sample_key, mean.shape)
    z_perm = f64(permute_dims(jnp.asarray(z, jnp.float32), perm_key))
    real, fake = np_discriminator(model, z), np_discriminator(model, z_perm)
    expected = -0.5 * (np_log_softmax(real)[:, 0].mean() + np_log_softmax(fake)[:, 1].mean())
    assert float(loss) == pytest.approx(expected, rel=1e-5)
    accuracy = 0.5 * ((real[:, 0] > real[:, 1]).mean() + (fake[:, 1] > fake[:, 0]).mean())
    assert float(terms["discriminator_accuracy"]) == pytest.approx(accuracy)


def test_factor_vae_groups_split_the_parameters_and_the_schedule_updates_both():
    model = FactorVAE(SPEC, **TINY, discriminator_width=8, discriminator_depth=2,
                      rngs=nnx.Rngs(0))
    groups = model.param_groups()
    _, vae, disc, rest = nnx.split(model, *groups.values(), ...)
    n_all = sum(a.size for a in jax.tree.leaves(nnx.state(model, nnx.Param)))
    n_disc = sum(a.size for a in jax.tree.leaves(disc))
    assert n_disc == 3 * 8 + 8 * 8 + 8 + 8 * 2 + 2 + 8  # 3 -> 8 -> 8 -> 2 with biases
    assert sum(a.size for a in jax.tree.leaves(vae)) + n_disc == n_all
    assert not jax.tree.leaves(rest)
    assert model.schedule(1) == (Update("model", "loss"),
                                 Update("discriminator", "discriminator_loss"))
    with pytest.raises(ConfigError, match="discriminator_width=0"):
        FactorVAE(SPEC, **TINY, discriminator_width=0, rngs=nnx.Rngs(0))


@pytest.mark.slow
@pytest.mark.parametrize("rho", [0.0, 0.8])
def test_trained_discriminator_estimates_the_gaussian_total_correlation(rho):
    """D trained on its cross-entropy (real vs permuted) gives mean(logit_0 - logit_1) near
    the analytic TC of a Gaussian with correlation rho between two of three dimensions,
    -1/2 log(1 - rho^2) (0.511 for rho = 0.8; 0 for independent dimensions)."""
    import optax

    chol = jnp.linalg.cholesky(jnp.array([[1, rho, 0], [rho, 1, 0], [0, 0, 1.0]]))
    d = Discriminator(3, 64, 2, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(d, optax.adam(1e-3, b1=0.5, b2=0.9), wrt=nnx.Param)

    @nnx.jit
    def step(d, opt, key):
        data_key, perm_key = jax.random.split(key)
        z = jax.random.normal(data_key, (256, 3)) @ chol.T
        grads = nnx.grad(lambda d: discriminator_cross_entropy(
            d(z), d(permute_dims(z, perm_key))))(d)
        opt.update(d, grads)

    for i in range(1500):
        step(d, opt, jax.random.key(i))
    z = jax.random.normal(jax.random.key(10**6), (20_000, 3)) @ chol.T
    assert float(discriminator_tc(d(z))) == pytest.approx(-0.5 * np.log(1 - rho**2), abs=0.08)


# ----------------------------------------------------------------------------- DIP-VAE
def test_batch_covariance_and_penalties_match_numpy():
    v = np.random.default_rng(2).normal(size=(40, 4)) * [1.0, 2.0, 0.5, 1.0]
    cov = np.asarray(batch_covariance(jnp.asarray(v, jnp.float32)), np.float64)
    np.testing.assert_allclose(cov, np.cov(v, rowvar=False, bias=True), rtol=1e-5, atol=1e-6)
    off, diag = (float(a) for a in dip_penalties(jnp.asarray(cov)))
    assert off == pytest.approx(sum(cov[i, j] ** 2 for i in range(4) for j in range(4) if i != j),
                                rel=1e-5)
    assert diag == pytest.approx(sum((cov[i, i] - 1) ** 2 for i in range(4)), rel=1e-5)
    # Whitened codes have C = I exactly: both penalties vanish.
    white = v - v.mean(0)
    white = white @ np.linalg.inv(np.linalg.cholesky(np.cov(white, rowvar=False, bias=True))).T
    off, diag = dip_penalties(batch_covariance(jnp.asarray(white, jnp.float32)))
    assert float(off) < 1e-9 and float(diag) < 1e-9


@pytest.mark.parametrize("cls", [DIPVAEI, DIPVAEII])
def test_dip_vae_loss_is_recon_plus_kl_plus_covariance_penalty(cls):
    model = cls(SPEC, **TINY, lambda_od=3.0, lambda_d=11.0, rngs=nnx.Rngs(0))
    x = images(16, seed=3)
    loss, terms = model.loss(Batch(x), KEY)
    mean, logvar = encoded(model, x)
    cov = np.cov(mean, rowvar=False, bias=True)
    if cls is DIPVAEII:
        cov = cov + np.diag(np.exp(logvar).mean(0))
    off = (cov**2).sum() - (np.diag(cov) ** 2).sum()
    diag = ((np.diag(cov) - 1) ** 2).sum()
    z = sample_as_model(mean, logvar, KEY, mean.shape)
    recon = np_bce(model.decode(jnp.asarray(z, jnp.float32)), x)
    assert float(terms["dip_off_diagonal"]) == pytest.approx(off, rel=1e-4, abs=1e-9)
    assert float(terms["dip_diagonal"]) == pytest.approx(diag, rel=1e-5)
    assert float(loss) == pytest.approx(recon + np_kl(mean, logvar) + 3.0 * off + 11.0 * diag,
                                        rel=1e-5)


# ----------------------------------------------------------------------------- AnnealedVAE
def test_capacity_grows_linearly_from_zero_at_the_first_step_to_c_max():
    steps = jnp.asarray([1, 2, 51, 101, 102, 10_000])
    np.testing.assert_allclose(np.asarray(capacity(steps, 25.0, 100)),
                               [0.0, 0.25, 12.5, 25.0, 25.0, 25.0], rtol=1e-6)


def test_annealed_vae_loss_is_recon_plus_gamma_abs_kl_minus_capacity():
    model = AnnealedVAE(SPEC, **TINY, gamma=1000.0, c_max=5.0, iteration_threshold=40,
                        rngs=nnx.Rngs(0))
    x = images(8, seed=4)
    mean, logvar = encoded(model, x)
    z = sample_as_model(mean, logvar, KEY, mean.shape)
    recon, kl = np_bce(model.decode(jnp.asarray(z, jnp.float32)), x), np_kl(mean, logvar)
    for step, c in [(1, 0.0), (9, 1.0), (21, 2.5), (400, 5.0)]:
        loss, terms = model.loss(Batch(x, step=jnp.asarray(step, jnp.int32)), KEY)
        assert float(terms["capacity"]) == pytest.approx(c)
        assert float(loss) == pytest.approx(recon + 1000.0 * abs(kl - c), rel=1e-5)
    with pytest.raises(UserError, match="Batch.x, step=STEP|step"):
        model.loss(Batch(x), KEY)


@pytest.mark.slow
def test_the_trainer_hands_the_step_to_the_objective():
    """Three jitted train steps log the capacity of steps 1, 2, 3."""
    config = load_config(ROOT / "configs/annealed_vae_dsprites.py", [
        "model.network=mlp_small", "model.latent_dim=3", "train.batch_size=4",
        "model.iteration_threshold=4", "model.c_max=8"])
    s = train_lib.setup(config)
    step_fn = train_lib.make_train_step(s, (Update(),))
    state = (s.params, s.opt_state, jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32))
    seen = []
    for step in (1, 2, 3):
        *state, logs = step_fn(*state, jnp.asarray(step, jnp.int32))
        seen.append(float(logs["capacity"]))
    assert seen == [0.0, 2.0, 4.0]


# ----------------------------------------------------------------------------- Ada-GVAE
def np_kl_pair(m1, lv1, m2, lv2):
    """KL(N(m1, e^lv1) || N(m2, e^lv2)) per dimension."""
    return 0.5 * (lv2 - lv1 + (np.exp(lv1) + (m1 - m2) ** 2) / np.exp(lv2) - 1)


def test_shared_dimensions_are_those_below_the_midpoint_of_the_per_dimension_kl():
    m1 = np.zeros((2, 5))
    lv1 = np.zeros((2, 5))
    m2 = np.array([[0.0, 3.0, 0.1, 2.5, 0.0], [1.0, 1.0, 1.0, 1.0, 4.0]])
    lv2 = np.array([[0.0, 0.0, 0.0, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0, 0.0]])
    delta = np_kl_pair(m1, lv1, m2, lv2)
    expected = delta < 0.5 * (delta.max(1, keepdims=True) + delta.min(1, keepdims=True))
    np.testing.assert_array_equal(expected, [[1, 0, 1, 0, 1], [1, 1, 1, 1, 0]])  # the case
    got = shared_dimensions(*[(jnp.asarray(m, jnp.float32), jnp.asarray(lv, jnp.float32))
                              for m, lv in ((m1, lv1), (m2, lv2))])
    np.testing.assert_array_equal(np.asarray(got), expected)


def test_group_averages_gvae_mean_and_variance_mlvae_half_precision_product():
    rng = np.random.default_rng(5)
    m1, m2, lv1, lv2 = rng.normal(size=(4, 3, 4))
    q1, q2 = (jnp.asarray(m1), jnp.asarray(lv1)), (jnp.asarray(m2), jnp.asarray(lv2))
    v1, v2 = np.exp(lv1), np.exp(lv2)
    mean, logvar = gvae_average(q1, q2)
    np.testing.assert_allclose(mean, (m1 + m2) / 2, rtol=1e-6)
    np.testing.assert_allclose(np.exp(logvar), (v1 + v2) / 2, rtol=1e-5)
    # ML-VAE: the product N(m1, 2 v1) N(m2, 2 v2), normalised (precisions add).
    precision = 1 / (2 * v1) + 1 / (2 * v2)
    mean, logvar = mlvae_average(q1, q2)
    np.testing.assert_allclose(np.exp(logvar), 1 / precision, rtol=1e-5)
    np.testing.assert_allclose(mean, (m1 / (2 * v1) + m2 / (2 * v2)) / precision, rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("cls", [AdaGVAE, AdaMLVAE])
def test_ada_vae_loss_averages_the_shared_posteriors_and_the_pair(cls):
    model = cls(SPEC, **TINY, beta=3.0, rngs=nnx.Rngs(0))
    x = images(12, seed=6).reshape(6, 2, 6, 6, 1)
    loss, terms = model.loss(Batch(x), KEY)
    mean, logvar = encoded(model, x.reshape(12, 6, 6, 1))
    m1, m2, lv1, lv2 = mean[0::2], mean[1::2], logvar[0::2], logvar[1::2]
    delta = np_kl_pair(m1, lv1, m2, lv2)
    shared = delta < 0.5 * (delta.max(1, keepdims=True) + delta.min(1, keepdims=True))
    v1, v2 = np.exp(lv1), np.exp(lv2)
    if cls is AdaGVAE:
        avg_m, avg_v = (m1 + m2) / 2, (v1 + v2) / 2
    else:
        avg_v = 1 / (1 / (2 * v1) + 1 / (2 * v2))
        avg_m = avg_v * (m1 / (2 * v1) + m2 / (2 * v2))
    new = np.empty((6, 2, 3, 2))
    for i, (m, v) in enumerate(((m1, v1), (m2, v2))):
        new[:, i, :, 0] = np.where(shared, avg_m, m)
        new[:, i, :, 1] = np.log(np.where(shared, avg_v, v))
    mean, logvar = new[..., 0].reshape(12, 3), new[..., 1].reshape(12, 3)
    z = sample_as_model(mean, logvar, KEY, mean.shape)
    recon = np_bce(model.decode(jnp.asarray(z, jnp.float32)), x.reshape(12, 6, 6, 1))
    kl = np_kl(mean, logvar)
    assert 0 < shared.sum() < shared.size
    assert float(terms["shared_dims"]) == pytest.approx(shared.sum(1).mean())
    assert float(terms["kl"]) == pytest.approx(kl, rel=1e-4)
    assert float(loss) == pytest.approx(recon + 3.0 * kl, rel=1e-5)
    with pytest.raises(UserError, match=r"\[n, 2, \*obs\]"):
        model.loss(Batch(x[:, 0]), KEY)


# ----------------------------------------------------------------------------- pairs
@pytest.fixture(scope="module")
def dsprites():
    return get_dataset("dsprites")


@pytest.mark.parametrize("k", [1, 3])
def test_pairs_differ_in_exactly_k_factors_on_host_and_device(dsprites, k):
    pairs = PairedData(dsprites, k)
    f_host, x_host = pairs.sample(16, np.random.default_rng(0))
    f_dev, x_dev = jax.jit(pairs.device_sampler(), static_argnums=1)(KEY, 16)
    for f, x in ((f_host, x_host), (np.asarray(f_dev), np.asarray(x_dev))):
        assert f.shape == (16, 2, 5) and x.shape == (16, 2, 64, 64, 1)
        np.testing.assert_array_equal((f[:, 0] != f[:, 1]).sum(1), k)
        assert ((f >= 0) & (f < np.asarray(dsprites.factor_sizes))).all()
        np.testing.assert_allclose(x[:8, 1], dsprites.sample_observations_from_factors(
            f[:8, 1], np.random.default_rng(0)), atol=1e-6)


def test_random_k_covers_1_to_K_minus_1_and_new_values_are_uniform_among_the_others():
    sizes = (1, 3, 4, 2, 5)  # the size-1 factor can never change
    first = jnp.asarray(np.random.default_rng(1).integers(0, sizes, (4000, 5)), jnp.int32)
    second = np.asarray(change_factors(KEY, first, sizes, -1))
    changed = np.asarray(first) != second
    assert not changed[:, 0].any() and ((second >= 0) & (second < np.asarray(sizes))).all()
    counts = np.bincount(changed.sum(1), minlength=5)
    assert counts[0] == counts[4] == 0 and (np.abs(counts[1:4] / 4000 - 1 / 3) < 0.03).all()
    # Factor 4 (5 values) moved from 0: to each of 1..4 equally often.
    moved = second[(np.asarray(first)[:, 4] == 0) & changed[:, 4], 4]
    assert set(moved) == {1, 2, 3, 4}
    assert (np.abs(np.bincount(moved, minlength=5)[1:] / len(moved) - 0.25) < 0.08).all()


def test_bad_k_is_refused_with_the_accepted_range(dsprites):
    for k in (0, 5, -2):
        with pytest.raises(ConfigError, match=r"model.k=.*1\.\.4"):
            PairedData(dsprites, k)


@pytest.mark.slow
def test_ada_gvae_trains_on_host_drawn_pairs_of_a_stored_dataset(tmp_path):
    """A stored full grid (npz) has no paired device sampler: pairs come from the host."""
    grid = np.stack(np.meshgrid(*map(np.arange, (2, 3, 4)), indexing="ij"), -1).reshape(-1, 3)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "grid.npz", factors=grid,
             images=rng.integers(0, 256, (len(grid), 8, 8, 1), dtype=np.uint8))
    config = load_config(ROOT / "configs/ada_gvae_dsprites.py", [
        f"data.name=npz:{tmp_path / 'grid.npz'}", "model.network=mlp_small",
        "model.latent_dim=3", "model.k=1", "train.batch_size=4", "train.steps=2",
        "train.log_every=1", "train.checkpoint_every=2"])
    source = train_lib.setup(config).source
    assert isinstance(source, PairedData) and source.device_sampler() is None
    run = train_lib.train_and_evaluate(config, tmp_path / "run", progress=False)
    rows = train_lib.read_log(run)
    assert [r["step"] for r in rows] == [1, 2]
    assert all(np.isfinite(r["loss"]) and 0 <= r["shared_dims"] <= 3 for r in rows)
