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


def test_process_flags_set_before_backends_only():
    """In a fresh process: added to XLA_FLAGS once, never over the user's value, and not
    after JAX's backends exist."""
    import os
    import subprocess
    import sys

    code = ("import os; from disentangle import xla_options as xo; a = xo.set_process_flags(); "
            "b = xo.set_process_flags(); import jax.numpy as jnp; jnp.ones(1); "
            "os.environ['XLA_FLAGS'] = ''; c = xo.set_process_flags(); "
            "print(a, b, c, sep='|')")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    name, value = next(iter(xla_options.PROCESS_FLAGS.items()))
    assert out == f"['--{name}={value}']|[]|[]"
    env["XLA_FLAGS"] = f"--{name}=true"  # the user's choice stands
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    assert out == "[]|[]|[]"


def test_process_flags_not_set_on_an_unverified_jaxlib():
    """A jaxlib outside PROCESS_FLAGS_JAXLIB gets nothing (XLA aborts on unknown flags)."""
    import os
    import subprocess
    import sys

    code = ("import os; from disentangle import xla_options as xo; import jaxlib.version; "
            "jaxlib.version.__version__ = '9.9.0'; "
            "print(xo.set_process_flags(), os.environ.get('XLA_FLAGS'), sep='|')")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    assert out == "[]|None"
