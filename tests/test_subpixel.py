"""Sub-pixel transposed convolution equals flax's ConvTranspose (values and gradients)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from disentangle.nn.subpixel import (
    PhaseGradConv,
    SubPixelConvTranspose,
    conv_grad_taps,
    phase_taps,
    s2d_kernel_grad,
)


def test_phase_taps_of_4x4_stride_2():
    # y[2m] = x[m-1] w[0] + x[m] w[2];  y[2m+1] = x[m] w[1] + x[m+1] w[3]
    assert phase_taps(4, 2) == [[(0, -1), (2, 0)], [(1, 0), (3, 1)]]


def test_single_pixel_impulse_places_the_kernel():
    """A one-hot input at i writes w[t] at output o = 2i + 2 - t (flax: unflipped kernel
    correlated with the dilated input padded by 2)."""
    layer = SubPixelConvTranspose(1, 1, (4, 4), strides=(2, 2), padding="SAME",
                                  use_bias=False, rngs=nnx.Rngs(0), method="phase")
    w = np.arange(16, dtype=np.float32).reshape(4, 4)
    layer.kernel[...] = jnp.asarray(w)[:, :, None, None]
    x = np.zeros((1, 4, 4, 1), np.float32)
    x[0, 2, 1, 0] = 1.0
    y = np.asarray(layer(jnp.asarray(x)))[0, :, :, 0]
    expected = np.zeros((8, 8), np.float32)
    for th in range(4):
        for tw in range(4):
            expected[2 * 2 + 2 - th, 2 * 1 + 2 - tw] = w[th, tw]
    np.testing.assert_array_equal(y, expected)


SLOW = pytest.mark.slow
CASES = [  # (kernel, stride, in, out, H, W): conv64's layers, odd sizes, other k and s
    (4, 2, 3, 5, 4, 4), pytest.param(4, 2, 8, 1, 5, 3, marks=SLOW),
    pytest.param(3, 2, 2, 4, 5, 6, marks=SLOW), pytest.param(5, 3, 3, 2, 4, 4, marks=SLOW),
]


@pytest.mark.parametrize("method", ["phase", "matmul"])
@pytest.mark.parametrize("k,s,cin,cout,h,w", CASES)
def test_equals_conv_transpose_forward_and_gradients(method, k, s, cin, cout, h, w):
    ref = nnx.ConvTranspose(cin, cout, (k, k), strides=(s, s), padding="SAME",
                            rngs=nnx.Rngs(0))
    sub = SubPixelConvTranspose(cin, cout, (k, k), strides=(s, s), padding="SAME",
                                rngs=nnx.Rngs(0), method=method)
    sub.bias[...] = ref.bias[...] = jax.random.normal(jax.random.key(2), (cout,))
    assert sub.resolved_method(jnp.zeros((1, h, w, cin))) != "lax"
    x = jax.random.normal(jax.random.key(1), (2, h, w, cin))
    target = jax.random.normal(jax.random.key(3), (2, s * h, s * w, cout))

    def loss(layer, x):  # a loss whose gradient depends on every output position
        return jnp.sum(jnp.sin(layer(x)) * target)

    np.testing.assert_allclose(sub(x), ref(x), rtol=1e-5, atol=1e-5)
    g_sub = nnx.grad(loss, argnums=(0, 1))(sub, x)
    g_ref = nnx.grad(loss, argnums=(0, 1))(ref, x)
    np.testing.assert_allclose(g_sub[1], g_ref[1], rtol=1e-5, atol=1e-5)  # d/dx
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(getattr(g_sub[0], name)[...], getattr(g_ref[0], name)[...],
                                   rtol=1e-5, atol=1e-4)


def test_uncovered_cases_fall_back_to_lax():
    layer = SubPixelConvTranspose(2, 2, (3, 3), strides=(2, 2), padding="VALID",
                                  rngs=nnx.Rngs(0))
    ref = nnx.ConvTranspose(2, 2, (3, 3), strides=(2, 2), padding="VALID", rngs=nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(0), (1, 4, 4, 2))
    assert layer.resolved_method(x) == "lax"
    np.testing.assert_array_equal(layer(x), ref(x))


def test_conv_grad_taps_of_4x4_stride_2_same():
    # y[o] = sum_t x[2o + t - 1] w[t]: x[2m] is read by (o=m, t=1) and (o=m-1, t=3);
    # x[2m+1] by (o=m+1, t=0) and (o=m, t=2).
    assert conv_grad_taps(4, 2, 1) == [[(1, 0), (3, -1)], [(0, 1), (2, 0)]]
    assert conv_grad_taps(2, 2, 0) == [[(0, 0)], [(1, 0)]]


CONV_CASES = [  # (kernel, stride, in, out, H, W): conv64's encoder layers, other k and s
    (4, 2, 3, 5, 8, 8), *(pytest.param(*c, marks=SLOW) for c in [
        (2, 2, 4, 3, 6, 4), (3, 2, 2, 4, 6, 8), (5, 3, 3, 2, 9, 6), (3, 2, 6, 4, 6, 8),
        (5, 3, 5, 2, 9, 6)]),
    # C_in > 4 and k > s: kernel gradient by the space-to-depth matmul
    (4, 2, 8, 5, 8, 8),
]


@pytest.mark.parametrize("k,s,cin,cout,h,w", CONV_CASES)
def test_phase_grad_conv_equals_conv_forward_and_gradients(k, s, cin, cout, h, w):
    ref = nnx.Conv(cin, cout, (k, k), strides=s, padding="SAME", rngs=nnx.Rngs(0))
    new = PhaseGradConv(cin, cout, (k, k), strides=s, padding="SAME", rngs=nnx.Rngs(0))
    new.bias[...] = ref.bias[...] = jax.random.normal(jax.random.key(2), (cout,))
    x = jax.random.normal(jax.random.key(1), (2, h, w, cin))
    assert new._plan(x) is not None
    target = jax.random.normal(jax.random.key(3), ref(x).shape)

    def loss(layer, x):
        return jnp.sum(jnp.sin(layer(x)) * target)

    np.testing.assert_allclose(new(x), ref(x), rtol=1e-5, atol=1e-5)
    g_new = nnx.grad(loss, argnums=(0, 1))(new, x)
    g_ref = nnx.grad(loss, argnums=(0, 1))(ref, x)
    np.testing.assert_allclose(g_new[1], g_ref[1], rtol=1e-5, atol=1e-5)  # d/dx by phases
    for name in ("kernel", "bias"):
        np.testing.assert_allclose(getattr(g_new[0], name)[...], getattr(g_ref[0], name)[...],
                                   rtol=1e-5, atol=1e-4)
    # vmapped (as in vectorised sweeps): the custom gradient batches too
    xs = jnp.stack([x, 2 * x])
    g_vm = jax.vmap(jax.grad(lambda x: loss(new, x)))(xs)
    np.testing.assert_allclose(g_vm[1], jax.grad(lambda x: loss(ref, x))(2 * x),
                               rtol=1e-5, atol=1e-5)


def test_phase_grad_conv_falls_back_where_phases_do_not_apply():
    layer = PhaseGradConv(2, 3, (4, 4), strides=2, padding="SAME", rngs=nnx.Rngs(0))
    ref = nnx.Conv(2, 3, (4, 4), strides=2, padding="SAME", rngs=nnx.Rngs(0))
    odd = jax.random.normal(jax.random.key(0), (1, 7, 8, 2))  # 7 is not a multiple of 2
    assert layer._plan(odd) is None
    np.testing.assert_array_equal(layer(odd), ref(odd))
    unit = PhaseGradConv(2, 3, (3, 3), strides=1, padding="SAME", rngs=nnx.Rngs(0))
    assert unit._plan(odd) is None
    plain = PhaseGradConv(2, 3, (4, 4), strides=2, padding="SAME", rngs=nnx.Rngs(0),
                          method="lax")
    assert plain._plan(jnp.zeros((1, 8, 8, 2))) is None
    with pytest.raises(ValueError, match="method='im2col'; accepted: 'phase', 'lax'"):
        PhaseGradConv(2, 3, (4, 4), rngs=nnx.Rngs(0), method="im2col")


@pytest.mark.parametrize("k,s,cin,cout,h,w,pad", [
    pytest.param(4, 2, 32, 32, 32, 32, ((1, 1), (1, 1)), marks=SLOW),  # conv64's 2nd layer
    (4, 2, 1, 32, 64, 64, ((1, 1), (1, 1))),    # its first
    pytest.param(2, 2, 32, 64, 16, 16, ((0, 0), (0, 0)), marks=SLOW),  # k = s: no shifts
    (3, 2, 3, 5, 15, 10, ((0, 1), (1, 1))),     # odd size, k not a multiple of s
    pytest.param(5, 3, 2, 3, 12, 9, ((0, 0), (2, 1)), marks=SLOW),  # 'VALID' rows
])
def test_s2d_kernel_grad_equals_autodiff(k, s, cin, cout, h, w, pad):
    kx, kk, kd = jax.random.split(jax.random.key(0), 3)
    x = jax.random.normal(kx, (3, h, w, cin))
    kernel = jax.random.normal(kk, (k, k, cin, cout))

    def conv(kernel):
        return jax.lax.conv_general_dilated(x, kernel, (s, s), pad, precision="highest",
                                            dimension_numbers=("NHWC", "HWIO", "NHWC"))

    y, vjp = jax.vjp(conv, kernel)
    dy = jax.random.normal(kd, y.shape)
    got = s2d_kernel_grad(x, dy, kernel.shape, (s, s), pad, precision="highest")
    ref = vjp(dy)[0]
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5 * float(jnp.abs(ref).max()))


@pytest.mark.parametrize("kernel_grad,cin", [("s2d", 2), ("lax", 8)])
def test_phase_grad_conv_kernel_grad_choices_agree(kernel_grad, cin):
    """Forcing the form 'auto' would not pick gives the same kernel gradient."""
    ref = nnx.Conv(cin, 3, (4, 4), strides=2, padding="SAME", rngs=nnx.Rngs(0))
    new = PhaseGradConv(cin, 3, (4, 4), strides=2, padding="SAME", rngs=nnx.Rngs(0),
                        kernel_grad=kernel_grad)
    x = jax.random.normal(jax.random.key(1), (2, 8, 8, cin))
    loss = lambda layer: jnp.sum(jnp.sin(layer(x)))
    np.testing.assert_allclose(nnx.grad(loss)(new).kernel[...], nnx.grad(loss)(ref).kernel[...],
                               rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="kernel_grad='bogus'"):
        PhaseGradConv(cin, 3, (4, 4), strides=2, rngs=nnx.Rngs(0), kernel_grad="bogus")
