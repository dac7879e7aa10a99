"""Multinomial logistic regression fitted by a batched Newton-CG solver in JAX (used by
InfoE, explicitness, the BetaVAE score, DCI's ``importance="logistic"`` option and the
active/passive classifiers).

Each label column k is an independent softmax regression on the shared inputs, minimising

    f_k(theta) = sum_i w_ik CE(y_ik, softmax(x_i W + b)) / sum_i w_ik  +  l2/2 ||W||^2,

which for ``l2 = 1 / (C n)`` is sklearn's ``LogisticRegression(C=C)`` objective (intercepts
unpenalised) and for ``l2 = 0`` the unpenalised one. Balanced class weights are
``w = n / (C_k n_c)`` as in sklearn.

Solver (one jitted program for all K columns, on JAX's default device): truncated Newton.
Each outer step solves ``H d = -g`` by conjugate gradients preconditioned with the Hessian's
diagonal, using exact Hessian-vector products

    H v = X^T [w * p * (X v - sum_c p (X v))] + l2 v      (p = softmax(X theta), [n, C]),

each as cheap as one gradient, then takes an Armijo backtracking step. Newton steps are
insensitive to the ill-conditioning of real codes (nearly separable classes, one-hot blocks
collinear with the intercept, rare classes) that made L-BFGS take thousands of evaluations;
on separable data the unpenalised loss falls by a constant factor per step. It stops when
the gradient's largest entry is below ``tol`` (scipy's ``gtol``), when no step lowers the
float32 loss, or after ``max_iter`` Newton steps. Columns with fewer classes are padded
(masked classes get probability 0); rows are padded to a size bucket with zero weight, so
few program shapes are compiled.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

_ARMIJO = 1e-4  # sufficient decrease of the line search
CACHE_ENV = "DISENTANGLE_JAX_CACHE"
_HALVINGS = 12  # step halvings before the line search gives up (no float32 decrease left)


@dataclasses.dataclass(frozen=True)
class FitInfo:
    """Work done by :func:`fit_softmax` (per label column ``[K]``).

    Attributes:
      newton_steps: outer Newton iterations.
      hessian_products: Hessian-vector products (conjugate-gradient iterations).
      loss_evaluations: objective evaluations in the line searches.
      converged: gradient max-norm below ``tol`` (else: float32 stall or ``max_iter``).
    """

    newton_steps: np.ndarray
    hessian_products: np.ndarray
    loss_evaluations: np.ndarray
    converged: np.ndarray


def bucket(size: int, per_octave: int = 8) -> int:
    """``size`` rounded up to a multiple of ``2**floor(log2 size) / per_octave`` (at most
    ``1/per_octave`` padding), so nearby sizes share one compiled program."""
    if size <= per_octave:
        return max(size, 1)
    step = max(1, (1 << (size.bit_length() - 1)) // per_octave)
    return -(-size // step) * step


def _solve_one(x1, labels, weights, mask, penalised, l2, tol, max_iter, cg_iter,
               num_sub: int = 1024):
    """Newton-CG for one column: ``theta [D+1, C]`` and the counters of :class:`FitInfo`."""
    onehot = jax.nn.one_hot(labels, mask.shape[0], dtype=x1.dtype)  # [n, C]
    ridge = l2 * penalised[:, None]  # [D+1, 1]: no ridge on the intercept row
    eye = jnp.eye(mask.shape[0], dtype=x1.dtype)
    theta_shape = (x1.shape[1], mask.shape[0])
    mask_flat = jnp.broadcast_to(mask[None, :], theta_shape).reshape(-1)
    sub = jnp.arange(0, x1.shape[0], max(1, x1.shape[0] // num_sub))[:num_sub]

    def value(theta):
        """``f(theta)`` and the logits ``[n, C]`` with their log-partition ``[n]``."""
        logits = jnp.where(mask, x1 @ theta, -jnp.inf)
        lse = jax.nn.logsumexp(logits, axis=1)
        picked = jnp.sum(jnp.where(onehot > 0, logits, 0.0), axis=1)
        return jnp.dot(weights, lse - picked) + 0.5 * jnp.sum(ridge * theta * theta), logits, lse

    def value_grad(theta):
        """``f``, ``grad f [D+1, C]`` and the probabilities ``p [n, C]`` (0 on masked classes)."""
        f, logits, lse = value(theta)
        p = jnp.exp(logits - lse[:, None])
        return f, x1.T @ (weights[:, None] * (p - onehot)) + ridge * theta, p

    def preconditioner(p):
        """Solve with the exact Hessian of a fixed row subsample (damped along the softmax's
        shift direction and collinear inputs): ``r [D+1, C] -> H_sub^{-1} r``."""
        xs, ps, ws = x1[sub], p[sub], weights[sub]
        ws = ws * (jnp.sum(weights) / jnp.maximum(jnp.sum(ws), 1e-30))
        d1, c = theta_shape
        a = (jnp.sqrt(ws)[:, None, None] * xs[:, :, None] * ps[:, None, :]).reshape(-1, d1 * c)
        first = jnp.einsum("nd,ne,nc->dce", ws[:, None] * xs, xs, ps)  # [D+1, C, D+1]
        h = (first[..., None] * eye[None, :, None, :]).reshape(d1 * c, -1) - a.T @ a
        damping = 1e-4 * jnp.max(jnp.diagonal(h)) + 1e-12
        fill = (ridge * jnp.ones(theta_shape)).reshape(-1) + damping + (~mask_flat) * 1.0
        chol = jnp.linalg.cholesky(h + jnp.diag(fill))
        usable = jnp.all(jnp.isfinite(chol))  # else (float32 breakdown): scaled identity

        def apply(r):
            z = jax.scipy.linalg.cho_solve((jnp.where(usable, chol, 1.0), True), r.reshape(-1))
            z = jnp.where(usable, z, r.reshape(-1) / (damping + jnp.max(fill)))
            return jnp.where(mask_flat, z, 0.0).reshape(theta_shape)

        return apply

    def newton_direction(g, p, skip):
        """Preconditioned CG on ``H d = -g`` with exact products; ``(d, iterations)``."""
        wp = weights[:, None] * p

        def hvp(v):  # H v = X^T [w p (Xv - <p, Xv>)] + ridge v
            u = x1 @ v
            return x1.T @ (wp * (u - jnp.sum(p * u, axis=1, keepdims=True))) + ridge * v

        inv_m = preconditioner(p)
        g_norm = jnp.sqrt(jnp.sum(g * g))
        target = jnp.minimum(0.5, jnp.sqrt(g_norm)) * g_norm  # Eisenstat-Walker forcing

        def cg_cond(s):
            j, _, r, _, _, stop = s
            return (j < cg_iter) & ~stop & (jnp.sqrt(jnp.sum(r * r)) > target)

        def cg_body(s):
            j, d, r, z_dir, rz, _ = s
            hp = hvp(z_dir)
            curvature = jnp.sum(z_dir * hp)
            flat = curvature <= 0  # float32 round-off along a flat direction: stop here
            alpha = jnp.where(flat, 0.0, rz / jnp.where(flat, 1.0, curvature))
            d, r = d + alpha * z_dir, r - alpha * hp
            z = inv_m(r)
            rz_new = jnp.sum(r * z)
            return j + 1, d, r, z + (rz_new / jnp.where(rz > 0, rz, 1.0)) * z_dir, rz_new, flat

        z0 = inv_m(-g)
        init = (0, jnp.zeros_like(g), -g, z0, jnp.sum(-g * z0), skip)
        j, d, *_ = jax.lax.while_loop(cg_cond, cg_body, init)
        return jnp.where(jnp.sum(d * g) < 0, d, z0), j  # a descent direction in any case

    def line_search(theta, f, g, d, skip):
        """Armijo backtracking from step 1: ``(step, loss evaluations, found)``."""
        slope = jnp.sum(g * d)
        armijo = lambda t, f_new: f_new <= f + _ARMIJO * t * slope  # noqa: E731

        def cond(s):
            t, f_new, h = s
            return (h < _HALVINGS) & ~armijo(t, f_new) & ~skip

        def body(s):
            t, _, h = s
            return 0.5 * t, value(theta + 0.5 * t * d)[0], h + 1

        t, f_new, h = jax.lax.while_loop(cond, body, (2.0, jnp.inf, 0))
        return t, h, armijo(t, f_new)

    def outer_cond(s):
        it, _, done, *_ = s
        return (it < max_iter) & ~done

    def outer_body(s):
        it, theta, _, _, n_hvp, n_eval = s
        f, g, p = value_grad(theta)
        converged = jnp.max(jnp.abs(g)) <= tol
        d, j = newton_direction(g, p, converged)
        t, evals, ok = line_search(theta, f, g, d, converged)
        step = ok & ~converged
        return (it + step, jnp.where(step, theta + t * d, theta), ~step, converged,
                n_hvp + j, n_eval + evals + 1)

    theta0 = jnp.zeros(theta_shape, x1.dtype)
    it, theta, _, converged, n_hvp, n_eval = jax.lax.while_loop(
        outer_cond, outer_body, (0, theta0, False, False, 0, 0))
    return theta, it, n_hvp, n_eval, converged


@jax.jit
def _solve(x1, labels, weights, mask, penalised, l2, tol, max_iter, cg_iter):
    """All columns at once: ``labels, weights [K, n]``, ``mask [K, C]`` -> theta ``[K, D+1, C]``."""
    return jax.vmap(_solve_one, in_axes=(None, 0, 0, 0) + (None,) * 5)(
        x1, labels, weights, mask, penalised, l2, tol, max_iter, cg_iter)


def use_compilation_cache() -> None:
    """Keep compiled programs on disk (JAX's persistent cache) unless the user configured
    one: ``$DISENTANGLE_JAX_CACHE`` (empty: off) or ``~/.cache/disentangle/jax``. Compiling
    the solver takes ~1-2 s per input shape; a later process loads it in milliseconds (as
    numba's ``cache=True`` does for DCI's trees). Programs compiling in over 0.1 s are kept."""
    if jax.config.jax_compilation_cache_dir:
        return
    path = os.environ.get(CACHE_ENV, str(Path.home() / ".cache" / "disentangle" / "jax"))
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)


def balanced_weights(y: np.ndarray, num_classes: np.ndarray) -> np.ndarray:
    """sklearn's ``class_weight="balanced"``: ``n / (C_k * count(y_k = c))`` per sample, [K, n]."""
    out = np.empty(y.T.shape)
    for k in range(y.shape[1]):
        counts = np.bincount(y[:, k], minlength=num_classes[k])
        per_class = y.shape[0] / (num_classes[k] * np.maximum(counts, 1))
        out[k] = per_class[y[:, k]]
    return out


def fit_softmax(x: np.ndarray, y: np.ndarray, num_classes, *, balanced: bool = False,
                l2: float = 0.0, tol: float = 1e-5, max_iter: int = 200,
                cg_iter: int = 100) -> tuple[np.ndarray, np.ndarray, FitInfo]:
    """Fit one multinomial logistic regression per column of ``y`` (Newton-CG, JAX).

    Args:
      x: float ``[n, D]`` inputs (standardise them first).
      y: int ``[n, K]`` labels, column k in ``0..num_classes[k]-1``.
      num_classes: ``[K]`` class counts.
      balanced: weight samples by sklearn's balanced class weights.
      l2: ridge on the weights (not intercepts) relative to the mean loss; 1/(C n) = sklearn C.
      tol: stop when the gradient's largest entry is below this (scipy's ``gtol``).
      max_iter: Newton steps at most (on separable data the unpenalised loss only approaches 0).
      cg_iter: conjugate-gradient iterations at most per Newton step.
    Returns:
      ``(w [K, D, C_max], b [K, C_max], info)``; padded classes have ``b = -inf``;
      ``info`` is a :class:`FitInfo`.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.int64)
    num_classes = np.asarray(num_classes)
    (n, num_d), num_k = x.shape, y.shape[1]
    c_max = int(num_classes.max())
    n_pad, d_pad, c_pad = bucket(n), bucket(num_d + 1, 4), bucket(c_max, 4)
    x1 = np.zeros((n_pad, d_pad), np.float32)
    x1[:n, :num_d], x1[:n, num_d] = x, 1.0  # intercept column last; padding rows/columns 0
    weights = balanced_weights(y, num_classes) if balanced else np.ones(y.T.shape)
    w_pad = np.zeros((num_k, n_pad), np.float32)
    w_pad[:, :n] = weights / weights.sum(axis=1, keepdims=True)
    labels = np.zeros((num_k, n_pad), np.int32)
    labels[:, :n] = y.T
    mask = np.arange(c_pad)[None, :] < num_classes[:, None]
    penalised = (np.arange(d_pad) != num_d).astype(np.float32)
    use_compilation_cache()
    theta, steps, hvps, evals, converged = jax.device_get(_solve(
        x1, labels, w_pad, mask, penalised, np.float32(l2), np.float32(tol),
        np.int32(max_iter), np.int32(cg_iter)))
    theta = theta.astype(np.float64)
    w_out = np.zeros((num_k, num_d, c_max))
    b_out = np.full((num_k, c_max), -np.inf)
    for k in range(num_k):
        num_c = int(num_classes[k])
        w_out[k, :, :num_c], b_out[k, :num_c] = theta[k, :num_d, :num_c], theta[k, num_d, :num_c]
    return w_out, b_out, FitInfo(steps, hvps, evals, converged)


def log_proba(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Log class probabilities ``[K, n, C_max]`` (``-inf`` for padded classes)."""
    if x.shape[1] == 0:
        x = np.zeros((x.shape[0], 1))
    logits = np.einsum("nd,kdc->knc", x, w) + b[:, None, :]
    peak = logits.max(axis=-1, keepdims=True)
    return logits - peak - np.log(np.sum(np.exp(logits - peak), axis=-1, keepdims=True))


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
