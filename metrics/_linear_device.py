"""Multinomial logistic regression on the default JAX device: the accelerator path of
:func:`metrics._linear.fit_softmax` (same arguments, objective and outputs; chosen by
:func:`disentangle.backend.fit_path`, ``DISENTANGLE_FIT=host|device``).

Column k of ``y`` (``C_k`` classes, padded to ``C_max``) minimises over ``W [D, C_max]``
and ``b [C_max]``

    f_k = sum_i w_ki CE(y_ik, softmax(x_i W + b)) / sum_i w_ki  +  l2/2 ||W||^2,

with the logits of the padded classes ``c >= C_k`` set to ``-inf`` (probability 0, zero
gradient: their parameters stay at their initial 0 and are returned as ``w = 0, b = -inf``).
All K columns are one jitted program: optax's L-BFGS (zoom line search,
:func:`metrics._linear.lbfgs_memory` pairs, as the host path) vmapped over the columns and
iterated in a ``lax.while_loop``; a column's state is frozen once

    max_j |df_k/dtheta_j| <= tol   or   (f_prev - f) / max(|f_prev|, |f|, 1) <= tol**2
    or   its iterations reach max_iter,

the ``gtol`` / ``ftol`` tests that the host path gives scipy's L-BFGS-B. Arithmetic in
float32 (as the host path's objectives), float64 under ``jax_enable_x64``. One compilation
per shape ``(n, D, K, C_max)`` and L-BFGS memory.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from metrics._linear import balanced_weights, lbfgs_memory


@functools.partial(jax.jit, static_argnames=("memory",))
def _fit_columns(x1: jax.Array, labels: jax.Array, weights: jax.Array, mask: jax.Array,
                 l2: jax.Array, tol: jax.Array, max_iter: jax.Array, *, memory: int):
    """``(wb [K, D+1, C_max], iterations [K])`` from ``x1 [n, D+1]`` (last column ones),
    ``labels int [K, n]``, ``weights [K, n]`` (rows sum to 1), ``mask bool [K, C_max]``."""
    num_d, num_c = x1.shape[1] - 1, mask.shape[1]
    solver = optax.lbfgs(memory_size=memory)

    def fit(labels_k, weights_k, mask_k):
        def loss(wb):
            logits = jnp.where(mask_k, x1 @ wb, -jnp.inf)  # [n, C_max]
            logp = jax.nn.log_softmax(logits, axis=-1)
            ce = -jnp.take_along_axis(logp, labels_k[:, None], axis=1)[:, 0]
            w = wb[:num_d]
            return jnp.dot(weights_k, ce) + 0.5 * l2 * jnp.sum(w * w)

        value_and_grad = optax.value_and_grad_from_state(loss)

        def step(carry):
            wb, state, iterations, _ = carry
            value, grad = value_and_grad(wb, state=state)
            updates, state = solver.update(grad, state, wb, value=value, grad=grad,
                                           value_fn=loss)
            wb = optax.apply_updates(wb, updates)
            new_value = optax.tree_utils.tree_get(state, "value")
            new_grad = optax.tree_utils.tree_get(state, "grad")
            iterations = iterations + 1
            scale = jnp.maximum(jnp.maximum(jnp.abs(value), jnp.abs(new_value)), 1.0)
            done = ((jnp.max(jnp.abs(new_grad)) <= tol)
                    | ((value - new_value) / scale <= tol * tol) | (iterations >= max_iter))
            return wb, state, iterations, done

        wb = jnp.zeros((num_d + 1, num_c), x1.dtype)
        # as L-BFGS-B: no iteration when the start already meets the gradient test
        start_done = (jnp.max(jnp.abs(jax.grad(loss)(wb))) <= tol) | (max_iter <= 0)
        carry = (wb, solver.init(wb), jnp.zeros((), jnp.int32), start_done)
        wb, _, iterations, _ = jax.lax.while_loop(lambda c: ~c[3], step, carry)
        return wb, iterations

    return jax.vmap(fit)(labels, weights, mask)


def fit_softmax_device(x: np.ndarray, y: np.ndarray, num_classes, *, balanced: bool = False,
                       l2: float = 0.0, tol: float = 1e-5, max_iter: int = 2000):
    """:func:`metrics._linear.fit_softmax` on the default JAX device (module docstring): the
    same arguments and returns (numpy float64; iterations the max over columns; padded
    classes ``w = 0``, ``b = -inf``), but ``tol`` bounds the largest gradient entry (no
    bounds to project on) and the relative loss decrease by ``tol**2``."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.int64)
    num_classes = np.asarray(num_classes)
    n, num_d = x.shape
    c_max = int(num_classes.max())
    dtype = jax.dtypes.canonicalize_dtype(np.float64)  # float32 unless x64 is enabled
    x1 = np.concatenate([x, np.ones((n, 1))], axis=1)
    weights = balanced_weights(y, num_classes) if balanced else np.ones(y.T.shape)
    weights = weights / weights.sum(axis=1, keepdims=True)
    mask = np.arange(c_max)[None, :] < num_classes[:, None]  # [K, C_max]
    wb, iterations = _fit_columns(
        jnp.asarray(x1, dtype), jnp.asarray(y.T, jnp.int32), jnp.asarray(weights, dtype),
        jnp.asarray(mask), jnp.asarray(l2, dtype), jnp.asarray(tol, dtype),
        jnp.asarray(max_iter, jnp.int32), memory=lbfgs_memory(n))
    wb = np.asarray(wb, np.float64)
    w = np.where(mask[:, None, :], wb[:, :num_d], 0.0)
    b = np.where(mask, wb[:, num_d], -np.inf)
    return w, b, int(np.max(iterations)) if len(num_classes) else 0
