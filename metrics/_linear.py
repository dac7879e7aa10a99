"""Multinomial logistic regression fitted with L-BFGS and Newton-CG (used by InfoE,
explicitness, the BetaVAE score and DCI's ``importance="logistic"`` option).

Each label column is an independent softmax regression on the shared inputs, minimising

    sum_i w_i CE(y_i, softmax(x_i W + b)) / sum_i w_i  +  l2/2 ||W||^2,

which for ``l2 = 1 / (C n)`` is sklearn's ``LogisticRegression(C=C)`` objective (intercepts
unpenalised) and for ``l2 = 0`` the unpenalised one. Balanced class weights are ``w = n /
(C_k n_c)`` as in sklearn. The loss and its gradient are vectorised float32 numpy (the
exponentials a compiled loop, :func:`exp_floored`) on preallocated class-major ``[C, n]``
arrays (:class:`_SoftmaxLoss`), minimised by scipy's L-BFGS-B in float64 (sklearn's lbfgs
solver does the same; no compilation, so a new shape costs nothing); inputs made of one-hot
blocks (InfoE's discrete latents) take a sparse path instead, :class:`_IndexedSoftmaxLoss`
(numba gather/scatter kernels: about 2.5x fewer seconds per evaluation than the dense
products on one-hot QLAE codes). The L-BFGS memory grows with the sample count
(:func:`lbfgs_memory`). A dense fit with at most ``NEWTON_MAX_PARAMS`` parameters that
L-BFGS-B has not finished in ``LBFGS_WARMUP`` iterations goes on with :func:`newton_cg`
(host numpy, one column at a time: CG on exact Hessian-vector products, preconditioned by
the exact Hessian of <= 4,096 rows; the fits that took L-BFGS hundreds of iterations take
5-13 Newton steps to the same or a lower objective: InfoMEC on the beta-VAE means 1.51 ->
0.58 s at 10,000 samples and 15.7 -> 5.2 s at 100,000, ``benchmarks/metrics.py`` on a 2-core
Zen 4 EPYC). The other unpenalised fits (one-hot designs, and dense ones too large for
Newton) run L-BFGS-B on preconditioned coordinates ``U``, ``theta = A^-1/2 U B^-1/2``, with
``B (x) A`` the Kronecker factorisation of the Hessian (:func:`kronecker_factors`; built at
the start and rebuilt at the probabilities of iteration ``KRONECKER_REFRESH``): on the
one-hot QLAE codes InfoE's slowest fit takes 279 iterations instead of 795 at 10,000 samples
and 204 instead of 556 at 100,000; InfoMEC 2.15 -> 0.93 s and 14.1 -> 7.9 s,
``benchmarks/metrics.py``). The columns are fitted on up to
:func:`metrics._threads.thread_budget` threads (numpy's matmul and ufuncs release the GIL),
BLAS held to one thread.

That host path is :func:`fit_softmax`'s choice on CPU; on an accelerator it calls
:func:`metrics._linear_device.fit_softmax_device` instead (all columns in one jitted,
vmapped optax L-BFGS on the default JAX device), as :func:`disentangle.backend.fit_path`
decides (``DISENTANGLE_FIT=host|device`` overrides).

Tried and dropped on CPU: a jitted JAX L-BFGS (compile time of seconds per shape, float32
line searches; the device path is one); and a batched JAX Newton-CG (all columns vmapped,
CG with exact Hessian-vector products, preconditioned by the exact Hessian of a 1,024-row
subsample; branch history, commit 40ba39a). Newton-CG converged in 10-13 steps where L-BFGS
takes hundreds, and agreed with sklearn, but on CPU it was slower: on the beta-VAE fixture
3.2 s CPU against 2.0 s (the [K, n, C_max] lockstep wastes the columns with few classes,
XLA's threads spend CPU, ~1-2 s compilation per shape), and on one-hot QLAE codes (101
inputs x 40 classes) the subsample Hessian is too large to factor and a class-block
preconditioner needed ~10,000 Hessian products (250 s CPU against 9.7 s for L-BFGS).
The host Newton-CG above avoids the first three costs (each column its own size, numpy
BLAS on one thread, nothing to compile) and is not used on one-hot designs, which take the
Kronecker-preconditioned L-BFGS instead.
"""

from __future__ import annotations

import functools

import numpy as np
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import minimize

