"""Potential flows (Song et al., ICML 2023): the flow, the pair classifier, training and resume."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from disentangle.methods.base import DataSpec, Method, Representation
from disentangle.methods.potential_flow.model import (
    PairClassifier,
    PotentialFlow,
    PotentialFlowConfig,
    flow_codes,
    load_potential_flow,
    train_potential_flow,
)

SHAPE = (8, 8, 1)


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
    # The two potentials move the same code differently.
    codes = flow_codes(pot, np.asarray(z0[:1]), 3)  # [1, K, H+1, L]
    assert np.linalg.norm(codes[0, 0, -1] - codes[0, 1, -1]) > 1e-3
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


class LinearDecoderModel(Method):
    """G(z) = W z reshaped to 8x8x1 logits; encode is a fixed projection."""

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


@pytest.mark.slow
def test_training_runs_logs_checkpoints_and_resumes(tmp_path):
    model = LinearDecoderModel()
    codes = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    config = PotentialFlowConfig(num_potentials=2, num_steps=3, hidden=16, time_features=4,
                                 learning_rate=3e-3, batch_size=16, train_steps=6, log_every=2,
                                 checkpoint_every=3, laplacian="hutchinson", num_probes=2)
    before = np.asarray(model.w[...]).copy()
    train_potential_flow(model, codes, SHAPE, config, tmp_path, log=None)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6]
    assert all(np.isfinite(r["loss"]) for r in rows)
    assert {"classification", "pde", "ic", "change", "accuracy"} <= set(rows[0])
    np.testing.assert_array_equal(np.asarray(model.w[...]), before)  # decoder stays frozen
    first = load_potential_flow(tmp_path, 2, SHAPE)
    # Rerun with more steps: resumes from step 6, appends steps 8 and 10.
    config.train_steps = 10
    trained = train_potential_flow(model, codes, SHAPE, config, tmp_path, log=None)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [2, 4, 6, 8, 10]
    again = load_potential_flow(tmp_path, 2, SHAPE)
    np.testing.assert_allclose(again.potentials.w1[...], trained.potentials.w1[...])
    assert not np.allclose(first.potentials.w1[...], again.potentials.w1[...])
    assert DataSpec(SHAPE).observation_shape == SHAPE
