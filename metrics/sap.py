"""SAP score (Kumar, Sattigeri, Balakrishnan, "Variational Inference of Disentangled Latent
Concepts from Unlabeled Observations", ICLR 2018), as computed by disentanglement_lib.

For every (latent j, factor k) pair a linear SVM on the single latent predicts the factor
(``sklearn.svm.LinearSVC(C=0.01, class_weight="balanced")``: squared hinge, L2, the
intercept regularised like a weight, one-vs-rest); ``S[j, k]`` is its test accuracy and

    SAP = mean_k (S_(1)k - S_(2)k)   (top-two gap over latents).

The one-feature SVM is solved exactly here: its primal

    f(w, b) = (w^2 + b^2) / 2 + sum_i C_i max(0, 1 - y_i (w x_i + b))^2

is a convex, piecewise-quadratic function of two numbers whose active sets are prefixes or
suffixes of the sorted ``x``, so prefix sums give f, its gradient and Hessian in O(log n);
a damped Newton iteration reaches the optimum in a few steps. Weights are liblinear's: in
one-vs-rest the positives get ``C * w_c`` (balanced class weight) and the negatives ``C``;
with two classes class 1 is positive (``C * w_1``) and class 0 negative (``C * w_0``).
"""

from __future__ import annotations

import numpy as np

from metrics import register_metric
from metrics._common import train_test
from metrics._threads import thread_map


class _PrefixSums:
    """Weighted ``[1, x, x^2]`` sums over value-sorted samples, per class, in O(n) memory.

    A sample's key is ``class * n + rank(x)``; keys sorted ascending group the classes and
    order each group by x, so "class c samples among the k smallest x" is one searchsorted.
    """

    def __init__(self, x: np.ndarray, y: np.ndarray):
        n = x.shape[0]
        order = np.argsort(x, kind="stable")
        self.xs = x[order]
        rank = np.empty(n, np.int64)
        rank[order] = np.arange(n)
        keys = y * n + rank
        key_order = np.argsort(keys, kind="stable")
        self.keys, self.n = keys[key_order], n
        powers = np.stack([np.ones(n), x, x * x], axis=-1)
        zero = np.zeros((1, 3))
        self.all = np.concatenate([zero, np.cumsum(powers[order], axis=0)])
        self.cls = np.concatenate([zero, np.cumsum(powers[key_order], axis=0)])

    def class_prefix(self, c: np.ndarray, k: np.ndarray) -> np.ndarray:
        """Sums over class-c samples among the k smallest x: ``[P, 3]``."""
        return self.cls[np.searchsorted(self.keys, c * self.n + k)]


def _active_sums(pre: _PrefixSums, cls, alpha, beta, w, b):
    """Weighted [1, x, x^2] sums over active positives (class ``cls``, w x + b < 1) and active
    negatives (the other samples, w x + b > -1), each [P, 3]."""
    xs, n = pre.xs, pre.n
    safe_w = np.where(w == 0, 1.0, w)
    t_pos, t_neg = (1.0 - b) / safe_w, (-1.0 - b) / safe_w
    full, none = np.full(w.shape, n), np.zeros(w.shape, np.int64)
    # positives: w > 0 -> x < t_pos (prefix); w < 0 -> x > t_pos (suffix)
    p_lo = np.where(w < 0, np.searchsorted(xs, t_pos, "right"), 0)
    p_hi = np.where(w > 0, np.searchsorted(xs, t_pos, "left"), full)
    p_hi = np.where((w == 0) & (b >= 1.0), none, p_hi)
    p_lo = np.minimum(p_lo, p_hi)
    # negatives: w > 0 -> x > t_neg (suffix); w < 0 -> x < t_neg (prefix)
    n_lo = np.where(w > 0, np.searchsorted(xs, t_neg, "right"), 0)
    n_hi = np.where(w < 0, np.searchsorted(xs, t_neg, "left"), full)
    n_hi = np.where((w == 0) & (b <= -1.0), none, n_hi)
    n_lo = np.minimum(n_lo, n_hi)
    pos = pre.class_prefix(cls, p_hi) - pre.class_prefix(cls, p_lo)
    neg = (pre.all[n_hi] - pre.all[n_lo]) - (pre.class_prefix(cls, n_hi)
                                             - pre.class_prefix(cls, n_lo))
    return alpha[:, None] * pos, beta[:, None] * neg


def _objective(w, b, a, bb):
    """f(w, b) from active sums: (w^2+b^2)/2 + sum C (y - w x - b)^2."""
    return (0.5 * (w * w + b * b) + (a[:, 0] + bb[:, 0]) - 2 * w * (a[:, 1] - bb[:, 1])
            - 2 * b * (a[:, 0] - bb[:, 0]) + w * w * (a[:, 2] + bb[:, 2])
            + 2 * w * b * (a[:, 1] + bb[:, 1]) + b * b * (a[:, 0] + bb[:, 0]))