from disentangle.backend import fit_path
from metrics._threads import thread_map
from metrics._vexp import exp32

_BLOCK = 64  # samples per block of the one-hot kernels ([64, C] rows stay in L1)
_EXP_BLOCK = 512  # values per block of _k_exp (its float32 scratch stays in L1)
# exp(max(l - max_c l, -60)): shifted logits below -60 (probabilities < 1e-26) enter the
# exponentials at -60, so that no float32 product of the gradient is subnormal (< 1.2e-38);
# Intel cores take ~10x longer on subnormal operands, and on separable data most
# probabilities of a late iteration are (beta-VAE means, 10,000 samples, Xeon: InfoE
# 10.8 -> 2.1 s). The loss uses the exact logits; each gradient entry moves by < 1e-26.
LOGIT_FLOOR = -60.0


def _k_forward(index, wb, logits, zero):
    """``logits [n, C]`` (+)= the sum of the rows ``wb[index[i]]`` of each sample's ones,
    then minus the row's max (numba kernel; blocks of samples, one latent at a time, so
    consecutive adds go to different rows instead of waiting on each other)."""
    n, m = index.shape
    num_c = wb.shape[1]
    for a in range(0, n, _BLOCK):
        e = min(a + _BLOCK, n)
        if zero:
            for i in range(a, e):
                for c in range(num_c):
                    logits[i, c] = 0.0
        for j in range(m):
            for i in range(a, e):
                k = index[i, j]
                for c in range(num_c):
                    logits[i, c] += wb[k, c]
        for i in range(a, e):
            peak = logits[i, 0]
            for c in range(1, num_c):
                peak = max(peak, logits[i, c])
            for c in range(num_c):
                logits[i, c] -= peak


def _k_backward(exp, logits, labels, weights, index, grad):
    """From ``exp = exp(logits - max) [n, C]``: returns sum_i w_i CE_i; turns ``exp`` into
    the residuals ``w_i (p_ic - [c = y_i])`` and adds them to the rows ``grad[index[i]]``
    (float32, as the dense path's products)."""
    n, m = index.shape
    num_c = exp.shape[1]
    loss = 0.0
    for a in range(0, n, _BLOCK):
        e = min(a + _BLOCK, n)
        for i in range(a, e):
            total = 0.0
            for c in range(num_c):
                total += exp[i, c]
            w = weights[i]
            loss += w * (np.log(total) - logits[i, labels[i]])
            f = w / total
            for c in range(num_c):
                exp[i, c] *= f
            exp[i, labels[i]] -= w
        for j in range(m):
            for i in range(a, e):
                k = index[i, j]
                for c in range(num_c):
                    grad[k, c] += exp[i, c]
    return loss


def _k_exp(src, dst, floor):
    """``dst = exp(max(src, floor))`` of flat float32 arrays (:func:`metrics._vexp.exp32`, in
    blocks whose scratch stays in L1)."""
    n = src.shape[0]
    scale = np.empty(_EXP_BLOCK, np.float32)
    for a in range(0, n, _EXP_BLOCK):
        e = min(a + _EXP_BLOCK, n)
        _exp32_jit(src[a:e], dst[a:e], floor, scale[:e - a])


_exp32_jit = None  # compiled metrics._vexp.exp32, set by _kernels()


@functools.cache
def _kernels():
    """``(_k_forward, _k_backward, _k_exp)`` compiled by numba (GIL released: the columns'
    threads run them in parallel), or None without numba."""
    try:
        import numba
    except ImportError:  # pragma: no cover - numba is a dependency
        return None
    # fastmath: the max and sum reductions vectorise (~10 % per evaluation); every value is
    # finite (logits are shifted by their max, so each row's exp sum is >= 1). The exp: FMA
    # contraction only (see metrics._vexp)
    try:
        globals()["_exp32_jit"] = numba.njit(nogil=True, cache=True, fastmath={"contract"})(exp32)
        cache, fast = True, {"fastmath": True}
    except RuntimeError:  # pragma: no cover - no writable cache location
        globals()["_exp32_jit"] = numba.njit(nogil=True, fastmath={"contract"})(exp32)
        cache, fast = False, {}
    return (numba.njit(nogil=True, cache=cache, **fast)(_k_forward),
            numba.njit(nogil=True, cache=cache, **fast)(_k_backward),
            numba.njit(nogil=True, cache=cache)(_k_exp))


