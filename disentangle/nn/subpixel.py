"""Sub-pixel (phase-decomposed) transposed convolution, equal to ``nnx.ConvTranspose``.

Shi et al. (2016), "Is the deconvolution layer the same as a convolutional layer?"
(arXiv:1609.07009): a stride-s transposed convolution is s^2 ordinary convolutions with
sub-kernels of the original kernel, one per output phase, interleaved by depth-to-space.

Derivation for flax's convention (``lax.conv_transpose``, ``transpose_kernel=False``,
padding 'SAME'). Per spatial axis, with kernel size k, stride s and input length n,
``lax.conv_transpose`` dilates x by s, pads it by (a, b) with

    a = k - 1                 if s > k - 1
    a = ceil((k + s - 2) / 2) otherwise,            b = k + s - 2 - a,

and correlates with the (unflipped) kernel w:

    y[o] = sum_t xd[o + t - a] w[t],   xd[s i] = x[i], zero elsewhere,  o in [0, s n).

Write o = s m + r (phase r in [0, s)). Only taps t with (r + t - a) = 0 mod s touch a
non-zero xd, at input index i = m + d_t with d_t = (r + t - a) / s:

    y[s m + r] = sum_{t : (r + t - a) % s == 0} x[m + d_t] w[t].

For k = 4, s = 2 (a = 2): y[2m] = x[m-1] w[0] + x[m] w[2] and y[2m+1] = x[m] w[1] + x[m+1]
w[3]. So each phase is an ordinary stride-1 correlation with a ceil(k/s)-tap sub-kernel
over x zero-padded by one on the side it reads past; in 2-D the four (r_h, r_w) phases
use 2x2 sub-kernels ``w[r_h'::2, r_w'::2]``. The dilated form multiplies 3/4 of its taps by
zeros and its gradient is a strided, dilated convolution that XLA:CPU runs slowly; the
phase form does 4x fewer multiply-adds and differentiates into ordinary convolutions.

``SubPixelConvTranspose`` is a subclass of ``nnx.ConvTranspose``: same constructor, same
``kernel [kh, kw, in, out]`` and ``bias [out]`` parameters and initialisation, so
checkpoints are interchangeable. It takes the phase path for 2-D inputs, 'SAME' padding,
no kernel dilation, no mask, ``transpose_kernel=False``; anything else falls back to the
parent's ``lax.conv_transpose``.

The same phase algebra runs the other way for strided convolutions: the input gradient of
``y[o] = sum_t x[s o + t - p] w[t]`` is a transposed convolution, again s^2 stride-1
correlations (:func:`conv_grad_taps`). :class:`PhaseGradConv` (a subclass of ``nnx.Conv``)
uses it through ``jax.custom_vjp`` in place of XLA:CPU's input-dilated convolution, and
computes the kernel gradient of multi-channel layers as one space-to-depth matmul
(:func:`s2d_kernel_grad`). Both directions share :func:`phase_sum`. Timings:
docs/performance.md. These are the ``phase`` layers of :mod:`disentangle.backend`: the
conv64 networks use them on XLA:CPU, the stock flax layers elsewhere.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx


def phase_taps(k: int, s: int) -> list[list[tuple[int, int]]]:
    """Per output phase r in [0, s): the (kernel tap t, input offset d_t) pairs.

    Input offset d_t means phase r at position m reads x[m + d_t] * w[t] ('SAME' padding of
    ``lax.conv_transpose``; see the module docstring).
    """
    pad_len = k + s - 2
    a = k - 1 if s > k - 1 else math.ceil(pad_len / 2)
    return [[(t, (r + t - a) // s) for t in range(k) if (r + t - a) % s == 0]
            for r in range(s)]


def conv_grad_taps(k: int, s: int, pad_lo: int) -> list[list[tuple[int, int]]]:
    """Per input phase r in [0, s): the (kernel tap t, output offset d_t) pairs of the
    input gradient of a stride-s correlation ``y[o] = sum_t x[s o + t - pad_lo] w[t]``.

    ``x[s m + r]`` is read by output ``o = m + d_t`` through tap t when
    ``d_t = (r + pad_lo - t) / s`` is an integer, so
    ``dL/dx[s m + r] = sum_t dL/dy[m + d_t] w[t]^T``: a stride-1 correlation per phase.
    """
    return [[(t, (r + pad_lo - t) // s) for t in range(k) if (r + pad_lo - t) % s == 0]
            for r in range(s)]


def _pad_for(taps: list[list[tuple[int, int]]]) -> tuple[int, int]:
    """Zero padding (before, after) so reads x[m + d_t], m in [0, n), stay in range."""
    offsets = [d for phase in taps for _, d in phase]
    return max(0, -min(offsets)), max(0, max(offsets))


def _phase_ready(taps: list[list[tuple[int, int]]]) -> bool:
    """Every phase has taps at consecutive offsets (one dense correlation window)."""
    for phase in taps:
        ds = sorted(d for _, d in phase)
        if not ds or ds != list(range(ds[0], ds[0] + len(ds))):
            return False
    return True


def phase_sum(x: jax.Array, kernel: jax.Array, taps_h, taps_w, precision=None) -> jax.Array:
    """``y[n, s_h m + r_h, s_w q + r_w] = sum x[n, m + d_h, q + d_w] @ kernel[t_h, t_w]``
    over the taps ``(t_h, d_h) in taps_h[r_h]``, ``(t_w, d_w) in taps_w[r_w]``.

    Args:
      x: [n, M, Q, C_in]; kernel: [kh, kw, C_in, C_out]; taps as :func:`phase_taps`
        (offsets of one phase consecutive, :func:`_phase_ready`).
    Returns:
      [n, s_h M, s_w Q, C_out]: each phase is one stride-1 'VALID' convolution with the
      sub-kernel of its taps, interleaved by depth-to-space.
    """
    n, h, w = x.shape[:3]
    sh, sw = len(taps_h), len(taps_w)
    (lo_h, hi_h), (lo_w, hi_w) = _pad_for(taps_h), _pad_for(taps_w)
    xp = jnp.pad(x, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0)))
    rows = []
    for ph in taps_h:
        ph = sorted(ph, key=lambda td: td[1])
        cols = []
        for pw in taps_w:
            pw = sorted(pw, key=lambda td: td[1])
            # sub-kernel of this phase, taps in order of increasing offset
            sub = kernel[np.array([t for t, _ in ph])][:, np.array([t for t, _ in pw])]
            d_h, d_w = ph[0][1] + lo_h, pw[0][1] + lo_w
            window = xp[:, d_h:d_h + h + len(ph) - 1, d_w:d_w + w + len(pw) - 1]
            cols.append(jax.lax.conv_general_dilated(
                window, sub, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
                precision=precision))  # [n, M, Q, C_out]
        rows.append(jnp.stack(cols, axis=3))  # [n, M, Q, s_w, C_out]
    y = jnp.stack(rows, axis=2)  # [n, M, s_h, Q, s_w, C_out]
    # Depth-to-space: y[n, s_h m + r_h, s_w q + r_w] = phase (r_h, r_w) at (m, q).
    return y.reshape(n, sh * h, sw * w, kernel.shape[-1])


def subpixel_conv_transpose(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                            precision=None) -> jax.Array:
    """'SAME' transposed convolution of ``lax.conv_transpose`` computed by phases.

    Args:
      x: [n, H, W, C_in] (NHWC).
      kernel: [kh, kw, C_in, C_out], flax ``ConvTranspose`` layout (not flipped).
      strides: (s_h, s_w).

    Returns:
      [n, s_h H, s_w W, C_out], equal to
      ``lax.conv_transpose(x, kernel, strides, 'SAME', transpose_kernel=False)``; its
      gradients are autodiff's (ordinary convolutions).
    """
    (kh, kw), (sh, sw) = kernel.shape[:2], strides
    return phase_sum(x, kernel, phase_taps(kh, sh), phase_taps(kw, sw), precision)


def matmul_conv_transpose(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                          precision=None) -> jax.Array:
    """The same map in scatter form: one matmul, then each phase adds shifted tap planes.

    z[n, i, j, t_h, t_w, :] = x[n, i, j, :] @ kernel[t_h, t_w]   (one [nHW, C_in] x
    [C_in, kh kw C_out] matmul), and phase (r_h, r_w) at (m, q) sums z[m + d_h, q + d_w, t_h,
    t_w] over its taps. Its gradients are matmuls and shifted adds too; XLA:CPU runs
    this much faster than a convolution when C_out is tiny (the image layer, C_out = 1).

    Args/returns as :func:`subpixel_conv_transpose`.
    """
    (kh, kw), (sh, sw) = kernel.shape[:2], strides
    n, h, w, c_in = x.shape
    c_out = kernel.shape[-1]
    taps_h, taps_w = phase_taps(kh, sh), phase_taps(kw, sw)
    (lo_h, hi_h), (lo_w, hi_w) = _pad_for(taps_h), _pad_for(taps_w)
    k2 = kernel.transpose(2, 0, 1, 3).reshape(c_in, kh * kw * c_out)
    z = jnp.dot(x.reshape(n * h * w, c_in), k2, precision=precision)
    z = z.reshape(n, h, w, kh, kw, c_out)
    zp = jnp.pad(z, ((0, 0), (lo_h, hi_h), (lo_w, hi_w), (0, 0), (0, 0), (0, 0)))
    rows = []
    for ph in taps_h:
        cols = []
        for pw in taps_w:
            # y_phase[m, q] = sum_taps z[m + d_h, q + d_w, t_h, t_w]
            terms = [zp[:, lo_h + dh:lo_h + dh + h, lo_w + dw:lo_w + dw + w, th, tw]
                     for th, dh in ph for tw, dw in pw]
            cols.append(sum(terms[1:], terms[0]))
        rows.append(jnp.stack(cols, axis=3))  # [n, H, W, s_w, C_out]
    return jnp.stack(rows, axis=2).reshape(n, sh * h, sw * w, c_out)


_DIMS = ("NHWC", "HWIO", "NHWC")


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """lax 'SAME' padding (before, after) of a length-n axis: output ceil(n / s)."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


