"""The factor predictor: held-out split, learning on a toy dataset, save/load, the
cache, the in-jit held-out index and the symmetry-aware orientation accuracy."""

import jax.numpy as jnp
import numpy as np

from disentangle.data import ArrayData, get_dataset
from disentangle.methods.factor_predictor.model import (
    SYMMETRIES,
    FactorPredictor,
    _flat_index,
    _sample_split,
    evaluate_predictor,
    held_out_mask,
    symmetric_difference,
    train_factor_predictor,
)


def _toy_dataset():
    """8x8 images: factor 'top' (6 values) lights column `top` of the top half, 'bottom' (5)
    column `bottom` of the bottom half; 30 combinations, 5 of them held out."""
    rng = np.random.default_rng(0)
    factors = np.array([(a, b) for a in range(6) for b in range(5)] * 8)
    images = np.zeros((len(factors), 8, 8, 1), np.float32)
    rows = np.arange(len(factors))
    images[rows, :4, factors[:, 0]] = 1.0
    images[rows, 4:, factors[:, 1]] = 1.0
    images += 0.05 * rng.normal(size=images.shape).astype(np.float32)
    ds = ArrayData("toy", images, factors, ("top", "bottom"), (6, 5))
    ds.name = "toy"
    return ds


def test_held_out_split_is_every_seventh_combination():
    np.testing.assert_array_equal(held_out_mask(np.arange(15)),
                                  [i % 7 == 0 for i in range(15)])


def test_predictor_learns_generalises_and_round_trips(tmp_path):
    ds = _toy_dataset()
    logs = []
    pred = train_factor_predictor(ds, cache_dir=tmp_path, steps=300, batch_size=32,
                                  learning_rate=3e-3, num_test=200, log=logs.append)
    # Held-out combinations (flat index = 0 mod 7) were never trained on.
    acc = pred.accuracy
    assert acc["exact"]["top"] > 0.95 and acc["exact"]["bottom"] > 0.95
    assert acc["within_1"]["top"] >= acc["exact"]["top"]
    x = ds.images[:20]
    probs = pred.predict_proba(x)
    assert [p.shape for p in probs] == [(20, 6), (20, 5)]
    np.testing.assert_allclose([p.sum(1) for p in probs], 1.0, rtol=1e-6)
    np.testing.assert_array_equal(pred.predict(x), ds.factors[:20])
    loaded = FactorPredictor.load(tmp_path / "factor_predictor_toy")
    np.testing.assert_allclose(np.concatenate(loaded.predict_proba(x), 1),
                               np.concatenate(probs, 1), rtol=1e-5, atol=1e-7)
    assert loaded.accuracy == acc
    # A second request for no more steps loads the cache instead of training.
    logs.clear()
    again = train_factor_predictor(ds, cache_dir=tmp_path, steps=100, log=logs.append)
    assert any("loaded" in m for m in logs) and again.accuracy == acc


def test_device_flat_index_matches_the_dataset_grid_index():
    """The in-jit held-out mask uses the same row-major index as ``factors_to_index``."""
    ds = _toy_dataset()
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