def squared_hinge_svm_1d(x: np.ndarray, y: np.ndarray, cls: np.ndarray, alpha: np.ndarray,
                         beta: np.ndarray, max_iter: int = 100,
                         tol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimisers ``(w [P], b [P])`` of P one-feature L2-regularised squared-hinge SVMs.

    Problem p: positives are the samples with ``y == cls[p]`` (cost ``alpha[p]``), negatives
    all others (cost ``beta[p]``).
    """
    pre = _PrefixSums(np.asarray(x, np.float64), np.asarray(y, np.int64))
    num_p = cls.shape[0]
    w, b = np.zeros(num_p), np.zeros(num_p)
    live = np.arange(num_p)  # problems still iterating
    for _ in range(max_iter):
        cl, al, be, wl, bl = cls[live], alpha[live], beta[live], w[live], b[live]
        a, bb = _active_sums(pre, cl, al, be, wl, bl)
        s0, s1, s2 = a[:, 0] + bb[:, 0], a[:, 1] + bb[:, 1], a[:, 2] + bb[:, 2]
        y1, y0 = a[:, 1] - bb[:, 1], a[:, 0] - bb[:, 0]
        g_w = wl - 2 * (y1 - wl * s2 - bl * s1)  # df/dw
        g_b = bl - 2 * (y0 - wl * s1 - bl * s0)  # df/db
        h_ww, h_wb, h_bb = 1 + 2 * s2, 2 * s1, 1 + 2 * s0  # generalised Hessian
        f0 = _objective(wl, bl, a, bb)
        going = np.maximum(np.abs(g_w), np.abs(g_b)) > tol * (1.0 + np.abs(f0))
        det = h_ww * h_bb - h_wb * h_wb
        d_w = -(h_bb * g_w - h_wb * g_b) / det
        d_b = -(h_ww * g_b - h_wb * g_w) / det
        slope = g_w * d_w + g_b * d_b
        # Armijo backtracking: halve the step only where the decrease is not enough
        step = np.ones(live.shape[0])
        pending = going.copy()
        for _ in range(40):
            idx = np.flatnonzero(pending)
            cw, cb = wl[idx] + step[idx] * d_w[idx], bl[idx] + step[idx] * d_b[idx]
            ai, bi = _active_sums(pre, cl[idx], al[idx], be[idx], cw, cb)
            ok = _objective(cw, cb, ai, bi) <= f0[idx] + 1e-4 * step[idx] * slope[idx]
            pending[idx[ok]] = False
            if not pending.any():
                break
            step[pending] *= 0.5
        moved = going & ~pending  # no decrease after 40 halvings: optimal to rounding
        w[live[moved]] = wl[moved] + step[moved] * d_w[moved]
        b[live[moved]] = bl[moved] + step[moved] * d_b[moved]
        # a step crossing a kink of f can be cut to ~1e-9 of the Newton step for many
        # iterations without changing the answer: a change below 1e-10 relative ends it
        change = step * np.maximum(np.abs(d_w), np.abs(d_b))
        live = live[moved & (change > 1e-10 * (1.0 + np.maximum(np.abs(wl), np.abs(bl))))]
        if live.size == 0:
            break
    return w, b


def linear_svc_1d(x, y, num_classes: int, c: float = 0.01):
    """LinearSVC(C=c, class_weight="balanced") on one feature: ``(w [P], b [P])``."""
    counts = np.bincount(y, minlength=num_classes)
    class_weight = len(y) / (num_classes * np.maximum(counts, 1))
    if num_classes == 2:  # class 1 positive (C w_1), class 0 negative (C w_0)
        cls = np.array([1])
        alpha, beta = c * class_weight[1:2], c * class_weight[0:1]
    else:  # one-vs-rest: positives C w_c, negatives C
        cls = np.arange(num_classes)
        alpha, beta = c * class_weight, np.full(num_classes, c)
    return squared_hinge_svm_1d(x, y, cls, alpha, beta)


def predict_1d(x, w, b):
    """Class predictions of :func:`linear_svc_1d` on ``x [n]``."""
    scores = x[:, None] * w[None] + b[None]
    if w.shape[0] == 1:
        return (scores[:, 0] > 0).astype(np.int64)
    return scores.argmax(axis=1)


def score_matrix(codes, y, codes_test, y_test, num_classes, c: float = 0.01) -> np.ndarray:
    """``[L, K]`` test accuracy of the one-latent SVM for every (latent, factor) pair."""
    def latent_row(j):  # one latent's accuracies for every factor
        x, x_test = codes[:, j].astype(np.float64), codes_test[:, j].astype(np.float64)
        return [np.mean(predict_1d(x_test, *linear_svc_1d(x, y[:, k], int(num_classes[k]), c))
                        == y_test[:, k]) for k in range(y.shape[1])]

    return np.array(thread_map(latent_row, range(codes.shape[1])), float).reshape(
        codes.shape[1], y.shape[1])


@register_metric("sap")
def sap(codes, factors, codes_test=None, factors_test=None, *, c: float = 0.01,
        test_fraction: float = 0.2, seed: int = 0) -> dict:
    """SAP of ``codes [n, L]`` against ``factors int [n, K]``.

    Without ``codes_test``/``factors_test`` a fixed-seed ``test_fraction`` of the samples is
    held out. Returns ``{"sap": float, "sap_matrix": [L, K_used], "warnings": list}``; with a
    single latent the second-best accuracy is taken as 0.
    """
    codes, y, codes_test, y_test, prep = train_test(codes, factors, codes_test, factors_test,
                                                    test_fraction, seed)
    matrix = score_matrix(codes, y, codes_test, y_test, prep.num_classes, c)
    top = np.sort(matrix, axis=0)[::-1]
    if matrix.shape[0] == 1:
        prep.warnings.append("a single latent: the second-best accuracy is taken as 0")
        second = np.zeros(matrix.shape[1])
    else:
        second = top[1]
    return {"sap": float(np.mean(top[0] - second)), "sap_matrix": matrix,
            "warnings": prep.warnings}
