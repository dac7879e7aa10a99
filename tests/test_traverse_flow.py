"""Potential flows (Song et al., ICML 2023): the flow, the pair classifier, the
classifier's consecutive pairs, and training through the one trainer with exact resume."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from disentangle.config import apply_overrides, load_config
from disentangle.errors import ConfigError
from disentangle.methods.base import Method, Representation
from disentangle.methods.potential_flow.model import (
    PairClassifier,
    PotentialFlow,
    PotentialFlows,
    classifier_accuracy,
    classifier_pairs,
    flow_codes,
    flow_traversals,
    matched_step_size,
    traversal_length,
)
from disentangle.runs import load_run
from disentangle.train import read_log, train_and_evaluate

CONFIGS = Path(__file__).resolve().parents[1] / "configs"

SHAPE = (8, 8, 1)


@pytest.mark.slow
def test_flow_steps_are_potential_gradients_and_move_codes():
    pot = PotentialFlow(3, num_potentials=2, hidden=16, time_features=4, rngs=nnx.Rngs(0))
    z0 = jnp.asarray(np.random.default_rng(0).normal(size=(5, 3)), jnp.float32)
    k = jnp.asarray([0, 1, 0, 1, 1])
    traj = jax.jit(lambda z, kk: pot.flow(z, kk, 3))(z0, k)
    assert traj.shape == (4, 5, 3)
    # z_{i+1} - z_i = grad_z u_k(z_i, i), checked by central finite differences.
    eps = 1e-2
    shifts = eps * jnp.eye(3)

    @jax.jit
    def numeric_grad(z, t, kk):  # [L], [], [] -> [L]
        u = lambda zz: pot.potential(zz, t, kk)
        return (jax.vmap(u)(z + shifts) - jax.vmap(u)(z - shifts)) / (2 * eps)

    for i in range(3):
        num = jax.vmap(numeric_grad, in_axes=(0, None, 0))(traj[i], jnp.asarray(float(i)), k)
        np.testing.assert_allclose(traj[i + 1] - traj[i], num, atol=2e-3)
    moved = np.linalg.norm(np.asarray(traj[-1] - traj[0]), axis=-1)
    assert moved.min() > 1e-3
    # The two potentials move the same code differently; traversals are two-sided:
    # frame T is the seed, frames T+i follow the flow, frames T-i the flow with step -1.
    codes = flow_codes(pot, np.asarray(z0[:1]), 3)  # [1, K, 2T+1, L]
    assert codes.shape == (1, 2, 7, 3)
    assert np.linalg.norm(codes[0, 0, -1] - codes[0, 1, -1]) > 1e-3
    np.testing.assert_allclose(codes[0, :, 3], np.repeat(np.asarray(z0[:1]), 2, 0))
    np.testing.assert_allclose(codes[0, 0, 3:], np.asarray(traj[:, 0]), atol=1e-5)
    back = pot.flow(z0[:1], k[:1], 3, -1.0)
    np.testing.assert_allclose(codes[0, 0, 3::-1], np.asarray(back[:, 0]), atol=1e-5)
    # Bounded potential: |u| <= A.
    assert float(jnp.abs(pot.potential(100 * z0[0], jnp.asarray(0.0), 0))) <= 1.0


def test_pair_classifier_learns_a_separable_case():
    k_dirs = 4
    clf = PairClassifier(SHAPE, k_dirs, rngs=nnx.Rngs(0))
    opt = nnx.Optimizer(clf, optax.adam(1e-3), wrt=nnx.Param)
    patterns = np.zeros((k_dirs, *SHAPE), np.float32)
    for k, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
        patterns[k, r:r + 4, c:c + 4] = 0.5  # direction k brightens quadrant k

    def batch(key):
        kx, kk = jax.random.split(key)
        x = 0.5 * jax.random.uniform(kx, (64, *SHAPE))
        k = jax.random.randint(kk, (64,), 0, k_dirs)
        return x, x + jnp.asarray(patterns)[k], k

    @nnx.jit
    def step(clf, opt, key):
        x, x1, k = batch(key)
        loss_fn = lambda m: jnp.mean(optax.softmax_cross_entropy_with_integer_labels(m(x, x1), k))
        loss, grads = nnx.value_and_grad(loss_fn)(clf)
        opt.update(clf, grads)
        return loss

    for i in range(150):
        step(clf, opt, jax.random.key(i))
    x, x1, k = batch(jax.random.key(10_000))
    accuracy = float(jnp.mean(jnp.argmax(clf(x, x1), -1) == k))
    assert accuracy > 0.95


def test_consecutive_pairs_are_consecutive_steps_mirrored_half_the_time():
    """Issue 17: (z_{t+1}, z_{t+2}) at t in 0..T-2, or its mirror (2z_0 - z_{t+2},
    2z_0 - z_{t+1}) with probability 1/2; 'endpoints' gives (z_0, z_T)."""
    horizon, n, dim = 5, 4000, 3
    traj = jnp.asarray(np.random.default_rng(1).normal(size=(horizon + 1, n, dim)), jnp.float32)
    za, zb = (np.asarray(a) for a in classifier_pairs(traj, "consecutive", jax.random.key(0)))
    traj = np.asarray(traj)
    forward = (za[None] == traj[1:horizon]).all(-1) & (zb[None] == traj[2:]).all(-1)
    mirror_a, mirror_b = 2 * traj[0][None] - traj[2:], 2 * traj[0][None] - traj[1:horizon]
    mirrored = (np.isclose(za[None], mirror_a).all(-1) & np.isclose(zb[None], mirror_b).all(-1))
    # Every pair is exactly one of the 2 (T - 1) allowed (t, mirror) choices ...
    np.testing.assert_array_equal(forward.sum(0) + mirrored.sum(0), 1)
    # ... each about equally often (t uniform on 0..T-2, mirror with probability 1/2).
    counts = np.concatenate([forward.sum(1), mirrored.sum(1)]) / n
    np.testing.assert_allclose(counts, 1 / (2 * (horizon - 1)), atol=0.03)
    # Consecutive steps are one flow step apart: the same displacement either way.
    a, b = classifier_pairs(jnp.asarray(traj), "endpoints", jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(a), traj[0])
    np.testing.assert_array_equal(np.asarray(b), traj[-1])
    with pytest.raises(ConfigError, match="classifier_pairs"):
        classifier_pairs(jnp.asarray(traj), "ends", jax.random.key(0))


class LinearDecoderModel(Method):
    """G(z) = W z reshaped to 8x8x1 logits; encode takes the first two pixels."""

    def __init__(self):
        self.latent_dim = 2
        w = np.zeros((2, 64), np.float32)
        w[0, :32] = 4.0  # z_0 brightens the top half, z_1 the bottom half
        w[1, 32:] = 4.0
        self.w = nnx.Param(jnp.asarray(w))

    def encode(self, x):
        return Representation(mean=x.reshape(x.shape[0], -1)[:, :2])

    def decode(self, z):
        return (z @ self.w[...]).reshape(z.shape[0], *SHAPE)


class RecordingClassifier(nnx.Module):
    """Stores the image pairs it is shown (a host callback, so it works under jit)."""

    def __init__(self, num_potentials):
        self.seen = []
        self.num_potentials = num_potentials

    def __call__(self, x, x_after):
        jax.debug.callback(lambda a, b: self.seen.append((np.asarray(a), np.asarray(b))),
                           x, x_after)
        return jnp.zeros((x.shape[0], self.num_potentials))


def test_the_objective_shows_the_classifier_images_of_consecutive_steps():
    """The images the classifier gets in the objective are G of consecutive flow steps."""
    flows = PotentialFlows(LinearDecoderModel(), SHAPE, num_potentials=3, num_steps=8,
                           hidden=8, time_features=4, classifier_network="mlp_small",
                           laplacian="hutchinson", num_probes=1, rngs=nnx.Rngs(0))
    flows.classifier = RecordingClassifier(3)
    z0 = jnp.asarray(np.random.default_rng(0).normal(size=(24, 2)), jnp.float32)
    k = jnp.asarray(np.arange(24) % 3)
    loss, terms = jax.jit(lambda z, kk: flows.flow_loss(z, kk, jax.random.key(3)))(z0, k)
    assert np.isfinite(float(loss)) and set(terms) >= {"classification", "pde", "ic", "change"}
    (x, x_after), = flows.classifier.seen
    traj = np.asarray(jax.jit(lambda z, kk: flows.potentials.flow(z, kk, flows.horizon))(z0, k))
    image = lambda z: np.asarray(jax.nn.sigmoid(flows.base.decode(jnp.asarray(z))))
    candidates = [(image(traj[t + 1]), image(traj[t + 2])) for t in range(flows.horizon - 1)]
    candidates += [(image(2 * traj[0] - traj[t + 2]), image(2 * traj[0] - traj[t + 1]))
                   for t in range(flows.horizon - 1)]
    match = [np.isclose(x, a, atol=1e-5).all((1, 2, 3)) & np.isclose(x_after, b, atol=1e-5)
             .all((1, 2, 3)) for a, b in candidates]
    assert np.all(np.any(match, axis=0))  # every pair is one of them
    assert not np.all(match[0])  # and not always the same one


def test_gradients_stay_finite_when_an_image_does_not_change():
    """change = ||J_G dz|| / sqrt(pixels) is 0 when a flow stalls; d sqrt(s)/ds is infinite
    at s = 0, so without the guard the gradient is NaN (a QLAE flow hit this on the --cpu
    study). Potentials scaled to 0 stall every flow."""
    flows = PotentialFlows(LinearDecoderModel(), SHAPE, num_potentials=2, num_steps=4,
                           hidden=8, time_features=4, output_scale=0.0,
                           classifier_network="mlp_small", laplacian="hutchinson",
                           num_probes=1, rngs=nnx.Rngs(0))
    z0 = jnp.asarray(np.random.default_rng(0).normal(size=(6, 2)), jnp.float32)
    k = jnp.asarray(np.arange(6) % 2)
    (loss, terms), grads = jax.jit(nnx.value_and_grad(
        lambda m: m.flow_loss(z0, k, jax.random.key(0)), has_aux=True))(flows)
    assert float(terms["change"]) < 1e-5  # nothing moves
    leaves = jax.tree.leaves(nnx.state(grads, nnx.Param))
    assert leaves and all(np.isfinite(np.asarray(g)).all() for g in leaves)
    # -log(eps + change) with change = sqrt(1e-12): the guard's bias is below 1e-6 / eps.
    np.testing.assert_allclose(float(terms["change"]), 1e-6, rtol=1e-3)


def test_length_matching_reaches_the_target():
    pot = PotentialFlow(3, num_potentials=2, hidden=16, time_features=4, rngs=nnx.Rngs(0))
    seeds = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    base = traversal_length(flow_codes(pot, seeds, 2))
    step = matched_step_size(pot, seeds, 2, 3 * base)
    assert step > 1.5
    np.testing.assert_allclose(traversal_length(flow_codes(pot, seeds, 2, step)), 3 * base,
                               rtol=0.02)


def _tiny_base_run(root: Path) -> Path:
    """An AE with an MLP on an 8x8 npz dataset, trained 4 steps."""
    rng = np.random.default_rng(0)
    factors = np.array([(a, b) for a in range(4) for b in range(4)] * 4)
    images = np.zeros((len(factors), 8, 8, 1), np.uint8)
    images[np.arange(len(factors)), :4, 2 * factors[:, 0]] = 255
    images[np.arange(len(factors)), 4:, 2 * factors[:, 1]] = 255
    path = root / "toy.npz"
    np.savez(path, images=images, factors=factors)
    config = load_config(CONFIGS / "ae_dsprites.py", [
        f"data.name=npz:{path}", "model.network=mlp_small", "model.latent_dim=3",
        "train.steps=4", "train.batch_size=8", "train.log_every=2",
        "train.checkpoint_every=4", "train.learning_rate=1e-3"])
    del rng
    return train_and_evaluate(config, root / "base", progress=False)


def _tiny_flow_config(base: Path, steps: int):
    config = load_config(CONFIGS / "potential_flow.py")
    apply_overrides(config, [
        ("data.name", load_run(base).config.data.name), ("model.base_run", str(base)),
        ("model.num_potentials", 2), ("model.num_steps", 4), ("model.hidden", 8),
        ("model.time_features", 4), ("model.classifier_network", "mlp_small"),
        ("model.laplacian", "hutchinson"), ("model.num_probes", 1),
        ("train.batch_size", 4), ("train.steps", steps), ("train.log_every", 1),
        ("train.checkpoint_every", 2), ("train.learning_rate", 3e-3)])
    return config


@pytest.mark.slow
def test_flow_run_trains_through_the_trainer_resumes_exactly_and_keeps_base_frozen(tmp_path):
    base = _tiny_base_run(tmp_path)
    base_params = jax.tree.map(np.asarray, nnx.state(load_run(base).model, nnx.Param))
    whole = train_and_evaluate(_tiny_flow_config(base, 6), tmp_path / "whole", progress=False)
    part = tmp_path / "part"
    train_and_evaluate(_tiny_flow_config(base, 3), part, progress=False)
    train_and_evaluate(_tiny_flow_config(base, 6), part, progress=False)  # extend from step 2
    rows, again = read_log(whole), read_log(part)
    assert [r["step"] for r in rows] == [r["step"] for r in again] == list(range(1, 7))
    for r, a in zip(rows, again):
        for term in ("loss", "classification", "pde", "ic", "change", "latent_moved"):
            assert r[term] == a[term], (r["step"], term)
    assert all(np.isfinite(r["loss"]) for r in rows)

    run = load_run(whole)
    flows = run.model
    assert isinstance(flows, PotentialFlows) and run.step == 6
    # The base parameters are in no group: unchanged, and not in the checkpoint.
    after = jax.tree.map(np.asarray, nnx.state(flows.base, nnx.Param))
    jax.tree.map(np.testing.assert_array_equal, base_params, after)
    paths = [path for path, _ in nnx.state(flows, flows.param_groups()["flow"]).flat_state()]
    assert paths and not any("base" in path for path in paths)
    fresh = PotentialFlows.from_config(run.config.model, type("S", (), {
        "observation_shape": run.dataset.observation_shape})(), nnx.Rngs(0))
    assert not np.allclose(fresh.potentials.w1[...], flows.potentials.w1[...])
    # Traversals and the classifier's accuracy from the restored run.
    codes = np.random.default_rng(0).normal(size=(3, 3)).astype(np.float32)
    tr = flow_traversals(flows, codes)
    assert tr.images.shape == (3, 2, 5, 8, 8, 1) and tr.latents.shape == (3, 2, 5, 3)
    assert 0.0 <= classifier_accuracy(flows, codes) <= 1.0
