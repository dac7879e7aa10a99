"""DR-RFF and its baselines: losses on small known cases, the paper-vs-authors choices (one
test per config key, against a hand computation), parameter groups and schedule, exact resume
through the trainer."""

from __future__ import annotations

import math
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from disentangle import train as train_lib
from disentangle.config import load_config
from disentangle.errors import ConfigError
from disentangle.methods import Batch, DataSpec, Update, build_model
from disentangle.methods.dr_rff import model as rf_dr

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY_DATA = ("data.options.n_devices=4", "data.options.n_known=3", "data.options.n_symbols=1",
             "data.options.samples_per_chip=2", "data.options.n_per_device=8")
TINY_F = ("model.embed_dim=8", "model.channels=[4,4]")
TINY_QG = ("model.q_width=4", "model.q_bottleneck=2", "model.g_width=4")


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
    h = jnp.array([[1.0, 0.0], [0.0, 1.0]])
    # Perfect reconstruction, unit fingerprint of x_hat opposite to F(x): |-z - z|^2 = 4.
    assert float(rf_dr.g_loss(x, x, -h, h, 10.0, "unit_sq_distance")) == pytest.approx(40.0)
    # The same features by the feature MSE: mean over n, e of (2 h)^2 = 4 * 2 / 4 = 2.
    assert float(rf_dr.g_loss(x, x, -h, h, 10.0, "feature_mse")) == pytest.approx(20.0)
    # Matching fingerprints: only the signal error (mean over elements) remains.
    assert float(rf_dr.g_loss(x + 2.0, x, h, h, beta=10.0)) == pytest.approx(4.0)


def test_fingerprint_distances_by_hand():
    # h_a = (3, 4), h_b = (0, 5): feature MSE ((3)^2 + (-1)^2) / 2 = 5; unit vectors
    # (0.6, 0.8) and (0, 1): 0.36 + 0.04 = 0.4 (= 2 - 2 cos, cos = 0.8).
    h_a, h_b = jnp.array([[3.0, 4.0]]), jnp.array([[0.0, 5.0]])
    assert float(rf_dr.feature_mse(h_a, h_b)) == pytest.approx(5.0)
    assert float(rf_dr.unit_sq_distance(h_a, h_b)) == pytest.approx(0.4, rel=1e-6)
    # Only the unit distance ignores the features' scale.
    assert float(rf_dr.unit_sq_distance(10 * h_a, h_b)) == pytest.approx(0.4, rel=1e-6)
    assert float(rf_dr.feature_mse(10 * h_a, h_b)) != pytest.approx(5.0)


def test_f_loss_with_lambda_zero_is_cross_entropy():
    rng = np.random.default_rng(0)
    logits = jnp.asarray(rng.normal(size=(6, 4)))
    logits_hat = jnp.asarray(rng.normal(size=(6, 4)))
    y = jnp.array([0, 1, 2, 3, 0, 1])
    y_hat = jnp.array([1, 1, 0, 3, 2, 1])
    ce = float(rf_dr.cross_entropy(logits, y))
    manual = -np.mean(np.asarray(jax.nn.log_softmax(logits))[np.arange(6), np.asarray(y)])
    assert ce == pytest.approx(manual, rel=1e-5)
    assert float(rf_dr.f_loss(logits, logits_hat, y, y_hat, 0.0)) == pytest.approx(ce, rel=1e-6)
    ce_hat = float(rf_dr.cross_entropy(logits_hat, y_hat))
    assert float(rf_dr.f_loss(logits, logits_hat, y, y_hat, 0.5)) == pytest.approx(
        0.5 * ce + 0.5 * ce_hat, rel=1e-6)
    assert float(rf_dr.cross_entropy(jnp.zeros((3, 2)), jnp.array([0, 1, 0]))) == pytest.approx(
        math.log(2.0))


def test_awgn_augmentation_has_the_drawn_snr():
    x = jnp.ones((2000, 64, 2)) / math.sqrt(2.0)  # unit power
    noisy = rf_dr.add_awgn(x, jax.random.key(0), (10.0, 10.0))
    noise_power = float(jnp.mean(jnp.sum(jnp.square(noisy - x), -1)))
    assert 10 * math.log10(1.0 / noise_power) == pytest.approx(10.0, abs=0.05)


