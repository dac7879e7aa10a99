"""Vectorised histogram gradient-boosted trees reproducing sklearn's
``GradientBoostingClassifier()`` (Friedman, "Greedy Function Approximation: A Gradient
Boosting Machine", Ann. Stat. 2001) for DCI's importance matrix (Eastwood & Williams 2018).

Same algorithm as sklearn's defaults: raw scores start at the log class priors (binary:
the prior logit); each of 100 stages fits one depth-3 regression tree per class (binary: one
tree) to the negative gradient ``r_k = y_k - p_k`` with squared-error split gain
``S_l^2/n_l + S_r^2/n_r - S^2/n`` (the friedman_mse proxy orders splits identically for
one output); leaf values are one Newton step
``(K-1)/K * sum r / sum p(1-p)`` (binary: ``sum r / sum p(1-p)``), shrunk by 0.1.
Feature importance of a tree = its total weighted impurity decrease per feature divided by
the number of samples; sklearn averages these raw vectors over all trees that split at
least once, then normalises the average to sum 1 — done the same way here.

Difference from sklearn: a latent with more than ``exact_up_to`` (1024) distinct values
only offers ``max_bins`` (256) quantile thresholds (fewer distinct values: sklearn's exact
midpoint thresholds), ties between equally good splits are broken by the first feature and
threshold instead of sklearn's random feature order, and sklearn casts codes to float32.
Speed: the trees of one stage are grown together, level by level, with the (tree, node,
latent, bin) gradient and count histograms of a level computed as one sparse one-hot matrix
product (left children only; right = parent - left).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

_EPS = np.finfo(np.float64).eps


def bin_edges(x: np.ndarray, max_bins: int = 256, exact_up_to: int = 1024
              ) -> list[np.ndarray]:
    """Per latent of ``x [n, L]``: sorted split thresholds — midpoints of its distinct values
    (sklearn's exact candidate thresholds) when there are at most ``exact_up_to`` of them,
    else midpoints between ``max_bins + 1`` sample quantiles."""
    edges = []
    for j in range(x.shape[1]):
        values = np.unique(x[:, j])
        if len(values) > max(max_bins, exact_up_to):
            values = np.unique(np.quantile(x[:, j], np.linspace(0, 1, max_bins + 1),
                                           method="nearest"))
        edges.append(0.5 * (values[1:] + values[:-1]))
    return edges


def apply_bins(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """``int [n, L]`` bin of each value: bin ``b`` goes left of threshold ``edges[j][b']``
    iff ``b <= b'`` (sklearn sends ``x <= threshold`` left)."""
    return np.stack([np.searchsorted(e, x[:, j], side="left") for j, e in enumerate(edges)],
                    axis=1)


def fit_gbt(x: np.ndarray, y: np.ndarray, num_classes: int, x_test: np.ndarray | None = None,
            *, n_stages: int = 100, learning_rate: float = 0.1, depth: int = 3,
            max_bins: int = 256, exact_up_to: int = 1024) -> dict:
    """Boost depth-``depth`` trees on ``x [n, L]`` -> labels ``y int [n]`` in
    ``[0, num_classes)``.

    Returns ``{"importance": [L] (sums to 1, or all 0), "raw": [n, T], "raw_test": [m, T]}``
    with ``T = 1`` for two classes, else ``num_classes``; predicted class = argmax of raw
    (binary: ``raw > 0``).
    """
    n, num_l = x.shape
    edges = bin_edges(x, max_bins, exact_up_to)
    num_b = max(len(e) for e in edges) + 1
    bins = apply_bins(x, edges)
    offs = bins + num_b * np.arange(num_l)  # [n, L] flat (feature, bin) index
    onehot = sp.csr_matrix((np.ones(n * num_l), (offs.T.ravel(), np.tile(np.arange(n), num_l))),
                           shape=(num_l * num_b, n))
    counts0 = np.asarray(onehot.sum(axis=1)).reshape(num_l, num_b)
    bins_test = apply_bins(x_test, edges) if x_test is not None else None

    binary = num_classes == 2
    num_t = 1 if binary else num_classes
    prior = np.clip(np.bincount(y, minlength=num_classes) / n, _EPS, 1 - _EPS)
    onehot_y = (y[:, None] == np.arange(num_classes)).astype(np.float64)  # [n, K]
    if binary:
        target = onehot_y[:, 1:]  # [n, 1]
        raw = np.full((n, 1), np.log(prior[1] / (1 - prior[1])))
        newton = 1.0
    else:
        target = onehot_y
        raw = np.tile(np.log(prior), (n, 1))  # log priors (softmax-invariant shift of sklearn's)
        newton = (num_classes - 1) / num_classes
    m = 0 if x_test is None else x_test.shape[0]
    raw_test = np.tile(raw[:1], (m, 1))
    # feature-major flat bins: value of latent j for sample i at j * n + i
    bins_flat = np.ascontiguousarray(bins.T).ravel()
    bins_test_flat = np.ascontiguousarray(bins_test.T).ravel() if m else None
    rows, rows_test = np.arange(n)[None, :], np.arange(m)[None, :]
    tree_ids = np.arange(num_t)[:, None]
    importance_sum = np.zeros(num_l)
    num_relevant = 0

    for _ in range(n_stages):
        if binary:
            prob = 1.0 / (1.0 + np.exp(-raw))
        else:
            prob = np.exp(raw - raw.max(axis=1, keepdims=True))
            prob /= prob.sum(axis=1, keepdims=True)
        resid = target - prob  # negative gradient r = y - p, [n, T]
        r_t = np.ascontiguousarray(resid.T)  # [T, n]
        node = np.zeros((num_t, n), np.int64)
        node_test = np.zeros((num_t, m), np.int64)
        alive = np.ones((num_t, 1), bool)
        importance = np.zeros((num_t, num_l))
        root_split = np.zeros(num_t, bool)
        hist_s = hist_c = None
        for d in range(depth):
            nn = 2 ** d
            if d == 0:
                hist_s = (onehot @ resid).T.reshape(num_t, 1, num_l, num_b)
                hist_c = np.broadcast_to(counts0, (num_t, 1, num_l, num_b))
            else:
                # left children only: column (t, parent) of the masked residual / count matrix
                half = nn // 2
                left = (node % 2) == 0
                col = tree_ids * half + node // 2  # [T, n]
                mat = np.zeros((n, 2 * num_t * half))
                tt, ss = np.nonzero(left)
                mat[ss, col[tt, ss]] = r_t[tt, ss]
                mat[ss, num_t * half + col[tt, ss]] = 1.0
                prod = (onehot @ mat).T.reshape(2, num_t, half, num_l, num_b)
                s_left, c_left = prod[0], prod[1]
                hist_s = np.stack([s_left, hist_s - s_left], axis=2).reshape(
                    num_t, nn, num_l, num_b)
                hist_c = np.stack([c_left, hist_c - c_left], axis=2).reshape(
                    num_t, nn, num_l, num_b)
            # node totals; impurity (variance) from sum of squares per node
            flat = (tree_ids * nn + node).ravel()
            c_tot = hist_c[:, :, 0].sum(-1)  # [T, nn]
            s_tot = hist_s[:, :, 0].sum(-1)
            ss_tot = np.bincount(flat, weights=(r_t ** 2).ravel(),
                                 minlength=num_t * nn).reshape(num_t, nn)
            safe_c = np.maximum(c_tot, 1)
            impurity = ss_tot / safe_c - (s_tot / safe_c) ** 2
            # gain of each threshold: S_l^2/n_l + S_r^2/n_r - S^2/n
            s_l = np.cumsum(hist_s, axis=-1)[..., :-1]
            c_l = np.cumsum(hist_c, axis=-1)[..., :-1]
            s_r = s_tot[..., None, None] - s_l
            c_r = c_tot[..., None, None] - c_l
            invalid = (c_l < 0.5) | (c_r < 0.5)  # a side would be empty
            gain = np.square(s_l)
            gain /= np.maximum(c_l, 1.0, out=c_l)
            np.square(s_r, out=s_r)
            s_r /= np.maximum(c_r, 1.0, out=c_r)
            gain += s_r
            gain[invalid] = -np.inf
            gain = gain.reshape(num_t, nn, -1)
            best = gain.argmax(-1)
            best_gain = np.take_along_axis(gain, best[..., None], -1)[..., 0]
            split = (alive & (c_tot >= 2) & (impurity > _EPS) & np.isfinite(best_gain))
            feat, thr = best // (num_b - 1), best % (num_b - 1)
            decrease = np.where(split, best_gain - s_tot ** 2 / safe_c, 0.0) / n
            np.add.at(importance, (np.broadcast_to(tree_ids, feat.shape), feat),
                      np.maximum(decrease, 0.0))
            if d == 0:
                root_split = split[:, 0]
            # route samples: split nodes send bin > thr right; others send all left
            # per (tree, node) rule: split feature and threshold bin (non-split nodes get
            # threshold num_b, above every bin, so all their samples go left)
            rule_f = feat.ravel()
            rule_t = np.where(split, thr, num_b).ravel()
            at = tree_ids * nn + node
            node = 2 * node + (bins_flat[rule_f[at] * n + rows] > rule_t[at])
            if m:
                at = tree_ids * nn + node_test
                node_test = 2 * node_test + (bins_test_flat[rule_f[at] * m + rows_test]
                                             > rule_t[at])
            alive = np.stack([split, split], axis=2).reshape(num_t, 2 * nn)
        # leaf values: one Newton step, (K-1)/K * sum r / sum p(1-p) (safe-divided)
        nl = 2 ** depth
        flat = (tree_ids * nl + node).ravel()
        num = np.bincount(flat, weights=r_t.ravel(), minlength=num_t * nl)
        den = np.bincount(flat, weights=(prob * (1 - prob)).T.ravel(), minlength=num_t * nl)
        value = np.where(np.abs(den) < 1e-150, 0.0, newton * num / np.where(den == 0, 1, den))
        value = value.reshape(num_t, nl)
        raw += learning_rate * np.take_along_axis(value, node, 1).T
        if m:
            raw_test += learning_rate * np.take_along_axis(value, node_test, 1).T
        importance_sum += importance[root_split].sum(0)
        num_relevant += int(root_split.sum())

    total = importance_sum.sum()
    out = importance_sum / num_relevant / (total / num_relevant) if total > 0 else importance_sum
    return {"importance": out, "raw": raw, "raw_test": raw_test}


def predict(raw: np.ndarray) -> np.ndarray:
    """Class labels from raw scores ``[n, T]`` of :func:`fit_gbt`."""
    return (raw[:, 0] > 0).astype(np.int64) if raw.shape[1] == 1 else raw.argmax(axis=1)
