"""Traversal scores: factor change, purity and coverage on hand-made cases."""

import numpy as np
import pytest

from disentangle.traverse.common import Traversals
from disentangle.traverse.score import factor_change, purity_report, score_traversals


def test_tv_change_counts_a_clean_jump_as_one():
    # Factor 0 (3 values) jumps 0 -> 2 in one step; factor 1 (2 values) stays put.
    p0 = np.array([[1, 0, 0], [1, 0, 0], [0, 0, 1]], float)
    p1 = np.array([[0.5, 0.5]] * 3)
    np.testing.assert_allclose(factor_change([p0, p1], "tv"), [1.0, 0.0])
    # A sweep over 5 ordered values: TV counts each step (4), expected counts the range (1).
    sweep = np.eye(5)
    np.testing.assert_allclose(factor_change([sweep], "tv"), [4.0])
    np.testing.assert_allclose(factor_change([sweep], "expected"), [1.0])
    # Going there and back counts twice.
    np.testing.assert_allclose(factor_change([np.eye(3)[[0, 2, 0]]], "expected"), [2.0])
    with pytest.raises(ValueError, match="measure"):
        factor_change([sweep], "kl")


def test_purity_and_coverage_on_a_hand_made_matrix():
    names = ["shape", "scale", "pos_x"]
    change = np.array([
        [0.0, 0.0, 2.0],    # pure pos_x
        [1.0, 1.0, 0.0],    # half shape, half scale
        [0.0, 0.9, 0.1],    # mostly scale
        [0.05, 0.0, 0.05],  # inactive (total 0.1 < 0.25)
    ])
    rep = purity_report(change, names, ["z0", "z1", "z2", "z3"], active_threshold=0.25)
    rows = rep["traversals"]
    assert [r["top_factor"] for r in rows[:3]] == ["pos_x", "shape", "scale"]
    np.testing.assert_allclose([r["purity"] for r in rows], [1.0, 0.5, 0.9, 0.5])
    assert [r["active"] for r in rows] == [True, True, True, False]
    assert [r["factors_changed"] for r in rows[:3]] == [1, 2, 1]
    assert rep["num_active"] == 3
    assert rep["mean_purity"] == pytest.approx((1.0 + 0.5 + 0.9) / 3)
    assert rep["factors_covered"] == 3 and rep["covered"] == ["shape", "scale", "pos_x"]


class _PixelPredictor:
    """Factor 'left' is the mean of the left half, 'right' of the right half (2 values)."""

    factor_names = ("left", "right")
    accuracy = {"mean_exact": 1.0}

    def predict_proba(self, images):
        left = images[:, :, :2].mean(axis=(1, 2, 3))
        right = images[:, :, 2:].mean(axis=(1, 2, 3))
        return [np.stack([1 - left, left], 1), np.stack([1 - right, right], 1)]


def test_score_traversals_finds_the_factor_each_row_moves():
    steps = np.linspace(0, 1, 6)
    images = np.zeros((2, 2, 6, 4, 4, 1))
    images[:, 0, :, :, :2] = steps[:, None, None, None]  # row 0 brightens the left half
    images[:, 1, :, :, 2:] = steps[:, None, None, None]  # row 1 the right half
    tr = Traversals(images=images, latents=np.zeros((2, 2, 6, 1)), row_labels=["a", "b"],
                    kind="linear")
    rep = score_traversals(_PixelPredictor(), tr)
    assert [r["top_factor"] for r in rep["traversals"]] == ["left", "right"]
    np.testing.assert_allclose([r["purity"] for r in rep["traversals"]], [1.0, 1.0])
    np.testing.assert_allclose(rep["traversals"][0]["change"]["left"], 1.0)
    assert rep["factors_covered"] == 2 and rep["num_seeds"] == 2
