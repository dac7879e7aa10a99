"""Open-set scores of RF fingerprints: rank AUC with ties, EER, pair scores, and the scoring
of a model's fingerprints on splits."""

from __future__ import annotations

import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx
from sklearn.metrics import roc_auc_score

from disentangle.data.rf import RFSplit
from disentangle.methods import DataSpec, build_model
from disentangle.methods.dr_rff.evaluation import (
    enrolled_accuracy,
    equal_error_rate,
    evaluate_split,
    fingerprints,
    pair_scores,
    roc_auc,
    roc_curve,
    score_splits,
)


def test_perfectly_separated_scores():
    scores = np.array([0.9, 0.8, 0.7, 0.3, 0.2])
    labels = np.array([1, 1, 1, 0, 0])
    assert roc_auc(scores, labels) == 1.0
    assert equal_error_rate(scores, labels) == 0.0
    # Reversed: every negative outranks every positive.
    assert roc_auc(-scores, labels) == 0.0
    assert equal_error_rate(-scores, labels) == 1.0


def test_identical_distributions_give_chance():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=20_000)
    labels = rng.random(20_000) < 0.3
    assert roc_auc(scores, labels) == pytest.approx(0.5, abs=0.015)
    assert equal_error_rate(scores, labels) == pytest.approx(0.5, abs=0.015)


def test_hand_computed_case_with_ties():
    # Positives {0.9, 0.5}, negatives {0.5, 0.1}: of the 4 pos/neg pairs, 3 are ordered
    # and one is tied (counts 1/2): AUC = 3.5 / 4.
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    labels = np.array([1, 1, 0, 0])
    assert roc_auc(scores, labels) == 0.875
    fpr, tpr, thr = roc_curve(scores, labels)
    np.testing.assert_array_equal(fpr, [0, 0, 0.5, 1])
    np.testing.assert_array_equal(tpr, [0, 0.5, 1, 1])
    np.testing.assert_array_equal(thr, [np.inf, 0.9, 0.5, 0.1])
    # FNR = 1 - TPR goes 0.5 -> 0 while FPR goes 0 -> 0.5 between thresholds 0.9 and 0.5:
    # they cross half way, at 0.25.
    assert equal_error_rate(scores, labels) == pytest.approx(0.25)


def test_all_tied_scores():
    scores = np.ones(6)
    labels = np.array([1, 0, 1, 0, 0, 1])
    assert roc_auc(scores, labels) == 0.5
    assert equal_error_rate(scores, labels) == pytest.approx(0.5)


def test_auc_matches_the_mann_whitney_count():
    rng = np.random.default_rng(1)
    scores = np.round(rng.normal(size=300), 1)  # many ties
    labels = rng.random(300) < 0.5 + 0.3 * np.tanh(scores)
    pos, neg = scores[labels], scores[~labels]
    brute = np.mean((pos[:, None] > neg[None]) + 0.5 * (pos[:, None] == neg[None]))
    assert roc_auc(scores, labels) == pytest.approx(brute, abs=1e-12)
    assert roc_auc(scores, labels) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        roc_auc(scores, np.ones(300))


def test_pair_scores_are_cosines_of_all_pairs():
    z = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    scores, same = pair_scores(z, np.array([0, 0, 1]))
    np.testing.assert_allclose(scores, [1.0, 0.0, 0.0])  # pairs (0,1), (0,2), (1,2)
    np.testing.assert_array_equal(same, [True, False, False])


def test_split_scores_of_clustered_fingerprints():
    rng = np.random.default_rng(0)
    device = np.repeat(np.arange(4), 10)
    z = np.eye(4)[device] + 0.05 * rng.normal(size=(40, 4))
    logits = np.eye(4)[device] * 10
    res = evaluate_split(z, logits, device, known=True)
    assert res["auc"] == 1.0 and res["eer"] == 0.0 and res["accuracy"] == 1.0
    assert enrolled_accuracy(z, device) == 1.0
    logits_wrong = np.roll(logits, 1, axis=1)
    assert evaluate_split(z, logits_wrong, device, known=True)["accuracy"] == 0.0


def test_score_splits_scores_the_models_fingerprints_in_batches():
    config = ml_collections.ConfigDict(dict(name="ml_rff", embed_dim=8, channels=[4, 4]))
    model = build_model(config, DataSpec((16, 2), (3, 2)), nnx.Rngs(0))
    rng = np.random.default_rng(0)
    x = rng.normal(size=(10, 16, 2)).astype(np.float32)
    device = np.arange(10) % 3
    z, logits = fingerprints(model.f, x, batch_size=4)  # batches of 4, 4, 2
    z_ref, logits_ref = model.f(jnp.asarray(x))
    np.testing.assert_allclose(z, z_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logits, logits_ref, rtol=1e-5, atol=1e-5)
    scores = score_splits(model.f, {"known_los": RFSplit(x, device, np.zeros(10, int)),
                                    "unseen_los": RFSplit(x, device, np.zeros(10, int))})
    assert scores["known_los"]["accuracy"] == np.mean(np.argmax(logits, 1) == device)
    assert scores["unseen_los"]["accuracy"] == enrolled_accuracy(z, device)
    s, same = pair_scores(z, device)
    assert scores["known_los"]["auc"] == roc_auc(s, same)
