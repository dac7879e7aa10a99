"""Histogram gradient-boosted trees reproducing sklearn's ``GradientBoostingClassifier()``
(Friedman, "Greedy Function Approximation: A Gradient Boosting Machine", Ann. Stat. 2001)
for DCI's importance matrix (Eastwood & Williams 2018).

Same algorithm as sklearn's defaults: raw scores start at the log class priors (binary:
the prior logit); each of 100 stages fits one depth-3 regression tree per class (binary: one
tree) to the negative gradient ``r_k = y_k - p_k`` with squared-error split gain
``S_l^2/n_l + S_r^2/n_r - S^2/n`` (the friedman_mse proxy orders splits identically for
one output); a node is split unless it has < 2 samples or variance <= float64 eps; leaf
values are one Newton step ``(K-1)/K * sum r / sum p(1-p)`` (binary: ``sum r / sum p(1-p)``;
0 when ``|sum p(1-p)| < 1e-150``), shrunk by 0.1. Feature importance of a tree = its total
weighted impurity decrease per feature divided by the number of samples; sklearn averages
these raw vectors over all trees that split at least once, then normalises the average to
sum 1 — done the same way here.

Difference from sklearn: a latent with more than ``exact_up_to`` (4096) distinct values
only offers ``max_bins`` (256) quantile thresholds (fewer distinct values: sklearn's exact
midpoint thresholds; so an evaluation on up to ~5,000 samples is exact; binning moved D, C
and informativeness by at most 0.016 against exact thresholds on the fixtures and synthetic
codes at 10,000 samples, but by up to 0.04 at 2,500, hence the limit), ties between
equally good splits (gains within a relative 1e-12) go to the first latent and threshold
instead of sklearn's random latent order (ties are common: at the first stage residuals take
one value per class, so many splits score the same), and sklearn casts codes to float32.

Speed (:func:`fit_gbt_factors`, numba): the trees of all factors (one per class; 113 for
dSprites' factors) are boosted together, each stage in two parallel compiled steps: the
softmax (with :mod:`metrics._vexp`'s ``exp``: numpy's is scalar on CPUs without AVX-512),
then one tree per task of a parallel loop (dynamically scheduled over the threads). A tree
keeps its samples partitioned by node (stable, branch-free partition); per node and latent
it accumulates float64 gradient sums and integer counts per bin, building only the smaller
child of each split and deriving its sibling as parent - child; split gains scan the
cumulative sums with a table of ``1/count``. The kernels compile on first use and are cached
on disk (numba ``cache=True``; about 14 s once on a 2-core EPYC, timed as the first
``fit_gbt`` call with a fresh ``NUMBA_CACHE_DIR``; then about 0.3 s to load per process).
Without numba the slower pure-numpy :func:`_fit_gbt_numpy` (one sparse one-hot product per
tree level) grows the same trees (tests/test_gbt.py checks them against each other and
against sklearn).
"""

from __future__ import annotations

import functools
import os

import numpy as np
import scipy.sparse as sp

from metrics._vexp import exp64_inplace

_EPS = np.finfo(np.float64).eps
_TIE = 1.0 + 1e-12  # split gains closer than this ratio count as ties (first one wins)
_BLOCK = 512  # samples per block of the softmax kernels (vectorised row slices)