def build(name: str = "dr_rff", classes: int = 3, length: int = 16, **keys):
    """A tiny registered model on a dataset of ``classes`` devices, T = ``length``."""
    section = dict(name=name, embed_dim=8, channels=[4, 4], scale=8.0, **keys)
    if name == "dr_rff":
        section = dict(q_width=4, q_bottleneck=2, g_width=4, **section)
    config = ml_collections.ConfigDict(section)
    return build_model(config, DataSpec((length, 2), (classes, 2)), nnx.Rngs(0))


def tiny_batch(n: int = 6, length: int = 16) -> Batch:
    x = jnp.asarray(np.random.default_rng(0).normal(size=(n, length, 2)), jnp.float32)
    device = jnp.arange(n, dtype=jnp.int32) % 3
    return Batch(x, jnp.stack([device, jnp.zeros_like(device)], 1))


def test_awgn_baseline_draws_snr_in_the_configured_range():
    model = build("ml_rff_awgn")
    assert model.config.awgn_snr_db == (5.0, 30.0)  # authors' range by default
    x = jnp.ones((2000, 64, 2)) / math.sqrt(2.0)
    noise = model.augment(x, jax.random.key(0)) - x
    snr = 10 * np.log10(1.0 / np.asarray(jnp.mean(jnp.sum(jnp.square(noise), -1), 1)))
    # 64 samples per signal: measured SNR spreads ~0.8 dB around the drawn one.
    assert 3.0 < snr.min() < 6.5 and 28.5 < snr.max() < 32.0
    assert np.mean(snr) == pytest.approx(17.5, abs=0.5)
    old = build("ml_rff_awgn", awgn_snr_db=[0.0, 20.0]).augment(x, jax.random.key(0)) - x
    snr = 10 * np.log10(1.0 / np.asarray(jnp.mean(jnp.sum(jnp.square(old), -1), 1)))
    assert np.mean(snr) == pytest.approx(10.0, abs=0.5)
    # The plain ML baseline does not augment.
    np.testing.assert_array_equal(build("ml_rff").augment(x, jax.random.key(0)), x)


@pytest.mark.parametrize("std", [1.0, 0.1])
def test_q_bottleneck_noise_has_the_configured_std(std):
    model = build(q_noise_std=std) if std != 1.0 else build()  # default: N(0, 1)
    x = tiny_batch(1024).x  # bottleneck [1024, 4, 2]: the std to ~1 %
    noise = model.qg.q.bottleneck(x, jax.random.key(3)) - model.qg.q.bottleneck(x)
    assert float(jnp.std(noise)) == pytest.approx(std, rel=0.05)
    assert float(jnp.mean(noise)) == pytest.approx(0.0, abs=0.05 * std)


@pytest.mark.parametrize("convention", ["channel_donor", "fingerprint_donor"])
def test_shuffle_label_follows_the_chosen_convention(convention):
    model = build(shuffle_label=convention, lam=0.5)
    batch, key = tiny_batch(), jax.random.key(5)
    y = np.asarray(batch.factors[:, 0])
    x_hat, perm = model.shuffled(batch.x, key)
    perm = np.asarray(perm)
    assert sorted(perm.tolist()) == list(range(6)) and (y[perm] != y).any()
    # Hand computation: x_hat_i = G(Q(x_perm(i)), F(x_i)) with the noise key of the split.
    k_noise = jax.random.split(key)[1]
    expected_hat = model.qg.g(model.qg.q(batch.x[perm], k_noise), model.f.embed(batch.x))
    np.testing.assert_allclose(x_hat, expected_hat, rtol=1e-5, atol=1e-6)
    label = {"channel_donor": y[perm], "fingerprint_donor": y}[convention]
    logp = np.asarray(jax.nn.log_softmax(model.f(batch.x)[1]))
    logp_hat = np.asarray(jax.nn.log_softmax(model.f(x_hat)[1]))
    hand = -0.5 * logp[np.arange(6), y].mean() - 0.5 * logp_hat[np.arange(6), label].mean()
    loss, terms = model.f_loss(batch, key)
    assert float(loss) == pytest.approx(hand, rel=1e-5)
    assert float(terms["ce_shuffled"]) == pytest.approx(-logp_hat[np.arange(6), label].mean(),
                                                        rel=1e-5)


