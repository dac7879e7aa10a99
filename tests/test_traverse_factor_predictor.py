"""The factor predictor: held-out split, learning on a toy dataset, save/load and the cache."""

import numpy as np

from disentangle.data import ArrayData
from disentangle.traverse.factor_predictor import (
    FactorPredictor,
    held_out_mask,
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
