"""The factor predictor: held-out split, its objective, learning on a toy dataset through
the one trainer, the cached run, the in-jit held-out index and the symmetry-aware
orientation accuracy."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from disentangle.data import ArrayData, get_dataset
from disentangle.errors import UserError
from disentangle.methods.base import Batch
from disentangle.methods.factor_predictor.model import (
    SYMMETRIES,
    FactorClassifier,
    FactorPredictor,
    _flat_index,
    _sample_split,
    evaluate_predictor,
    held_out_mask,
    symmetric_difference,
    train_factor_predictor,
)
from disentangle.train import read_log


def _toy_dataset(root):
    """8x8 images as an npz dataset: factor 'top' (6 values) lights column `top` of the top
    half, 'bottom' (5) column `bottom` of the bottom half; 30 combinations, 5 held out."""
    rng = np.random.default_rng(0)
    factors = np.array([(a, b) for a in range(6) for b in range(5)] * 8)
    images = np.zeros((len(factors), 8, 8, 1), np.float32)
    rows = np.arange(len(factors))
    images[rows, :4, factors[:, 0]] = 1.0
    images[rows, 4:, factors[:, 1]] = 1.0
    images += 0.05 * rng.normal(size=images.shape).astype(np.float32)
    path = root / "toy.npz"
    np.savez(path, images=np.clip(255 * images, 0, 255).astype(np.uint8), factors=factors,
             factor_names=np.asarray(["top", "bottom"]), factor_sizes=np.asarray([6, 5]))
    return get_dataset(f"npz:{path}")


def test_held_out_split_is_every_seventh_combination():
    np.testing.assert_array_equal(held_out_mask(np.arange(15)),
                                  [i % 7 == 0 for i in range(15)])


def test_objective_is_the_cross_entropy_of_the_training_rows_only():
    """loss = sum_n w_n sum_k CE_nk / sum_n w_n with w_n = 0 on held-out combinations."""
    model = FactorClassifier((8, 8, 1), (6, 5), rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    factors = np.array([[0, 0], [1, 2], [1, 3], [5, 4], [2, 2]])  # flat 0 and 7: held out
    x = jnp.asarray(rng.uniform(size=(5, 8, 8, 1)), jnp.float32)
    objective = jax.jit(lambda x, f: model.loss(Batch(x, f), jax.random.key(0)))
    loss, terms = objective(x, jnp.asarray(factors))
    logits = np.asarray(model.logits(x))
    ce = (optax.softmax_cross_entropy_with_integer_labels(logits[:, :6], factors[:, 0])
          + optax.softmax_cross_entropy_with_integer_labels(logits[:, 6:], factors[:, 1]))
    keep = np.ravel_multi_index(tuple(factors.T), (6, 5)) % 7 != 0
    np.testing.assert_array_equal(keep, [False, False, True, True, True])
    np.testing.assert_allclose(float(loss), float(np.mean(np.asarray(ce)[keep])), rtol=1e-6)
    np.testing.assert_allclose(float(terms["held_out_share"]), 0.4)
    held_only, _ = objective(x[:2], jnp.asarray(factors[:2]))
    assert float(held_only) == 0.0


@pytest.mark.slow
def test_predictor_trains_through_the_trainer_generalises_and_is_reused(tmp_path):
    ds = _toy_dataset(tmp_path)
    logs = []
    pred = train_factor_predictor(ds, cache_dir=tmp_path, steps=300, batch_size=32,
                                  learning_rate=3e-3, num_test=200, log=logs.append)
    run_dir = next(tmp_path.glob("factor_predictor_*"))
    assert (run_dir / "config.json").exists() and (run_dir / "checkpoints").exists()
    rows = read_log(run_dir)  # an ordinary run of the trainer
    assert rows[-1]["step"] == 300 and rows[-1]["loss"] < rows[0]["loss"]
    # Held-out combinations (flat index = 0 mod 7) were never trained on.
    acc = pred.accuracy
    assert acc["exact"]["top"] > 0.95 and acc["exact"]["bottom"] > 0.95
    assert acc["within_1"]["top"] >= acc["exact"]["top"]
    factors, x = _sample_split(ds, 20, np.random.default_rng(5), test=False)
    probs = pred.predict_proba(x)
    assert [p.shape for p in probs] == [(20, 6), (20, 5)]
    np.testing.assert_allclose([p.sum(1) for p in probs], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(pred.predict(x), factors)
    loaded = FactorPredictor.from_run(run_dir)
    np.testing.assert_allclose(np.concatenate(loaded.predict_proba(x), 1),
                               np.concatenate(probs, 1), rtol=1e-5, atol=1e-7)
    # A second request for no more steps reuses the run instead of training.
    logs.clear()
    again = train_factor_predictor(ds, cache_dir=tmp_path, steps=100, batch_size=32,
                                   learning_rate=3e-3, num_test=200, log=logs.append)
    assert any("loaded" in m for m in logs) and again.accuracy == acc
    assert read_log(run_dir)[-1]["step"] == 300
    # Other settings in the same cache are refused, naming the directory.
    with pytest.raises(UserError, match="other settings"):
        train_factor_predictor(ds, cache_dir=tmp_path, steps=100, batch_size=16, log=None)


def test_unregistered_dataset_is_refused_with_advice():
    ds = ArrayData("toy", np.zeros((4, 8, 8, 1), np.float32), np.zeros((4, 1), int), ("a",),
                   (1,))
    with pytest.raises(UserError, match="npz"):
        train_factor_predictor(ds, steps=1, log=None)


def test_device_flat_index_matches_the_dataset_grid_index(tmp_path):
    """The in-jit held-out mask uses the same row-major index as ``factors_to_index``."""
    ds = _toy_dataset(tmp_path)
    factors = np.array([(a, b) for a in range(6) for b in range(5)])
    np.testing.assert_array_equal(np.asarray(_flat_index(jnp.asarray(factors), (6, 5))),
                                  ds.factors_to_index(factors))
    big = np.array([[2, 5, 39, 31, 31], [1, 0, 7, 3, 30]])
    np.testing.assert_array_equal(
        np.asarray(_flat_index(jnp.asarray(big), (3, 6, 40, 32, 32))),
        np.ravel_multi_index(tuple(big.T), (3, 6, 40, 32, 32)))


def test_symmetry_aware_orientation_distance():
    """Square (period 10 of 40): 3 and 13, 33 render alike; ellipse (20): 5 and 25;
    heart (40): only equal values. Distances are circular within the period."""
    pred = np.array([13, 33, 12, 25, 15, 39, 0, 20])
    true = np.array([3, 3, 3, 5, 5, 0, 39, 0])
    period = np.array([10, 10, 10, 20, 20, 40, 40, 40])
    np.testing.assert_array_equal(symmetric_difference(pred, true, period),
                                  [0, 0, 1, 0, 10, 1, 1, 20])
    (sym,) = SYMMETRIES["dsprites"]
    assert (sym.factor, sym.given) == ("orientation", "shape")
    assert sym.periods == {0: 10, 1: 20, 2: 40}


def test_symmetry_aware_accuracy_counts_equivalent_orientations():
    """A predictor that is off by a quarter turn on squares and a half turn on ellipses is
    0 % exact raw but 100 % exact symmetry-aware on those shapes; hearts stay wrong."""
    ds = get_dataset("dsprites")

    class Shifted:
        factor_names, factor_sizes = ds.factor_names, ds.factor_sizes
        truth: np.ndarray

        def predict(self, images):
            f = self.truth.copy()
            f[:, 2] = (f[:, 2] + np.array([10, 20, 1])[f[:, 0]]) % 40
            return f

    fake = Shifted()
    fake.truth = _sample_split(ds, 60, np.random.default_rng(3), test=True)[0]
    acc = evaluate_predictor(fake, ds, num_test=60, seed=3)
    shapes = fake.truth[:, 0]
    assert acc["exact"]["orientation"] == 0.0 and acc["exact"]["shape"] == 1.0
    np.testing.assert_allclose(acc["exact_symmetric"]["orientation"], np.mean(shapes < 2))
    np.testing.assert_allclose(acc["within_1_symmetric"]["orientation"], 1.0)
    assert acc["exact_symmetric"]["pos_x"] == acc["exact"]["pos_x"] == 1.0
