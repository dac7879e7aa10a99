"""The training programs' XLA compiler options: applied on CPU, yielding to XLA_FLAGS."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from disentangle import xla_options


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (2, 2), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _convolutions_in_ynnpack(hlo: str) -> bool:
    return any("__ynn_fusion" in line and "conv_general_dilated" in line
               for line in hlo.splitlines())


def test_cpu_options_keep_convolutions_out_of_ynnpack(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    assert xla_options.compiler_options("cpu") == xla_options.CPU_OPTIONS
    x, w = jnp.ones((4, 32, 32, 32)), jnp.ones((4, 4, 32, 32)) * 0.01
    fn = xla_options.jit(_conv)
    hlo = fn.lower(x, w).compile().as_text()
    assert " convolution(" in hlo
    assert not _convolutions_in_ynnpack(hlo)
    # same numbers as the default compilation
    with xla_options.xla_defaults():
        ref = xla_options.jit(_conv)(x, w)
    np.testing.assert_allclose(fn(x, w), ref, rtol=1e-6)


def test_user_flags_and_other_backends_win(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", f"--{xla_options.YNN_FUSION_TYPE}=LIBRARY_FUSION_TYPE_DOT")
    assert xla_options.compiler_options("cpu") is None
    monkeypatch.delenv("XLA_FLAGS")
    assert xla_options.compiler_options("gpu") is None
    with xla_options.xla_defaults():
        assert xla_options.compiler_options("cpu") is None
    assert xla_options.compiler_options("cpu") == xla_options.CPU_OPTIONS