def group_grads(model, objective: str, group: str, batch: Batch, key) -> nnx.State:
    """Gradient of ``model.<objective>`` with respect to one parameter group (as the
    trainer takes it)."""
    groups = model.param_groups()
    graphdef, *states, rest = nnx.split(model, *groups.values(), ...)
    states = dict(zip(groups, states))

    def loss(p):
        merged = nnx.merge(graphdef, *(p if g == group else states[g] for g in groups), rest)
        return getattr(merged, objective)(batch, key)[0]

    return jax.jit(jax.grad(loss))(states[group])


def leaves(state, part: str) -> list[np.ndarray]:
    return [np.asarray(v) for path, v in jax.tree_util.tree_leaves_with_path(state)
            if any(getattr(k, "key", None) == part for k in path)]


@pytest.mark.slow
def test_g_loss_reaches_q_only_when_chosen():
    batch, key = tiny_batch(), jax.random.key(2)

    class OnlyQ(rf_dr.DRRFF):  # L_Q alone, computed independently of qg_loss
        def qg_loss(self, batch, key):
            x_bar = self.qg.q(batch.x, key)
            y = batch.factors[:, 0]
            return rf_dr.q_loss(self.f.logits(self.f.embed(x_bar)), y, x_bar, batch.x,
                                self.alpha)[0], {}

    models = {to_q: build(g_loss_to_q=to_q) for to_q in (True, False)}
    models["only_q"] = OnlyQ(16, 3, models[True].config, rngs=nnx.Rngs(0))
    grads = {k: group_grads(m, "qg_loss", "qg", batch, key) for k, m in models.items()}
    flat = lambda g, part: np.concatenate([v.ravel() for v in leaves(g, part)])
    # Stop-gradient: Q's gradient is that of L_Q alone; otherwise L_G adds to it.
    np.testing.assert_allclose(flat(grads[False], "q"), flat(grads["only_q"], "q"),
                               rtol=1e-5, atol=1e-7)
    assert np.abs(flat(grads[True], "q") - flat(grads["only_q"], "q")).max() > 1e-4
    # G's gradient is that of L_G either way.
    np.testing.assert_allclose(flat(grads[True], "g"), flat(grads[False], "g"), rtol=1e-5,
                               atol=1e-7)


@pytest.mark.parametrize("distance", ["feature_mse", "unit_sq_distance"])
def test_beta_term_uses_the_chosen_distance(distance):
    model = build(fingerprint_distance=distance, beta=10.0)
    batch, key = tiny_batch(), jax.random.key(4)
    x_rec = model.qg.g(model.qg.q(batch.x, key), model.f.embed(batch.x))
    h_rec, h = np.asarray(model.f.features(x_rec)), np.asarray(model.f.features(batch.x))
    by_hand = {"feature_mse": np.mean((h_rec - h) ** 2),
               "unit_sq_distance": np.mean(np.sum(
                   (h_rec / np.linalg.norm(h_rec, axis=1, keepdims=True)
                    - h / np.linalg.norm(h, axis=1, keepdims=True)) ** 2, axis=1))}[distance]
    _, terms = model.qg_loss(batch, key)
    assert float(terms["fingerprint_distance"]) == pytest.approx(by_hand, rel=1e-5)
    recon = np.mean((np.asarray(x_rec) - np.asarray(batch.x)) ** 2)
    assert float(terms["loss_g"]) == pytest.approx(recon + 10.0 * by_hand, rel=1e-5)


def test_authors_code_is_the_default():
    cfg = rf_dr.RFFConfig()
    assert (cfg.shuffle_label, cfg.g_loss_to_q, cfg.fingerprint_distance, cfg.q_noise_std,
            cfg.awgn_snr_db) == ("channel_donor", True, "feature_mse", 1.0, (5.0, 30.0))
    config = load_config(CONFIGS / "dr_rff_zigbee.py")
    assert {k: config.model[k] for k in ("shuffle_label", "g_loss_to_q", "fingerprint_distance",
                                         "q_noise_std")} == {
        "shuffle_label": "channel_donor", "g_loss_to_q": True,
        "fingerprint_distance": "feature_mse", "q_noise_std": 1.0}


def test_networks_contracts():
    model = build()
    x = tiny_batch().x
    z, logits = model.f(x)
    assert z.shape == (6, 8) and logits.shape == (6, 3)
    np.testing.assert_allclose(jnp.linalg.norm(z, axis=1), 1.0, rtol=1e-5)
    assert float(jnp.max(jnp.abs(logits))) <= 8.0 + 1e-5
    np.testing.assert_allclose(z, rf_dr.l2_normalise(model.f.features(x)), rtol=1e-6)
    np.testing.assert_array_equal(model.encode(x).mean, z)
    x_bar = model.qg.q(x)
    assert x_bar.shape == x.shape
    np.testing.assert_array_equal(model.qg.q(x), x_bar)  # no key: deterministic
    assert not np.array_equal(model.qg.q(x, jax.random.key(1)), x_bar)  # bottleneck noise
    assert model.qg.g(x_bar, z).shape == x.shape


