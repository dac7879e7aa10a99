"""Open-set and closed-set scores of RF fingerprints (DR-RFF, Xie et al., IEEE TCOM 2023).

Open set: every pair (i < j) of a split's fingerprints gets the score cos(z_i, z_j); pairs of
the same device are positives. ROC AUC is the Mann-Whitney statistic with mid-ranks for ties,

    AUC = (sum_{i in pos} rank_i - n_pos (n_pos + 1) / 2) / (n_pos n_neg)
        = P(s_pos > s_neg) + 1/2 P(s_pos = s_neg),

and the EER is the point of the ROC (one point per distinct threshold, ``score >= t``) where
the false-positive rate equals the false-negative rate 1 - TPR, linearly interpolated
between the two ROC points whose FPR - FNR changes sign.

Closed set: argmax accuracy of the classifier head on known devices. For unseen devices,
which the head has no class for, accuracy is nearest-centroid by cosine similarity after
enrolling a random half of each device's captures (the other half is classified).

:func:`score_splits` scores a trained model's F on the test splits of
``disentangle.data.rf.make_splits``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.stats import rankdata

from disentangle import xla_options


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Rank-based ROC AUC of scores [n] for binary labels [n] (ties count one half)."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"AUC needs both classes; got {n_pos} positives, {n_neg} negatives")
    ranks = rankdata(scores)  # mid-ranks for ties
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                np.ndarray]:
    """(fpr, tpr, thresholds), one point per distinct score (decision ``score >= t``),
    starting at (0, 0) with threshold +inf."""
    scores, labels = np.asarray(scores, np.float64), np.asarray(labels).astype(bool)
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # last index of each tie block
    tp, fp = np.cumsum(y)[last], np.cumsum(~y)[last]
    tpr = np.r_[0.0, tp / max(y.sum(), 1)]
    fpr = np.r_[0.0, fp / max((~y).sum(), 1)]
    return fpr, tpr, np.r_[np.inf, s[last]]


def equal_error_rate(scores: np.ndarray, labels: np.ndarray) -> float:
    """EER: the rate where FPR = FNR on the ROC, linearly interpolated between ROC points."""
    fpr, tpr, _ = roc_curve(scores, labels)
    fnr = 1.0 - tpr
    d = fpr - fnr  # rises from -1 at (0, 0) to +1 at (1, 1)
    k = int(np.argmax(d >= 0))
    if d[k] == 0:
        return float(fpr[k])
    t = -d[k - 1] / (d[k] - d[k - 1])
    return float(fpr[k - 1] + t * (fpr[k] - fpr[k - 1]))


def pair_scores(z: np.ndarray, device: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine similarity of every pair i < j of fingerprints z [n, E]: (scores, same device)."""
    z = np.asarray(z, np.float64)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    i, j = np.triu_indices(len(z), k=1)
    return np.sum(z[i] * z[j], axis=1), np.asarray(device)[i] == np.asarray(device)[j]


def enrolled_accuracy(z: np.ndarray, device: np.ndarray, seed: int = 0) -> float:
    """Nearest-centroid (cosine) accuracy: half of each device's captures enrol it."""
    rng = np.random.default_rng(seed)
    z = z / np.linalg.norm(z, axis=1, keepdims=True)
    devices = np.unique(device)
    enrol = np.zeros(len(z), bool)
    for d in devices:
        rows = rng.permutation(np.flatnonzero(device == d))
        enrol[rows[: len(rows) // 2]] = True
    centroids = np.stack([z[enrol & (device == d)].mean(0) for d in devices])
    pred = devices[np.argmax(z[~enrol] @ centroids.T, axis=1)]
    return float(np.mean(pred == device[~enrol]))


def evaluate_split(z: np.ndarray, logits: np.ndarray | None, device: np.ndarray,
                   known: bool) -> dict:
    """AUC, EER and accuracy of one split, plus the ROC curve (fpr, tpr) for plots.

    ``known``: the devices have classes in the head (accuracy = argmax of ``logits``);
    otherwise accuracy is :func:`enrolled_accuracy`.
    """
    scores, same = pair_scores(z, device)
    fpr, tpr, _ = roc_curve(scores, same)
    acc = (float(np.mean(np.argmax(logits, 1) == device)) if known
           else enrolled_accuracy(z, device))
    return {"auc": roc_auc(scores, same), "eer": equal_error_rate(scores, same),
            "accuracy": acc, "roc": (fpr, tpr)}


@xla_options.jit_apply
def _forward(f, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return f(x)


def fingerprints(f, x: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Fingerprints z [n, E] and cosine logits [n, K] of x [n, T, 2] by the fingerprint
    extractor ``f`` (a model's ``.f``), in batches."""
    zs, ls = [], []
    for i in range(0, len(x), batch_size):
        z, logits = _forward(f, jnp.asarray(x[i : i + batch_size]))
        zs.append(np.asarray(z))
        ls.append(np.asarray(logits))
    return np.concatenate(zs), np.concatenate(ls)


def score_splits(f, splits: dict) -> dict[str, dict]:
    """:func:`evaluate_split` of every split (name -> ``RFSplit``); splits whose name starts
    with ``known`` are scored with the head's accuracy, the others by enrolment."""
    out = {}
    for name, split in splits.items():
        z, logits = fingerprints(f, split.x)
        out[name] = evaluate_split(z, logits, split.device, known=name.startswith("known"))
    return out
