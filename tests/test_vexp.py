"""metrics._vexp: the vectorised exp loops of the GBT (float64) and logistic (float32) kernels."""

import numpy as np

from metrics import _gbt, _linear


def test_float64_exp_matches_numpy_to_rounding():
    """Relative error < 1e-15 over the GBT's range (shifted scores <= 0, odd length), clamped
    below at -708 (the smallest argument with a normal result)."""
    assert _gbt._kernels() is not None
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-708.0, 0.0, 4001), [0.0, -1e-300, -np.log(2.0) / 2,
                                                          -np.log(2.0), -1000.0, -np.inf]])
    row = x.copy()
    _gbt._exp_inplace_jit(row, np.empty_like(row))
    want = np.exp(np.maximum(x, -708.0))
    assert np.abs(row / want - 1.0).max() < 1e-15
    assert row[4001] == 1.0 and row[-1] == row[-2] == row[4005] > 0.0


def test_float32_exp_matches_float64_exp_and_floors_logits():
    """The logistic fits' exp: relative error < 1.5e-7 (numpy's own float32 exp: ~2e-7)
    against float64 over shifted logits in [LOGIT_FLOOR - 40, 0], arguments below the floor
    entering at the floor; a 2-D array (flattened) with a partial block."""
    rng = np.random.default_rng(1)
    logits = rng.uniform(_linear.LOGIT_FLOOR - 40.0, 0.0, (777, 33)).astype(np.float32)
    logits[0, :4] = [0.0, -1e-30, -0.3466, -np.inf]
    out = _linear.exp_floored(logits, np.empty_like(logits))
    want = np.exp(np.maximum(logits.astype(np.float64), _linear.LOGIT_FLOOR))
    assert out.dtype == np.float32
    assert np.abs(out / want - 1.0).max() < 1.5e-7
    assert out[0, 0] == 1.0 and out[0, 3] == np.float32(np.exp(_linear.LOGIT_FLOOR))
    # other dtypes take numpy's exp (the float32 loop would round a float64 loss)
    wide = logits.astype(np.float64)
    np.testing.assert_array_equal(_linear.exp_floored(wide, np.empty_like(wide)),
                                  np.exp(np.maximum(wide, _linear.LOGIT_FLOOR)))