def test_groups_and_schedules():
    dr = build(warmup_steps=3)
    params = nnx.state(dr, nnx.Param)
    groups = {g: nnx.state(dr, f) for g, f in dr.param_groups().items()}
    n = lambda s: len(jax.tree.leaves(s))
    assert set(groups) == {"f", "qg"} and n(groups["f"]) + n(groups["qg"]) == n(params)
    assert n(nnx.state(dr.f, nnx.Param)) == n(groups["f"])
    ml = (Update("f", "ml_loss"),)
    assert [dr.schedule(t) for t in (1, 3)] == [ml, ml]
    assert dr.schedule(4) == (Update("qg", "qg_loss"), Update("f", "f_loss"))
    for name in ("ml_rff", "ml_rff_awgn"):
        baseline = build(name)
        assert set(baseline.param_groups()) == {"f"} and not hasattr(baseline, "qg")
        assert baseline.schedule(1) == baseline.schedule(10_000) == ml


def test_registered_with_the_dataset_spec_and_checked_keys():
    model = build(classes=5)
    assert isinstance(model, rf_dr.DRRFF) and model.config.channels == (4, 4)
    assert model.f.num_classes == 5 and model.latent_dim == 8
    assert model.encode(jnp.zeros((3, 16, 2))).mean.shape == (3, 8)
    assert build(classes=5, num_classes=2).f.num_classes == 2  # model.num_classes wins
    with pytest.raises(ConfigError, match="model.q_widht"):
        build(q_widht=3)
    with pytest.raises(ConfigError, match="shuffle_label='y_i'.*channel_donor"):
        build(shuffle_label="y_i")
    with pytest.raises(ConfigError, match="divide by 4"):
        build(length=18)
    with pytest.raises(ConfigError, match=r"\[T, 2\]"):
        build_model(ml_collections.ConfigDict({"name": "ml_rff"}), DataSpec((64, 64, 1), (3,)),
                    nnx.Rngs(0))


def tiny_config(steps: int, path: str = "dr_rff_zigbee.py") -> ml_collections.ConfigDict:
    extra = TINY_QG + ("model.warmup_steps=2",) if path.startswith("dr_rff") else ()
    return load_config(CONFIGS / path, [*TINY_DATA, *TINY_F, *extra, f"train.steps={steps}",
                                        "train.batch_size=8", "train.log_every=1",
                                        "train.checkpoint_every=2"])


def logged(workdir) -> list[dict]:
    return [{k: v for k, v in row.items() if k not in ("time", "images_per_sec")}
            for row in train_lib.read_log(workdir)]


@pytest.mark.slow
def test_dr_rff_resumes_exactly_across_the_warmup_boundary(tmp_path):
    """Steps 1-2 warm up F, 3-5 alternate QG and F. A run stopped at step 3 (checkpoint
    after the boundary) and extended to 5 logs the same losses as the run of 5 steps."""
    train_lib.train_and_evaluate(tiny_config(5), tmp_path / "whole", progress=False)
    train_lib.train_and_evaluate(tiny_config(3), tmp_path / "parts", progress=False)
    train_lib.train_and_evaluate(tiny_config(5), tmp_path / "parts", progress=False)
    whole, parts = logged(tmp_path / "whole"), logged(tmp_path / "parts")
    assert [r["step"] for r in whole] == [1, 2, 3, 4, 5]
    assert "qg_loss" not in whole[1] and "qg_loss" in whole[2] and "f_loss" in whole[4]
    assert parts == whole
    assert np.isfinite([r["loss"] for r in whole]).all()


@pytest.mark.slow
@pytest.mark.parametrize("path", ["ml_rff_zigbee.py", "ml_rff_awgn_zigbee.py"])
def test_baselines_train_through_the_trainer(tmp_path, path):
    run = train_lib.train_and_evaluate(tiny_config(4, path), tmp_path / "run", progress=False)
    rows = logged(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and {"ce", "acc"} <= set(rows[0])
    assert set(train_lib.setup(tiny_config(4, path)).params) == {"f"}