def exp_floored(logits: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = exp(max(logits, LOGIT_FLOOR))`` of C-contiguous float32 arrays: the compiled
    :func:`_k_exp` (numpy's float32 exp took 2-6x longer on an AVX2 EPYC), numpy without
    numba or for other dtypes."""
    kernels = _kernels()
    if kernels is None or logits.dtype != np.float32:
        return np.exp(np.maximum(logits, LOGIT_FLOOR, out=out), out=out)
    kernels[2](logits.reshape(-1), out.reshape(-1), np.float32(LOGIT_FLOOR))
    return out


def _ones_index(x1: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(index int32 [n, m], dense [D_c])``: the ids of each row's ones among the 0/1
    columns of ``x1`` (one-hot blocks and the intercept) and the ids of the other columns,
    when every row has the same number ``m`` of ones there; else None."""
    binary = np.all((x1 == 0) | (x1 == 1), axis=0)
    if binary.sum() < 2:
        return None
    cols = np.flatnonzero(binary)
    rows, where = np.nonzero(x1[:, cols])
    counts = np.bincount(rows, minlength=x1.shape[0])
    if counts.min() != counts.max():
        return None
    return cols[where].astype(np.int32).reshape(x1.shape[0], -1), np.flatnonzero(~binary)


def _group_rows(n: int) -> int:
    """Table rows at most per group of :func:`_group_ones` for ``n`` samples: building a
    group's table costs its rows x classes, the saved adds ``n`` x classes per member."""
    return int(np.clip(n // 8, 16, 4096))


def _group_ones(index: np.ndarray, num_cols: int, max_rows: int):
    """Fuse the columns of a one-hot index into groups: ``(group_index int32 [n, g],
    tables [R, num_cols] sparse 0/1)``, where row r of ``tables @ W`` is the sum of W's rows
    of one combination of its group's values, so that ``sum_j W[index[i, j]] =
    sum_h (tables @ W)[group_index[i, h]]`` with g <= m terms per sample (ten 10-valued
    latents and the intercept: 11 -> 4 gathers). Columns join a group, fewest values first,
    while the product of their value counts stays <= ``max_rows`` (the one-valued intercept
    joins the first group)."""
    from scipy import sparse

    values = [np.unique(index[:, j]) for j in range(index.shape[1])]
    order = np.argsort([len(v) for v in values], kind="stable")
    groups, current, size = [], [], 1
    for j in order:
        if size > 1 and size * len(values[j]) > max_rows:
            groups.append(current)
            current, size = [], 1
        current.append(int(j))
        size *= len(values[j])
    groups.append(current)
    group_index = np.empty((index.shape[0], len(groups)), np.int32)
    rows, cols, offset = [], [], 0
    for h, members in enumerate(groups):
        sizes = [len(values[j]) for j in members]
        ranks = [np.searchsorted(values[j], index[:, j]) for j in members]
        group_index[:, h] = offset + np.ravel_multi_index(ranks, sizes)
        combos = np.indices(sizes).reshape(len(sizes), -1)  # [members, rows]: value ranks
        for j, rank in zip(members, combos):
            rows.append(offset + np.arange(combos.shape[1]))
            cols.append(values[j][rank])
        offset += combos.shape[1]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    tables = sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)),
                               shape=(offset, num_cols))
    return group_index, tables


def _fused_design(x1: np.ndarray):
    """``(group_index, tables, dense_cols)`` of :func:`_ones_index` and :func:`_group_ones`
    for ``x1``, computed once per fit and shared by its columns' losses; None when the 0/1
    columns have no one-hot structure."""
    ones = _ones_index(x1)
    if ones is None:
        return None
    return (*_group_ones(ones[0], x1.shape[1], _group_rows(x1.shape[0])), ones[1])


class _IndexedSoftmaxLoss:
    """:class:`_SoftmaxLoss` for inputs with one-hot blocks (the InfoE design of discrete
    latents): ``x1 W`` is the sum of the rows of W selected by each sample's ones
    (:func:`_ones_index`; the intercept is one of them; gathered from the fused groups' tables
    of :func:`_group_ones`) plus a BLAS product for the other columns, and the gradient of
    those rows a scatter of the residuals; sample-major ``[n, C]``
    work arrays, numba kernels around :func:`exp_floored`. One-hot QLAE codes (101 inputs,
    100,000 samples, 32 classes): ~6x fewer seconds per evaluation than the dense products."""

    def __init__(self, x1: np.ndarray, design: tuple, labels: np.ndarray,
                 weights: np.ndarray, num_c: int, l2: float):
        n = x1.shape[0]
        self.index, self.tables, self.dense_cols = design  # :func:`_fused_design`
        self.labels, self.weights, self.l2 = labels, weights, l2
        self.num_d, self.num_c = x1.shape[1] - 1, num_c
        self.dense = np.ascontiguousarray(x1[:, self.dense_cols])  # [n, D_c]
        self.logits = np.empty((n, num_c), np.float32)
        self.exp = np.empty((n, num_c), np.float32)
        self.forward, self.backward = _kernels()[:2]

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        wb = theta.astype(np.float32).reshape(self.num_d + 1, self.num_c)
        logits, exp = self.logits, self.exp
        has_dense = self.dense_cols.size > 0
        if has_dense:
            np.matmul(self.dense, wb[self.dense_cols], out=logits)
        table = self.tables @ wb  # [R, C]: each group's sums of W's rows, one per combination
        self.forward(self.index, table, logits, not has_dense)
        exp_floored(logits, exp)
        grad_table = np.zeros_like(table)
        loss = self.backward(exp, logits, self.labels, self.weights, self.index, grad_table)
        grad = (self.tables.T @ grad_table).astype(np.float64)
        if has_dense:
            grad[self.dense_cols] = self.dense.T @ exp
        w = theta.reshape(self.num_d + 1, self.num_c)[:self.num_d]
        loss += 0.5 * self.l2 * float(np.sum(w * w))
        grad[:self.num_d] += self.l2 * w
        return float(loss), grad.ravel()



def lbfgs_memory(n: int) -> int:
    """L-BFGS pairs kept for a fit on ``n`` samples: ``clip(n / 1000, 10, 100)``. More pairs
    take fewer iterations (one-hot QLAE fits at 100,000 samples: 1,204 -> 699 and 1,573 ->
    821 iterations from 20 to 100 pairs; InfoE 39 -> 13 s with the one-hot kernels) but cost
    L-BFGS-B ~O(pairs x parameters) per iteration, which outweighs a cheap evaluation on few
    samples (10,000: 10 pairs fastest)."""
    return int(np.clip(n // 1000, 10, 100))


class _SoftmaxLoss:
    """Weighted mean CE and its gradient for ``theta [(D+1) * C]`` (last row = intercepts),
    with preallocated ``[n, C]`` work arrays (fresh temporaries every iteration made glibc
    return and re-fault their pages, doubling the first fit's time).

    Arithmetic in the dtype of ``x1`` (float32: ~4x faster than float64 here, and the fitted
    log loss agrees to ~1e-5 nats); results go back to scipy as float64.
    """

    def __init__(self, x1: np.ndarray, labels: np.ndarray, weights: np.ndarray, num_c: int,
                 l2: float):
        n = x1.shape[0]
        # class-major [C, n] work arrays: reductions over classes are then elementwise
        # operations on contiguous rows (numpy's per-row reductions over a few classes are slow)
        self.x1t = np.ascontiguousarray(x1.T)  # [D+1, n]
        self.labels, self.weights, self.l2 = labels, weights, l2
        self.num_d, self.num_c = x1.shape[1] - 1, num_c
        self.rows = np.arange(n)
        self.logits = np.empty((num_c, n), x1.dtype)
        self.exp = np.empty((num_c, n), x1.dtype)
        self.peak = np.empty(n, x1.dtype)
        self.total = np.empty(n, x1.dtype)

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        wb = theta.astype(self.x1t.dtype).reshape(self.num_d + 1, self.num_c)
        logits, exp, total = self.logits, self.exp, self.total
        np.matmul(wb.T, self.x1t, out=logits)  # [C, n]
        np.max(logits, axis=0, out=self.peak)
        logits -= self.peak
        exp_floored(logits, exp)
        np.sum(exp, axis=0, out=total)
        # CE_i = log sum_c exp(l_ic) - l_{i y_i}  (weights sum to 1)
        loss = float(np.dot(self.weights, np.log(total) - logits[self.labels, self.rows]))
        # d/dl_ic = w_i (p_ic - [c = y_i])
        np.divide(self.weights, total, out=total)
        exp *= total
        exp[self.labels, self.rows] -= self.weights
        grad = self.x1t @ exp.T  # [D+1, C]
        w = wb[:self.num_d]
        loss += 0.5 * self.l2 * float(np.sum(w * w))
        grad[:self.num_d] += self.l2 * w
        return loss, grad.ravel().astype(np.float64)


# Newton-CG is used for dense fits with at most this many parameters ((D + 1) x C): its
# preconditioner is the exact Hessian of a row subsample, factored per Newton step
NEWTON_MAX_PARAMS = 1024
# L-BFGS iterations before a fit switches to Newton-CG (most easy fits converge within them)
LBFGS_WARMUP = 10


class _SoftmaxCurvature:
    """Hessian-vector products of :class:`_SoftmaxLoss` at a point, and a preconditioner.

    With ``P [C, n]`` the probabilities and ``w`` the sample weights, the Hessian of the mean
    CE acts on ``V [D+1, C]`` as ``X1^T S`` with ``U = X1 V``, ``S_ic = w_i p_ic (U_ic -
    sum_c' p_ic' U_ic')`` (plus ``l2 V`` on the weight rows). The preconditioner is the exact
    Hessian ``sum_i w_i (diag p_i - p_i p_i^T) (x) x_i x_i^T`` of ``m`` fixed rows (reweighted
    to the total weight; float64, plus a 1e-6 relative ridge), Cholesky-factored."""

    def __init__(self, loss: _SoftmaxLoss, m: int):
        self.loss = loss
        num_c, n = loss.logits.shape
        self.dp1, self.num_c = loss.num_d + 1, num_c
        self.p = np.empty_like(loss.logits)
        self.wp = np.empty_like(loss.logits)
        self.u = np.empty_like(loss.logits)
        self.tmp = np.empty_like(loss.logits)
        self.sub = np.sort(np.random.default_rng(0).choice(n, min(m, n), replace=False))
        self.xs = loss.x1t[:, self.sub].T.astype(np.float64)  # [m, D+1]
        ws = loss.weights[self.sub].astype(np.float64)
        self.ws = ws * (float(loss.weights.sum()) / ws.sum())
        ridge = np.full((num_c, self.dp1), loss.l2)
        ridge[:, -1] = 0.0  # intercepts unpenalised
        self.l2 = ridge.T.ravel()  # theta order (d, c)
        self.chol = None

    def at(self, theta: np.ndarray) -> None:
        """Probabilities and preconditioner at ``theta``."""
        loss, p = self.loss, self.p
        np.matmul(theta.astype(p.dtype).reshape(self.dp1, self.num_c).T, loss.x1t, out=p)
        p -= p.max(axis=0)
        exp_floored(p, p)
        p /= p.sum(axis=0)
        np.multiply(p, loss.weights, out=self.wp)
        # subsample Hessian in (c, d) order: -A^T A with A[i, (c, d)] = sqrt(w_i) p_ic x_id
        # off the diagonal blocks; on them sum_i w_i p_ic (1 - p_ic) x_i x_i^T (computed
        # directly: p_c - p_c^2 cancels when p_c is near 1)
        m, dp1, num_c = len(self.sub), self.dp1, self.num_c
        ps = p[:, self.sub].T.astype(np.float64)  # [m, C]
        a = (np.sqrt(self.ws)[:, None, None] * ps[:, :, None] * self.xs[:, None, :])
        h = -(a.reshape(m, -1).T @ a.reshape(m, -1))
        z = ((self.ws[:, None] * ps * (1.0 - ps))[:, :, None] * self.xs[:, None, :])
        blocks = (z.reshape(m, -1).T @ self.xs).reshape(num_c, dp1, dp1)
        for c in range(num_c):
            h[c * dp1:(c + 1) * dp1, c * dp1:(c + 1) * dp1] = blocks[c]
        h[np.diag_indices_from(h)] += self.l2.reshape(dp1, num_c).T.ravel()
        scale = max(np.trace(h) / len(h), 1e-30)
        for ridge in (1e-6, 1e-4, 1e-2, 1.0):  # rounding can leave it barely indefinite
            try:
                self.chol = cho_factor(h + ridge * scale * np.eye(len(h)), lower=True)
                return
            except np.linalg.LinAlgError:
                continue
        self.chol = (np.eye(len(h)), True)  # no usable curvature: plain CG

    def hvp(self, v: np.ndarray) -> np.ndarray:
        u, x1t = self.u, self.loss.x1t
        np.matmul(v.astype(u.dtype).reshape(self.dp1, self.num_c).T, x1t, out=u)
        u *= self.wp
        np.multiply(self.p, u.sum(axis=0), out=self.tmp)
        u -= self.tmp
        return (x1t @ u.T).ravel().astype(np.float64) + self.l2 * v

    def precondition(self, r: np.ndarray) -> np.ndarray:
        rc = r.reshape(self.dp1, self.num_c).T.ravel()  # (c, d) order
        return cho_solve(self.chol, rc).reshape(self.num_c, self.dp1).T.ravel()


def newton_cg(loss: _SoftmaxLoss, theta: np.ndarray, tol: float, max_iter: int,
              f: float | None = None, g: np.ndarray | None = None) -> tuple[np.ndarray, int]:
    """Minimise ``loss`` from ``theta`` by inexact Newton steps: preconditioned CG on ``H d =
    -g`` (:class:`_SoftmaxCurvature`; stopped at relative residual ``min(0.5, sqrt|g|)``, at
    most 50 products), then an Armijo backtracking line search from step 1. Stops as
    L-BFGS-B does: ``max|g| < tol``, or a relative decrease ``<= tol**2``; also when no step
    decreases the (float32) loss. Returns ``(theta, Newton steps)``."""
    if f is None:
        f, g = loss(theta)
    curv = _SoftmaxCurvature(loss, m=int(np.clip(loss.x1t.shape[1] // 16, 1024, 4096)))
    noise = 1e-6  # relative rounding of the float32 loss
    for it in range(max_iter):
        if np.abs(g).max() < tol:
            return theta, it
        curv.at(theta)
        d = np.zeros_like(g)
        r = -g
        z = curv.precondition(r)
        direction, rz = z.copy(), r @ z
        g_norm = np.linalg.norm(g)
        for k in range(50):
            hd = curv.hvp(direction)
            dhd = direction @ hd
            if dhd <= 0:  # flat direction (float rounding): take what we have
                if k == 0:
                    d = direction
                break
            a = rz / dhd
            d += a * direction
            r = r - a * hd
            if np.linalg.norm(r) <= min(0.5, np.sqrt(g_norm)) * g_norm:
                break
            z = curv.precondition(r)
            rz, rz_old = r @ z, rz
            direction = z + (rz / rz_old) * direction
        slope, step = g @ d, 1.0
        while True:
            f_new, g_new = loss(theta + step * d)
            if f_new <= f + 1e-4 * step * slope:
                break
            if step == 1.0 and -slope <= noise * abs(f) and f_new <= f + noise * abs(f):
                break  # the predicted decrease is below the loss's rounding: take the step
            step *= 0.5
            if step < 1e-3:
                return theta, it + 1  # no step decreases the loss beyond its rounding
        theta = theta + step * d
        decrease, f, g = f - f_new, f_new, g_new
        if decrease <= tol * tol * max(abs(f), abs(f + decrease), 1.0):
            return theta, it + 1
    return theta, max_iter


# L-BFGS iterations of an unpenalised fit that Newton-CG does not take (one-hot designs, or
# more than NEWTON_MAX_PARAMS parameters) before its Kronecker preconditioner is rebuilt at
# the current probabilities (:func:`kronecker_factors`)
KRONECKER_REFRESH = 40


def _sqrt_pair(lam: np.ndarray, vec: np.ndarray, keep: np.ndarray):
    """``(V diag(lam^-1/2) V^T, V diag(lam^1/2) V^T)`` over the eigenpairs ``keep``."""
    v, lam = vec[:, keep], lam[keep]
    return (v / np.sqrt(lam)) @ v.T, (v * np.sqrt(lam)) @ v.T


def kronecker_factors(x1: np.ndarray, weights: np.ndarray, theta: np.ndarray, num_c: int):
    """Kronecker factors of the softmax Hessian ``H = sum_i w_i (diag p_i - p_i p_i^T) (x)
    x_i x_i^T ~ B (x) A`` at ``theta`` (K-FAC; Martens & Grosse, ICML 2015):
    ``A = sum_i w_i s_i x_i x_i^T`` and ``B = sum_i w_i (diag p_i - p_i p_i^T) / sum_i w_i
    s_i`` with ``s_i = 1 - |p_i|^2``. Returns ``(A^-1/2, A^1/2, B^-1/2, B^1/2)``: for A the
    pseudo-inverse roots (the null space of collinear one-hot blocks and the intercept is left
    out); for B the roots on zero-sum class vectors (softmax ignores the rest), eigenvalues
    floored at 1e-6 of the largest."""
    p = x1 @ theta.reshape(-1, num_c).astype(x1.dtype)  # in x1's dtype (float32)
    p -= p.max(axis=1, keepdims=True)
    exp_floored(p, p)
    p /= p.sum(axis=1, keepdims=True)
    ws = weights * (1.0 - np.sum(p * p, axis=1))
    a = ((x1 * ws[:, None]).T @ x1).astype(np.float64)
    lam, vec = np.linalg.eigh(a)
    a_inv, a_sqrt = _sqrt_pair(lam, vec, lam > 1e-10 * lam.max())
    wp = weights[:, None] * p
    b = (np.diag(wp.sum(axis=0)) - p.T @ wp).astype(np.float64) / max(float(ws.sum()), 1e-30)
    top = max(float(np.trace(b)), 1e-300)
    lam, vec = np.linalg.eigh(b + top / num_c)  # the ones vector: eigenvalue ~top, not 0
    b_inv, b_sqrt = _sqrt_pair(np.maximum(lam, 1e-6 * lam.max()), vec, np.ones(num_c, bool))
    centre = np.eye(num_c) - 1.0 / num_c
    return a_inv, a_sqrt, centre @ b_inv @ centre, centre @ b_sqrt @ centre


class _Reparametrised:
    """``loss`` of ``theta = A^-1/2 U B^-1/2`` as a function of ``U`` (gradient ``A^-1/2 G
    B^-1/2``): L-BFGS on ``U`` is L-BFGS preconditioned by ``B (x) A``."""

    def __init__(self, loss, factors, num_c: int):
        self.loss, self.num_c = loss, num_c
        self.a_inv, self.a_sqrt, self.b_inv, self.b_sqrt = factors

    def theta(self, u: np.ndarray) -> np.ndarray:
        return (self.a_inv @ u.reshape(-1, self.num_c) @ self.b_inv).ravel()

    def coords(self, theta: np.ndarray) -> np.ndarray:
        return (self.a_sqrt @ theta.reshape(-1, self.num_c) @ self.b_sqrt).ravel()

    def __call__(self, u: np.ndarray) -> tuple[float, np.ndarray]:
        f, g = self.loss(self.theta(u))
        return f, (self.a_inv @ g.reshape(-1, self.num_c) @ self.b_inv).ravel()


def balanced_weights(y: np.ndarray, num_classes: np.ndarray) -> np.ndarray:
    """sklearn's ``class_weight="balanced"``: ``n / (C_k * count(y_k = c))`` per sample, [K, n]."""
    out = np.empty(y.T.shape)
    for k in range(y.shape[1]):
        counts = np.bincount(y[:, k], minlength=num_classes[k])
        per_class = y.shape[0] / (num_classes[k] * np.maximum(counts, 1))
        out[k] = per_class[y[:, k]]
    return out


def fit_softmax(x: np.ndarray, y: np.ndarray, num_classes, *, balanced: bool = False,
                l2: float = 0.0, tol: float = 1e-5, max_iter: int = 2000):
    """Fit one multinomial logistic regression per column of ``y``.

    Args:
      x: float ``[n, D]`` inputs (standardise them first).
      y: int ``[n, K]`` labels, column k in ``0..num_classes[k]-1``.
      num_classes: ``[K]`` class counts.
      balanced: weight samples by sklearn's balanced class weights.
      l2: ridge on the weights (not intercepts) relative to the mean loss; 1/(C n) = sklearn C.
      tol: L-BFGS-B ``gtol`` (largest projected gradient entry); ``ftol`` is ``tol**2``.
      max_iter: iterations at most, L-BFGS-B's and Newton steps together (on separable data
        the unpenalised loss only approaches 0).
    Returns:
      ``(w [K, D, C_max], b [K, C_max], iterations)`` (the most of any column); padded
      classes have ``b = -inf``.

    Runs on the host (below) or, where :func:`disentangle.backend.fit_path` says
    ``'device'``, as :func:`metrics._linear_device.fit_softmax_device`.
    """
    if fit_path() == "device":
        from metrics._linear_device import fit_softmax_device

        return fit_softmax_device(x, y, num_classes, balanced=balanced, l2=l2, tol=tol,
                                  max_iter=max_iter)
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.int64)
    num_classes = np.asarray(num_classes)
    num_k, num_d, c_max = y.shape[1], x.shape[1], int(num_classes.max())
    x1 = np.concatenate([x, np.ones((x.shape[0], 1))], axis=1).astype(np.float32)
    weights = balanced_weights(y, num_classes) if balanced else np.ones(y.T.shape)
    w_out = np.zeros((num_k, num_d, c_max))
    b_out = np.full((num_k, c_max), -np.inf)

    design = _fused_design(x1) if _kernels() is not None else None

    def fit(k: int):
        num_c = int(num_classes[k])
        sw = (weights[k] / weights[k].sum()).astype(np.float32)
        loss = (_SoftmaxLoss(x1, y[:, k], sw, num_c, l2) if design is None else
                _IndexedSoftmaxLoss(x1, design, y[:, k], sw, num_c, l2))
        newton = design is None and (num_d + 1) * num_c <= NEWTON_MAX_PARAMS
        kronecker = not newton and l2 == 0.0
        options = {"gtol": tol, "ftol": tol * tol, "maxcor": lbfgs_memory(x.shape[0])}
        theta = np.zeros((num_d + 1) * num_c)
        if kronecker:  # L-BFGS on the preconditioned U, rebuilt once after the warm-up
            steps = 0
            for limit in (min(max_iter, KRONECKER_REFRESH), max_iter):
                fun = _Reparametrised(loss, kronecker_factors(x1, sw, theta, num_c), num_c)
                res = minimize(fun, fun.coords(theta), jac=True, method="L-BFGS-B",
                               options={**options, "maxiter": limit - steps})
                theta, steps = fun.theta(res.x), steps + int(res.nit)
                if res.status != 1 or steps >= max_iter:  # status 1: iteration limit
                    break
        else:
            warmup = min(max_iter, LBFGS_WARMUP) if newton else max_iter
            res = minimize(loss, theta, jac=True, method="L-BFGS-B",
                           options={**options, "maxiter": warmup})
            theta, steps = res.x, int(res.nit)
            if newton and res.status == 1 and warmup < max_iter:  # status 1: iteration limit
                theta, more = newton_cg(loss, theta, tol, max_iter - warmup, res.fun, res.jac)
                steps += more
        wb = theta.reshape(num_d + 1, num_c)
        w_out[k, :, :num_c], b_out[k, :num_c] = wb[:num_d], wb[num_d]
        return steps

    # columns on up to thread_budget() threads, most classes first
    iterations = thread_map(fit, np.argsort(-num_classes, kind="stable").tolist())
    return w_out, b_out, max(iterations)


def log_proba(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log class probabilities ``[K, n, C_max]`` (``-inf`` for padded classes): per column a
    BLAS product over its own classes only."""
    num_k, n, c_max = w.shape[0], x.shape[0], w.shape[2]
    out = np.full((num_k, n, c_max), -np.inf)
    if x.shape[1] == 0:
        x = np.zeros((n, 1))
        w = np.zeros((num_k, 1, c_max))
    for k in range(num_k):
        c = int(np.sum(np.isfinite(b[k])))  # fitted classes come first, padding after
        logits = x @ w[k, :, :c] + b[k, :c]
        logits -= logits.max(axis=1, keepdims=True)
        logits -= np.log(np.sum(np.exp(logits), axis=1, keepdims=True))
        out[k, :, :c] = logits
    return out


def standardize(x: np.ndarray, ref: np.ndarray | None = None) -> np.ndarray:
    """``(x - mean) / std`` with the mean/std of ``ref`` (default ``x``); constant columns -> 0."""
    ref = x if ref is None else ref
    mean, std = ref.mean(axis=0), ref.std(axis=0)
    return (x - mean) / np.where(std > 0, std, 1.0)


def one_hot_columns(codes: np.ndarray) -> np.ndarray:
    """One-hot encode each column of int ``[n, L]`` (values seen) -> ``[n, sum V_j]``."""
    blocks = []
    for j in range(codes.shape[1]):
        _, labels = np.unique(codes[:, j], return_inverse=True)
        blocks.append(np.eye(labels.max() + 1)[labels.reshape(-1)])
    return np.concatenate(blocks, axis=1)