def bin_edges(x: np.ndarray, max_bins: int = 256, exact_up_to: int = 4096
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


def threshold_tables(x: np.ndarray, edges: list[np.ndarray]
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split values for test samples, ``(exact [L] bool, value [L, B], edge [L, B])`` with
    ``B`` = the most bins of a latent. A split of latent ``j`` after bin ``t`` whose node's
    next non-empty bin is ``u`` sends ``x <= threshold`` left, with sklearn's node-local
    midpoint ``(value[j, t] + value[j, u]) / 2`` for exact latents (bin ``b`` holds the
    single value ``value[j, b]``) and the bin edge ``edge[j, t]`` for quantile-binned ones."""
    num_b = max(len(e) for e in edges) + 1
    exact = np.zeros(len(edges), bool)
    value = np.zeros((len(edges), num_b))
    edge = np.full((len(edges), num_b), np.inf)
    for j, e in enumerate(edges):
        edge[j, :len(e)] = e
        values = np.unique(x[:, j])
        if len(values) == len(e) + 1:  # every distinct value has its own bin
            exact[j] = True
            value[j, :len(values)] = values
    return exact, value, edge


def apply_bins(x: np.ndarray, edges: list[np.ndarray]) -> np.ndarray:
    """``int [n, L]`` bin of each value: bin ``b`` goes left of threshold ``edges[j][b']``
    iff ``b <= b'`` (sklearn sends ``x <= threshold`` left)."""
    return np.stack([np.searchsorted(e, x[:, j], side="left") for j, e in enumerate(edges)],
                    axis=1).reshape(x.shape[0], len(edges))


# ---------------------------------------------------------------------------------------
# numba kernels: plain functions here, compiled on first use by _kernels() (importing numba
# lazily keeps ``import metrics`` light); ``prange`` is rebound to numba's there.
prange = range
_grow_tree_jit = None  # compiled _grow_tree, set by _kernels()
_exp_inplace_jit = None  # compiled metrics._vexp.exp64_inplace, set by _kernels()


def _k_softmax(raw, fac_start, fac_binary, expo, tot):
    """The stage's probabilities, over sample blocks in parallel: ``expo [T, n] = exp(raw -
    max_class raw)`` and ``tot [F, n] = 1 / sum_class expo`` per multiclass factor, so that
    ``p = expo * tot``; binary factors ``expo = exp(-|raw|)``."""
    num_f = fac_start.shape[0] - 1
    n = raw.shape[1]
    for blk in prange((n + _BLOCK - 1) // _BLOCK):  # 1-D row slices let LLVM vectorise
        a = blk * _BLOCK
        e = min(a + _BLOCK, n)
        scale = np.empty(e - a)
        for g in range(num_f):
            t0 = fac_start[g]
            if fac_binary[g]:
                raw_row = raw[t0, a:e]
                out = expo[t0, a:e]
                for i in range(e - a):
                    out[i] = -abs(raw_row[i])
                _exp_inplace_jit(out, scale)
                continue
            tg = tot[g, a:e]  # the class maximum, then the inverse total
            raw_row = raw[t0, a:e]
            for i in range(e - a):
                tg[i] = raw_row[i]
            for t in range(t0 + 1, fac_start[g + 1]):
                raw_row = raw[t, a:e]
                for i in range(e - a):
                    tg[i] = max(tg[i], raw_row[i])
            for t in range(t0, fac_start[g + 1]):
                raw_row = raw[t, a:e]
                out = expo[t, a:e]
                for i in range(e - a):
                    out[i] = raw_row[i] - tg[i]
                _exp_inplace_jit(out, scale)
            for i in range(e - a):
                tg[i] = 0.0
            for t in range(t0, fac_start[g + 1]):
                out = expo[t, a:e]
                for i in range(e - a):
                    tg[i] += out[i]
            for i in range(e - a):
                tg[i] = 1.0 / tg[i]


def _grow_tree(t, bins, nbins, counts0, x_test, exact, split_value, split_edge, labels,
               tree_fac, tree_cls, fac_binary, fac_newton, expo, tot, raw, raw_test,
               learning_rate, depth, inv, imp_sum, relevant):
    """Grow tree ``t`` of :func:`_k_trees` (one task of its parallel loop)."""
    num_l, n = bins.shape
    m = x_test.shape[1]
    num_b = counts0.shape[1]
    num_nodes = 2 ** depth
    half = max(num_nodes // 2, 1)
    idx = np.empty(n, np.int64)  # sample ids, grouped by node
    idx_next = np.empty(n, np.int64)
    start = np.zeros(num_nodes + 1, np.int64)  # node q holds idx[start[q]:start[q+1]]
    start_next = np.zeros(num_nodes + 1, np.int64)
    hist_s = np.empty((half, num_l, num_b))  # gradient sum per (node, latent, bin)
    hist_c = np.empty((half, num_l, num_b), np.int64)  # sample count
    hist_s_next = np.empty((half, num_l, num_b))
    hist_c_next = np.empty((half, num_l, num_b), np.int64)
    s_node = np.zeros(num_nodes)  # sum r, sum r^2, sum p(1-p) per node
    ss_node = np.zeros(num_nodes)
    s_next = np.zeros(num_nodes)
    ss_next = np.zeros(num_nodes)
    h_next = np.zeros(num_nodes)
    alive = np.zeros(num_nodes, np.bool_)
    alive_next = np.zeros(num_nodes, np.bool_)
    rule_f = np.zeros(num_nodes, np.int64)
    rule_t = np.zeros(num_nodes, np.int64)
    rule_x = np.zeros(num_nodes)  # threshold value for the test samples
    rule_nl = np.zeros(num_nodes, np.int64)  # samples going left
    value = np.zeros(num_nodes)
    imp_tree = np.zeros(num_l)
    node_test = np.zeros(m, np.int64)
    r_t = np.empty(n)  # negative gradient r = y - p
    part = np.empty((4, num_b))  # partial histograms (gradient sums)
    part_c = np.empty((2, num_b), np.int64)  # partial counts
    r_small = np.empty(n)  # r of a smaller child's samples, in node order
    h_t = np.empty(n)  # hessian p (1 - p)
    g = tree_fac[t]
    cls = tree_cls[t]
    lab = labels[g]
    e_t = expo[t]
    raw_t = raw[t]
    if fac_binary[g]:  # p = 1 / (1 + exp(-raw)) from exp(-|raw|)
        for i in range(n):
            p = 1.0 / (1.0 + e_t[i]) if raw_t[i] >= 0 else e_t[i] / (1.0 + e_t[i])
            r_t[i] = (1.0 if lab[i] == cls else 0.0) - p
            h_t[i] = p * (1.0 - p)
    else:  # softmax p = exp(raw - max) / sum
        tot_g = tot[g]
        for i in range(n):
            p = e_t[i] * tot_g[i]
            r_t[i] = (1.0 if lab[i] == cls else 0.0) - p
            h_t[i] = p * (1.0 - p)
    s = 0.0
    ss = 0.0
    for i in range(n):
        idx[i] = i
        s += r_t[i]
        ss += r_t[i] * r_t[i]
    start[0] = 0
    start[1] = n
    s_node[0] = s
    ss_node[0] = ss
    alive[0] = True
    # root histograms (counts are the same for every tree), into 4 interleaved partial
    # histograms: consecutive samples often share a bin when latents have few values, and
    # one histogram would make each add wait for the previous one's store
    n4 = n - n % 4
    for j in range(num_l):
        row = bins[j]
        hs = hist_s[0, j]
        for b in range(nbins[j]):
            hist_c[0, j, b] = counts0[j, b]
            for u in range(4):
                part[u, b] = 0.0
        for i in range(0, n4, 4):
            part[0, row[i]] += r_t[i]
            part[1, row[i + 1]] += r_t[i + 1]
            part[2, row[i + 2]] += r_t[i + 2]
            part[3, row[i + 3]] += r_t[i + 3]
        for i in range(n4, n):
            part[0, row[i]] += r_t[i]
        for b in range(nbins[j]):
            hs[b] = (part[0, b] + part[1, b]) + (part[2, b] + part[3, b])
    for j in range(num_l):
        imp_tree[j] = 0.0
    for i in range(m):
        node_test[i] = 0
    root_split = False
    for d in range(depth):
        nn = 2 ** d
        last = d == depth - 1
        # best split of each node: max S_l^2/n_l + S_r^2/n_r, first latent/threshold
        for q in range(nn):
            cnt = start[q + 1] - start[q]
            rule_f[q] = 0
            rule_t[q] = num_b  # not split: every bin goes left
            rule_x[q] = np.inf
            rule_nl[q] = cnt
            if not alive[q] or cnt < 2:
                alive[q] = False
                continue
            s_tot = s_node[q]
            mean = s_tot / cnt
            if ss_node[q] / cnt - mean * mean <= 2.220446049250313e-16:  # impurity
                alive[q] = False
                continue
            best = -1.0
            best_f = -1
            best_t = -1
            best_nl = 0
            for j in range(num_l):
                hs = hist_s[q, j]
                hc = hist_c[q, j]
                s_l = 0.0
                c_l = 0
                for b in range(nbins[j] - 1):
                    c = hc[b]
                    if c == 0:
                        continue  # empty bin: same partition as the threshold before
                    s_l += hs[b]
                    c_l += c
                    c_r = cnt - c_l
                    if c_r == 0:
                        break
                    s_r = s_tot - s_l
                    gain = s_l * s_l * inv[c_l] + s_r * s_r * inv[c_r]
                    if gain > best * _TIE:  # gains >= 0; within 1e-12: keep the first
                        best = gain
                        best_f = j
                        best_t = b
                        best_nl = c_l
            if best_f < 0:
                alive[q] = False
                continue
            rule_f[q] = best_f
            rule_t[q] = best_t
            rule_nl[q] = best_nl
            if exact[best_f]:  # sklearn: midpoint of the node's values either side
                hc = hist_c[q, best_f]
                u = best_t + 1
                while hc[u] == 0:
                    u += 1
                rule_x[q] = 0.5 * (split_value[best_f, best_t] + split_value[best_f, u])
            else:
                rule_x[q] = split_edge[best_f, best_t]
            # weighted impurity decrease / n = (gain - S^2/n_node) / n
            decrease = (best - s_tot * s_tot * inv[cnt]) / n
            if decrease > 0.0:
                imp_tree[best_f] += decrease
            if d == 0:
                root_split = True
        # route: stable, branch-free partition of each node's samples into its children,
        # with the children's sums of r and r^2 (next split level) or of p(1-p) (leaves)
        for q in range(nn):
            a = start[q]
            e = start[q + 1]
            start_next[2 * q] = a
            alive_next[2 * q] = alive[q]
            alive_next[2 * q + 1] = alive[q]
            sl = 0.0
            ssl = 0.0
            hl = 0.0
            sr = 0.0
            ssr = 0.0
            hr = 0.0
            if rule_t[q] == num_b:  # not split: all samples stay in the left child
                for k in range(a, e):
                    idx_next[k] = idx[k]
                start_next[2 * q + 1] = e
                s_next[2 * q] = s_node[q]
                ss_next[2 * q] = ss_node[q]
                s_next[2 * q + 1] = 0.0
                ss_next[2 * q + 1] = 0.0
                if last:
                    for k in range(a, e):
                        hl += h_t[idx[k]]
                h_next[2 * q] = hl
                h_next[2 * q + 1] = 0.0
                continue
            row = bins[rule_f[q]]
            thr = rule_t[q]
            pos_l = a
            pos_r = a + rule_nl[q]
            if last:
                for k in range(a, e):
                    i = idx[k]
                    right = 1 if row[i] > thr else 0
                    idx_next[pos_l + right * (pos_r - pos_l)] = i
                    pos_r += right
                    pos_l += 1 - right
                    w = float(right)
                    rv = r_t[i]
                    rr = rv * w  # exact: rv or 0
                    sr += rr
                    sl += rv - rr
                    hv = h_t[i]
                    hr += hv * w
                    hl += hv - hv * w
            else:
                for k in range(a, e):
                    i = idx[k]
                    right = 1 if row[i] > thr else 0
                    idx_next[pos_l + right * (pos_r - pos_l)] = i
                    pos_r += right
                    pos_l += 1 - right
                    rv = r_t[i]
                    rr = rv * float(right)  # exact: rv or 0
                    sr += rr
                    sl += rv - rr
                    ssr += rr * rv
                    ssl += (rv - rr) * rv
            start_next[2 * q + 1] = pos_l
            s_next[2 * q] = sl
            s_next[2 * q + 1] = sr
            ss_next[2 * q] = ssl
            ss_next[2 * q + 1] = ssr
            h_next[2 * q] = hl
            h_next[2 * q + 1] = hr
        start_next[2 * nn] = n
        if not last:
            # children histograms: build the smaller child, sibling = parent - child
            for q in range(nn):
                if not alive[q]:
                    continue
                n_left = start_next[2 * q + 1] - start_next[2 * q]
                n_right = start_next[2 * q + 2] - start_next[2 * q + 1]
                small = 2 * q if n_left <= n_right else 2 * q + 1
                other = 4 * q + 1 - small
                a = start_next[small]
                e = start_next[small + 1]
                ids = idx_next[a:e]
                cnt = e - a
                cnt2 = cnt - cnt % 2
                for k in range(cnt):
                    r_small[k] = r_t[ids[k]]
                for j in range(num_l):
                    row = bins[j]
                    hs = hist_s_next[small, j]
                    hc = hist_c_next[small, j]
                    for b in range(nbins[j]):
                        part[0, b] = 0.0
                        part[1, b] = 0.0
                        part_c[0, b] = 0
                        part_c[1, b] = 0
                    # two interleaved partial histograms (as the root's): an add need not
                    # wait for the previous one's store when consecutive samples share a bin
                    for k in range(0, cnt2, 2):
                        b0 = row[ids[k]]
                        b1 = row[ids[k + 1]]
                        part[0, b0] += r_small[k]
                        part_c[0, b0] += 1
                        part[1, b1] += r_small[k + 1]
                        part_c[1, b1] += 1
                    for k in range(cnt2, cnt):
                        b0 = row[ids[k]]
                        part[0, b0] += r_small[k]
                        part_c[0, b0] += 1
                    for b in range(nbins[j]):
                        hs[b] = part[0, b] + part[1, b]
                        hc[b] = part_c[0, b] + part_c[1, b]
                    hs_parent = hist_s[q, j]
                    hc_parent = hist_c[q, j]
                    hs_other = hist_s_next[other, j]
                    hc_other = hist_c_next[other, j]
                    for b in range(nbins[j]):
                        hs_other[b] = hs_parent[b] - hs[b]
                        hc_other[b] = hc_parent[b] - hc[b]
            hist_s, hist_s_next = hist_s_next, hist_s
            hist_c, hist_c_next = hist_c_next, hist_c
        idx, idx_next = idx_next, idx
        start, start_next = start_next, start
        s_node, s_next = s_next, s_node
        ss_node, ss_next = ss_next, ss_node
        alive, alive_next = alive_next, alive
        for i in range(m):
            q = node_test[i]
            node_test[i] = 2 * q + (1 if x_test[rule_f[q], i] > rule_x[q] else 0)
    # leaf values: one Newton step (K-1)/K sum r / sum p(1-p), shrunk
    newton = fac_newton[tree_fac[t]]
    for q in range(num_nodes):
        den = h_next[q]
        v = 0.0 if abs(den) < 1e-150 else newton * s_node[q] / den
        value[q] = learning_rate * v
        for k in range(start[q], start[q + 1]):
            raw_t[idx[k]] += value[q]
    for i in range(m):
        raw_test[t, i] += value[node_test[i]]
    if root_split:
        relevant[t] += 1
        for j in range(num_l):
            imp_sum[t, j] += imp_tree[j]


def _k_trees(bins, nbins, counts0, x_test, exact, split_value, split_edge, labels, tree_fac,
             tree_cls, fac_binary, fac_newton, expo, tot, raw, raw_test, learning_rate, depth,
             inv, imp_sum, relevant):
    """Grow one tree per row of ``resid [T, n]`` and add its shrunk leaf values to ``raw
    [T, n]`` / ``raw_test [T, m]``. ``bins [L, n]`` and ``bins_test [L, m]`` are
    latent-major bin indices, ``counts0 [L, B]`` the root's bin counts, ``inv[c] = 1/c``.
    Trees that split add their impurity decreases / n to ``imp_sum [T, L]`` and 1 to
    ``relevant [T]``."""
    for t in prange(raw.shape[0]):  # dynamically scheduled, one tree per task
        # prange's index is unsigned: cast, or _grow_tree compiles a second time (~5 s)
        _grow_tree_jit(np.int64(t), bins, nbins, counts0, x_test, exact, split_value, split_edge,
                       labels, tree_fac, tree_cls, fac_binary, fac_newton, expo, tot, raw,
                       raw_test, learning_rate, depth, inv, imp_sum, relevant)


@functools.cache
def _kernels():
    """The two kernels (softmax, trees) compiled with numba (cached on disk when possible),
    or None when numba is not installed."""
    # libgomp's default busy-waiting makes every parallel region stall for milliseconds when
    # another process holds a core; passive waiting costs ~10 us per region (unless the user
    # chose a policy, or OpenMP already started in this process)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import numba
    except ImportError:
        return None
    # globals are resolved when a kernel compiles: bind numba's prange and the compiled tree
    globals()["prange"] = numba.prange
    try:
        exp_inplace = numba.njit(cache=True, fastmath={"contract"})(exp64_inplace)
        cache = True
    except RuntimeError:  # no writable cache location: compile in every process
        exp_inplace, cache = numba.njit(fastmath={"contract"})(exp64_inplace), False
    globals()["_exp_inplace_jit"] = exp_inplace
    globals()["_grow_tree_jit"] = numba.njit(cache=cache)(_grow_tree)
    return (numba.njit(cache=cache, parallel=True)(_k_softmax),
            numba.njit(cache=cache, parallel=True)(_k_trees))


def have_numba() -> bool:
    """Whether :func:`fit_gbt_factors` can use the compiled kernels."""
    return _kernels() is not None


def fit_gbt_factors(x: np.ndarray, ys: np.ndarray, num_classes,
                    x_test: np.ndarray | None = None,
                    *, n_stages: int = 100, learning_rate: float = 0.1, depth: int = 3,
                    max_bins: int = 256, exact_up_to: int = 4096,
                    backend: str = "auto") -> list[dict]:
    """Boost one classifier per column of ``ys int [n, F]`` (labels in
    ``[0, num_classes[g])``) on the same codes ``x [n, L]``, all factors together.

    ``backend``: ``"numba"``, ``"numpy"`` (:func:`_fit_gbt_numpy` per factor) or ``"auto"``
    (numba when installed). Returns one :func:`fit_gbt` result dict per factor.
    """
    if backend not in ("auto", "numba", "numpy"):
        raise ValueError(f"fit_gbt_factors: backend {backend!r}; accepted: auto, numba, numpy")
    ys = np.asarray(ys, np.int64).reshape(x.shape[0], -1)
    kernels = None if backend == "numpy" else _kernels()
    if kernels is None:
        if backend == "numba":
            raise ImportError("fit_gbt_factors(backend='numba') needs numba (pip install numba)")
        return [_fit_gbt_numpy(x, ys[:, g], int(num_classes[g]), x_test, n_stages=n_stages,
                               learning_rate=learning_rate, depth=depth, max_bins=max_bins,
                               exact_up_to=exact_up_to) for g in range(ys.shape[1])]
    k_softmax, k_trees = kernels
    n, num_l = x.shape
    edges = bin_edges(x, max_bins, exact_up_to)
    nbins = np.array([len(e) + 1 for e in edges], np.int64)
    num_b = int(nbins.max())
    if num_b > 2 ** 16:
        raise ValueError(f"fit_gbt_factors: {num_b} bins per latent; at most 65536 "
                         "(lower exact_up_to / max_bins)")
    # latent-major bins (uint16: one compiled signature for binned and exact thresholds)
    bins = np.ascontiguousarray(apply_bins(x, edges).T.astype(np.uint16))
    x_test = x[:0] if x_test is None else np.asarray(x_test, np.float64)
    exact, split_value, split_edge = threshold_tables(x, edges)
    x_test_t = np.ascontiguousarray(x_test.T)  # [L, m]
    counts0 = np.stack([np.bincount(bins[j], minlength=num_b) for j in range(num_l)])
    counts0 = counts0.astype(np.int64)
    inv = np.concatenate([[0.0], 1.0 / np.arange(1, n + 1)])  # inv[c] = 1 / c

    # tree layout: binary factors one tree (class 1), others one tree per class
    fac_start, tree_fac, tree_cls, binary, newton, init = [0], [], [], [], [], []
    for g in range(ys.shape[1]):
        k = int(num_classes[g])
        prior = np.clip(np.bincount(ys[:, g], minlength=k) / n, _EPS, 1 - _EPS)
        if k == 2:
            tree_fac.append(g)
            tree_cls.append(1)
            init.append(np.log(prior[1] / (1 - prior[1])))  # prior logit
        else:
            tree_fac += [g] * k
            tree_cls += list(range(k))
            init += list(np.log(prior))  # log priors (softmax-invariant shift of sklearn's)
        binary.append(k == 2)
        newton.append(1.0 if k == 2 else (k - 1) / k)
        fac_start.append(len(tree_fac))
    num_t = len(tree_fac)
    init = np.asarray(init)
    raw = np.ascontiguousarray(np.repeat(init[:, None], n, axis=1))  # [T, n]
    raw_test = np.ascontiguousarray(np.repeat(init[:, None], x_test.shape[0], axis=1))
    fac_start = np.asarray(fac_start, np.int64)
    binary = np.asarray(binary)
    tree_fac = np.asarray(tree_fac, np.int64)
    tree_cls = np.asarray(tree_cls, np.int64)
    newton = np.asarray(newton)
    expo = np.empty((num_t, n))
    tot = np.ones((ys.shape[1], n))
    labels = np.ascontiguousarray(ys.T)  # [F, n]
    imp_sum = np.zeros((num_t, num_l))
    relevant = np.zeros(num_t, np.int64)
    import numba

    from metrics._threads import thread_budget

    threads = numba.get_num_threads()
    # small problems: fewer threads (waking the pool each stage costs more than it saves);
    # a tree's work grows with its samples and with its latents' bins (histogram scans)
    work = num_t * (n + num_l * num_b)
    numba.set_num_threads(max(1, min(threads, thread_budget(), work // 100_000)))
    try:
        with numba.parallel_chunksize(1):  # dynamic scheduling: robust to a busy core
            for _ in range(n_stages):
                k_softmax(raw, fac_start, binary, expo, tot)
                k_trees(bins, nbins, counts0, x_test_t, exact, split_value, split_edge, labels,
                        tree_fac, tree_cls, binary, newton, expo, tot, raw, raw_test,
                        float(learning_rate), int(depth), inv, imp_sum, relevant)
    finally:
        numba.set_num_threads(threads)
    out = []
    for g in range(ys.shape[1]):
        a, e = fac_start[g], fac_start[g + 1]
        total = imp_sum[a:e].sum(axis=0)  # sklearn: mean over relevant trees, then / sum
        importance = total / total.sum() if total.sum() > 0 else total
        out.append({"importance": importance, "raw": raw[a:e].T.copy(),
                    "raw_test": raw_test[a:e].T.copy()})
    return out


def fit_gbt(x: np.ndarray, y: np.ndarray, num_classes: int, x_test: np.ndarray | None = None,
            *, n_stages: int = 100, learning_rate: float = 0.1, depth: int = 3,
            max_bins: int = 256, exact_up_to: int = 4096, backend: str = "auto") -> dict:
    """Boost depth-``depth`` trees on ``x [n, L]`` -> labels ``y int [n]`` in
    ``[0, num_classes)``.

    Returns ``{"importance": [L] (sums to 1, or all 0), "raw": [n, T], "raw_test": [m, T]}``
    with ``T = 1`` for two classes, else ``num_classes``; predicted class = argmax of raw
    (binary: ``raw > 0``).
    """
    return fit_gbt_factors(x, np.asarray(y)[:, None], [num_classes], x_test,
                           n_stages=n_stages, learning_rate=learning_rate, depth=depth,
                           max_bins=max_bins, exact_up_to=exact_up_to, backend=backend)[0]


def _fit_gbt_numpy(x: np.ndarray, y: np.ndarray, num_classes: int, x_test: np.ndarray | None = None,
            *, n_stages: int = 100, learning_rate: float = 0.1, depth: int = 3,
            max_bins: int = 256, exact_up_to: int = 4096) -> dict:
    """Pure-numpy version of :func:`fit_gbt` (fallback without numba, and the tests' second
    opinion): the trees of one stage grow together, level by level; the (tree, node, latent,
    bin) histograms of a level are one sparse one-hot matrix product (left children only;
    right = parent - left).

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
    exact, split_value, split_edge = threshold_tables(x, edges)

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
    x_test_flat = np.ascontiguousarray(x_test.T).ravel() if m else None
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
            # first (latent, threshold) within 1e-12 of the best gain: ties broken by order,
            # not by float rounding
            top = gain.max(-1, keepdims=True)
            best = (gain >= top - (_TIE - 1) * np.abs(top)).argmax(-1)
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
                # test samples: x > threshold value goes right; exact latents use sklearn's
                # node-local midpoint up to the node's next non-empty bin u
                counts = np.take_along_axis(hist_c, feat[..., None, None], 2)[:, :, 0]
                after = (np.arange(num_b) > thr[..., None]) & (counts > 0.5)
                u = np.where(after.any(-1), after.argmax(-1), thr)
                cut = np.where(exact[feat],
                               0.5 * (split_value[feat, thr] + split_value[feat, u]),
                               split_edge[feat, thr])
                rule_x = np.where(split, cut, np.inf).ravel()
                at = tree_ids * nn + node_test
                node_test = 2 * node_test + (x_test_flat[rule_f[at] * m + rows_test]
                                             > rule_x[at])
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