KERNEL_GRADS = ("auto", "s2d", "lax")


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3, 4, 5))
def strided_conv(x: jax.Array, kernel: jax.Array, strides: tuple[int, int],
                 padding: tuple[tuple[int, int], tuple[int, int]], precision=None,
                 kernel_grad: str = "auto") -> jax.Array:
    """``lax.conv_general_dilated(x, kernel, strides, padding)`` (NHWC, HWIO) whose input
    gradient is computed by phases (:func:`conv_grad_taps`) instead of XLA's dilated
    convolution (for stride 2 the same numbers, about 4x faster on XLA:CPU), and whose
    kernel gradient is :func:`s2d_kernel_grad` (``kernel_grad='s2d'``), XLA's own
    (``'lax'``) or, for ``'auto'``, the former where it is faster
    (:func:`_uses_s2d_kernel_grad`).

    Needs each input axis = stride x output axis (e.g. 'SAME' with an even size).
    """
    return jax.lax.conv_general_dilated(x, kernel, strides, padding,
                                        dimension_numbers=_DIMS, precision=precision)


def _strided_conv_fwd(x, kernel, strides, padding, precision, kernel_grad):
    return strided_conv(x, kernel, strides, padding, precision, kernel_grad), (x, kernel)


def s2d_kernel_grad(x: jax.Array, dy: jax.Array, kernel_shape, strides, padding,
                    precision=None) -> jax.Array:
    """dL/dw of ``y[o] = sum_t x[s o + t - p] w[t]`` (NHWC, HWIO) as one matmul.

    With m = ceil(k / s), tap ``t = s a + r`` (a in [0, m), r in [0, s)) reads the
    space-to-depth block ``X[o + a]`` at depth r of the padded input, so

        dL/dw[s a + r] = sum_{n, o} X[n, o + a, r]^T dL/dy[n, o].

    Flattening (n, block row, block column) of X and of dL/dy zero-padded to the same block
    grid, the offset a becomes a shift of the flat index by ``a_h W_b + a_w``, and all taps
    come from one ``[s^2 C_in, P] x [P, m^2 C_out]`` matmul against the shifted copies of
    dL/dy (P = n H_b W_b). XLA:CPU's own form first transposes the activations so that the
    batch is the minor axis; against it the conv64 train step ran 0.96-1.07x over four
    A/B runs, a small gain or none (docs/performance.md).
    """
    kh, kw, c_in, c_out = kernel_shape
    (sh, sw), ((lo_h, _), (lo_w, _)) = strides, padding
    n, h, w = x.shape[:3]
    oh, ow = dy.shape[1:3]
    mh, mw = -(-kh // sh), -(-kw // sw)
    hb, wb = oh + mh - 1, ow + mw - 1  # block grid that covers every tap's reads
    xp = jax.lax.pad(x, jnp.zeros((), x.dtype), [(0, 0, 0), (lo_h, hb * sh - h - lo_h, 0),
                                                (lo_w, wb * sw - w - lo_w, 0), (0, 0, 0)])
    blocks = xp.reshape(n, hb, sh, wb, sw, c_in).transpose(0, 1, 3, 2, 4, 5)
    p = n * hb * wb
    shifts = [a_h * wb + a_w for a_h in range(mh) for a_w in range(mw)]
    dyp = jnp.pad(dy, ((0, 0), (0, hb - oh), (0, wb - ow), (0, 0))).reshape(p, c_out)
    dyp = jnp.pad(dyp, ((shifts[-1], 0), (0, 0)))
    # column block (a_h, a_w) at flat index q holds dL/dy[q - shift], zero before the start
    dy_shifted = jnp.concatenate([dyp[shifts[-1] - d:shifts[-1] - d + p] for d in shifts],
                                 axis=1)
    g = jnp.dot(blocks.reshape(p, sh * sw * c_in).T, dy_shifted, precision=precision)
    g = g.reshape(sh, sw, c_in, mh, mw, c_out).transpose(3, 0, 4, 1, 2, 5)
    return g.reshape(mh * sh, mw * sw, c_in, c_out)[:kh, :kw]


def _uses_s2d_kernel_grad(kernel_shape, strides) -> bool:
    """Measured on XLA:CPU (docs/performance.md): the matmul beats XLA's gradient for
    multi-channel inputs and kernels larger than the stride; for k = s or C_in = 1 it
    does not."""
    kh, kw, c_in, _ = kernel_shape
    return c_in > 4 and (kh > strides[0] or kw > strides[1])


def _strided_conv_bwd(strides, padding, precision, kernel_grad, residuals, dy):
    x, kernel = residuals
    (kh, kw), (sh, sw) = kernel.shape[:2], strides
    # dL/dx[s m + r] = sum_t dL/dy[m + d_t] w[t]^T  (channels of w swapped)
    dx = phase_sum(dy, jnp.swapaxes(kernel, 2, 3), conv_grad_taps(kh, sh, padding[0][0]),
                   conv_grad_taps(kw, sw, padding[1][0]), precision)
    if kernel_grad == "s2d" or (kernel_grad == "auto"
                                and _uses_s2d_kernel_grad(kernel.shape, strides)):
        dw = s2d_kernel_grad(x, dy, kernel.shape, strides, padding, precision)
    else:
        _, vjp_kernel = jax.vjp(
            lambda k: jax.lax.conv_general_dilated(x, k, strides, padding,
                                                   dimension_numbers=_DIMS,
                                                   precision=precision), kernel)
        dw = vjp_kernel(dy)[0]
    return dx.astype(x.dtype), dw.astype(kernel.dtype)


strided_conv.defvjp(_strided_conv_fwd, _strided_conv_bwd)


class PhaseGradConv(nnx.Conv):
    """``nnx.Conv`` (same constructor, parameters and output) whose input gradient is
    computed by phases (:func:`strided_conv`) when it is strided.

    Covered: 2-D NHWC inputs with one batch axis, 'SAME' padding, strides > 1 with every
    input axis divisible by its stride and kernel >= stride, no dilation, one feature
    group, no mask. Anything else, or ``method='lax'``, is the parent's
    ``lax.conv_general_dilated`` with XLA's own gradient. ``kernel_grad``: how the phase
    path computes the kernel gradient (:data:`KERNEL_GRADS`, see :func:`strided_conv`).
    """

    def __init__(self, *args, method: str = "phase", kernel_grad: str = "auto", **kwargs):
        if method not in ("phase", "lax"):
            raise ValueError(f"PhaseGradConv method={method!r}; accepted: 'phase', 'lax'")
        if kernel_grad not in KERNEL_GRADS:
            raise ValueError(f"PhaseGradConv kernel_grad={kernel_grad!r}; accepted: "
                             f"{KERNEL_GRADS}")
        super().__init__(*args, **kwargs)
        self.method, self.kernel_grad = method, kernel_grad

    def _plan(self, inputs: jax.Array):
        """(strides, padding pairs) when :func:`strided_conv` covers ``inputs``, else None."""
        if self.method == "lax":
            return None
        ks = self.kernel_size
        strides = self.strides if self.strides is not None else 1
        strides = (strides,) * 2 if isinstance(strides, int) else tuple(strides)
        if not (len(ks) == 2 and inputs.ndim == 4 and isinstance(self.padding, str)
                and self.padding.upper() == "SAME" and max(strides) > 1
                and self.input_dilation in (None, 1, (1, 1))
                and self.kernel_dilation in (None, 1, (1, 1))
                and self.feature_group_count == 1 and self.mask is None
                and all(k >= s and n % s == 0
                        for k, s, n in zip(ks, strides, inputs.shape[1:3]))):
            return None
        pads = tuple(same_padding(n, k, s) for n, k, s in zip(inputs.shape[1:3], ks, strides))
        taps = [conv_grad_taps(k, s, lo) for k, s, (lo, _) in zip(ks, strides, pads)]
        return (strides, pads) if all(_phase_ready(t) for t in taps) else None

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """[n, H, W, C_in] -> [n, H / s_h, W / s_w, C_out]."""
        plan = self._plan(inputs)
        if plan is None:
            return super().__call__(inputs)
        kernel = self.kernel[...]
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype((inputs, kernel, bias), dtype=self.dtype)
        y = strided_conv(inputs, kernel, *plan, self.precision, self.kernel_grad)
        return y if bias is None else y + bias


METHODS = ("auto", "phase", "matmul", "lax")


class SubPixelConvTranspose(nnx.ConvTranspose):
    """``nnx.ConvTranspose`` computed by phases (same parameters, same output).

    ``method``: 'phase' (s^2 ordinary convolutions), 'matmul' (scatter form, for tiny
    C_out), 'lax' (the parent's dilated ``lax.conv_transpose``), or 'auto' = 'matmul' when
    ``out_features <= 4`` else 'phase' (the fastest on XLA:CPU, benchmarks/train_step.py).
    Cases the phase forms do not cover (non-2-D, padding other than 'SAME', kernel
    dilation, masks, ``transpose_kernel=True``, kernel smaller than the stride) use 'lax'.
    """

    def __init__(self, *args, method: str = "auto", **kwargs):
        if method not in METHODS:
            raise ValueError(f"SubPixelConvTranspose method={method!r}; accepted: {METHODS}")
        super().__init__(*args, **kwargs)
        self.method = method

    def _strides(self) -> tuple[int, int]:
        if self.strides is None:
            return (1, 1)
        return (self.strides,) * 2 if isinstance(self.strides, int) else tuple(self.strides)

    def resolved_method(self, inputs: jax.Array) -> str:
        """The formulation used for ``inputs``."""
        strides = self._strides()
        covered = (len(self.kernel_size) == 2 and inputs.ndim == 4
                   and isinstance(self.padding, str) and self.padding.upper() == "SAME"
                   and self.kernel_dilation in (None, 1, (1, 1)) and self.mask is None
                   and not self.transpose_kernel
                   and all(k >= s for k, s in zip(self.kernel_size, strides)))
        if self.method == "lax" or not covered:
            return "lax"
        if self.method == "auto":
            return "matmul" if self.out_features <= 4 else "phase"
        return self.method

    def __call__(self, inputs: jax.Array) -> jax.Array:
        """[n, H, W, C_in] -> [n, s_h H, s_w W, C_out]."""
        method = self.resolved_method(inputs)
        if method == "lax":
            return super().__call__(inputs)
        kernel = self.kernel[...]
        bias = self.bias[...] if self.bias is not None else None
        inputs, kernel, bias = self.promote_dtype((inputs, kernel, bias), dtype=self.dtype)
        fn = subpixel_conv_transpose if method == "phase" else matmul_conv_transpose
        y = fn(inputs, kernel, self._strides(), precision=self.precision)
        return y if bias is None else y + bias
