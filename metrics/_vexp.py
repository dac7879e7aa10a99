"""Vectorisable ``exp`` loops for the compiled kernels (plain functions, jitted by their users
with ``fastmath={"contract"}``: :mod:`metrics._gbt` in float64, :mod:`metrics._linear` in
float32).

numpy's float64 ``exp`` is SIMD only on AVX-512 CPUs (elsewhere glibc's scalar one: 7-10 ns
a value on a 2-core AVX2 EPYC) and its float32 one took 1.5-4 ns there; these take ~1.8 ns
(float64) and ~0.7 ns (float32) on one core, because every step is an add, multiply, shift
or compare that LLVM vectorises:

    exp(v) = 2^k exp(r),  k = round(v / ln 2),  r = v - k ln 2,  |r| <= ln(2) / 2,

``k`` rounded by adding ``1.5 * 2^m`` (``m`` = 52 or 23 mantissa bits: the sum's low bits
then hold ``k``), ``k ln 2`` subtracted in two parts (Cody-Waite: a high part exact in ``k *
hi``), ``exp(r)`` a Taylor polynomial (degree 12 in float64: relative error < 4e-16; degree 7
in float32: < 8e-8, numpy's own float32 exp: 2e-7), and ``2^k`` the bits ``(k + bias) <<
m`` read as a float. Only FMA contraction is allowed: reassociation would fold ``(v / ln 2 +
s) - s`` to ``v / ln 2``. Arguments are clamped below (normal results only); none may exceed
~88 (float32) or ~709 (float64): the callers exponentiate shifted logits ``<= 0``. Indices
run over ``range(len)`` of slices (an offset index ``i - a`` kept LLVM from vectorising).
"""

from __future__ import annotations

import numpy as np

_LOG2E = 1.4426950408889634
_SHIFT64 = 6755399441055744.0  # 1.5 * 2**52
_SHIFT64_BITS = int(np.float64(_SHIFT64).view(np.int64))
_HI64 = 6.93147180369123816490e-01  # ln 2 to 32 significant bits
_LO64 = 1.90821492927058770002e-10  # ln 2 - hi

# float32 constants as numpy scalars: numba would promote python floats to float64
_F = np.float32
_LOG2E32 = _F(_LOG2E)
_SHIFT32 = _F(12582912.0)  # 1.5 * 2**23
_SHIFT32_BITS = int(np.float32(12582912.0).view(np.int32))
_HI32 = _F(0.693359375)  # ln 2 to 9 significant bits
_LO32 = _F(-2.12194440e-4)  # ln 2 - hi
_ONE32, _C2, _C3, _C4, _C5, _C6, _C7 = (_F(1.0), _F(1 / 2), _F(1 / 6), _F(1 / 24),
                                        _F(1 / 120), _F(1 / 720), _F(1 / 5040))


def exp64_inplace(row, scale):
    """``row = exp(max(row, -708))`` of a float64 slice; ``scale`` float64 scratch of its size."""
    m = row.shape[0]
    for i in range(m):
        v = row[i] if row[i] > -708.0 else -708.0  # (max() does not vectorise here)
        s = v * _LOG2E + _SHIFT64
        k = s - _SHIFT64
        r = (v - k * _HI64) - k * _LO64
        p = r * (1.0 / 479001600) + 1.0 / 39916800
        p = p * r + 1.0 / 3628800
        p = p * r + 1.0 / 362880
        p = p * r + 1.0 / 40320
        p = p * r + 1.0 / 5040
        p = p * r + 1.0 / 720
        p = p * r + 1.0 / 120
        p = p * r + 1.0 / 24
        p = p * r + 1.0 / 6
        p = p * r + 0.5
        p = p * r + 1.0
        row[i] = p * r + 1.0
        scale[i] = s
    bits = scale.view(np.int64)
    for i in range(m):
        bits[i] = (bits[i] - _SHIFT64_BITS + 1023) << 52
    for i in range(m):
        row[i] *= scale[i]


def exp32(src, dst, floor, scale):
    """``dst = exp(max(src, floor))`` of float32 slices (``floor`` a float32 >= -87);
    ``scale`` float32 scratch of their size."""
    m = src.shape[0]
    for i in range(m):
        v = src[i] if src[i] > floor else floor
        s = v * _LOG2E32 + _SHIFT32
        k = s - _SHIFT32
        r = (v - k * _HI32) - k * _LO32
        p = r * _C7 + _C6
        p = p * r + _C5
        p = p * r + _C4
        p = p * r + _C3
        p = p * r + _C2
        p = p * r + _ONE32
        dst[i] = p * r + _ONE32
        scale[i] = s
    bits = scale.view(np.int32)
    for i in range(m):
        bits[i] = (bits[i] - _SHIFT32_BITS + 127) << 23
    for i in range(m):
        dst[i] *= scale[i]
