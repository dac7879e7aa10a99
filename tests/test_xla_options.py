"""The training programs' XLA compiler options: applied on CPU, yielding to XLA_FLAGS."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

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
    # same numbers as the default compilation, up to the order of float32 sums of 512
    # products (5e-6 relative on an AVX2 EPYC, where the default takes another kernel)
    with xla_options.xla_defaults():
        ref = xla_options.jit(_conv)(x, w)
    np.testing.assert_allclose(fn(x, w), ref, rtol=2e-5)
    np.testing.assert_allclose(fn(x, w)[0, 8, 8], 5.12, rtol=2e-5)  # 512 x 0.01, interior


def test_user_flags_and_other_backends_win(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", f"--{xla_options.YNN_FUSION_TYPE}=LIBRARY_FUSION_TYPE_DOT")
    assert xla_options.compiler_options("cpu") is None
    monkeypatch.delenv("XLA_FLAGS")
    assert xla_options.compiler_options("gpu") is None
    with xla_options.xla_defaults():
        assert xla_options.compiler_options("cpu") is None
    assert xla_options.compiler_options("cpu") == xla_options.CPU_OPTIONS


def test_process_flags_added_once_and_never_over_the_users_value():
    """In a fresh process, as the CLI calls it: added to XLA_FLAGS once (the second call
    adds nothing), never over the user's value, and XLA accepts the flag (the process
    computes on the CPU backend afterwards instead of aborting)."""
    import os
    import subprocess
    import sys

    code = ("import os; from disentangle import xla_options as xo; a = xo.set_process_flags(); "
            "b = xo.set_process_flags(); import jax.numpy as jnp; "
            "assert float(jnp.ones(3).sum()) == 3.0; "
            "print(a, b, os.environ['XLA_FLAGS'], sep='|')")
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    name, value = next(iter(xla_options.PROCESS_FLAGS.items()))
    assert out == f"['--{name}={value}']|[]|--{name}={value}"
    env["XLA_FLAGS"] = f"--{name}=true"  # the user's choice stands
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True).stdout.strip().splitlines()[-1]
    assert out == f"[]|[]|--{name}=true"


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


def test_options_are_those_in_force_when_the_program_runs(monkeypatch):
    """A program defined outside ``xla_defaults()`` but run inside it gets XLA's defaults
    (module-level decorators are defined at import, before the CLI sets anything)."""
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    fn = xla_options.jit(_conv)
    x, w = jnp.ones((4, 32, 32, 32)), jnp.ones((4, 4, 32, 32)) * 0.01
    with xla_options.xla_defaults():
        default_hlo = fn.lower(x, w).compile().as_text()
    assert not _convolutions_in_ynnpack(fn.lower(x, w).compile().as_text())
    assert default_hlo != fn.lower(x, w).compile().as_text()


class _Net(nnx.Module):
    """A strided convolution, dropout (an RNG stream) and a dense head."""

    def __init__(self, rngs: nnx.Rngs):
        self.conv = nnx.Conv(1, 8, (4, 4), strides=2, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)
        self.head = nnx.Linear(8 * 8 * 8, 3, rngs=rngs)

    def __call__(self, x):
        h = self.drop(jax.nn.relu(self.conv(x)))
        return self.head(h.reshape(x.shape[0], -1))


def test_jit_apply_equals_nnx_jit_with_a_static_argument():
    x = jax.random.normal(jax.random.key(1), (6, 16, 16, 1))
    model = _Net(nnx.Rngs(0))
    model.eval()

    def forward(m, x, scale):
        return scale * m(x)

    ours = xla_options.jit_apply(forward, static_argnums=2)
    ref = nnx.jit(forward, static_argnums=2)
    for scale in (1.0, 2.0):
        np.testing.assert_allclose(ours(model, x, scale), ref(model, x, scale), rtol=1e-5,
                                   atol=1e-6)
    assert not np.allclose(ours(model, x, 1.0), ours(model, x, 2.0))


def test_jit_apply_compiles_with_the_options(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    model = _Net(nnx.Rngs(0))
    model.eval()
    forward = xla_options.jit_apply(lambda m, x: m(x))
    x = jnp.ones((4, 16, 16, 1))
    hlo = forward.lower(model, x).compile().as_text()
    assert " convolution(" in hlo and not _convolutions_in_ynnpack(hlo)


def test_compilation_cache_directory_off_switch_and_a_second_process_hit(tmp_path):
    """In fresh processes: the default directory is the workbench cache's; the second process
    loads the first one's program from it (a cache hit, no compilation), also when something
    was compiled before the cache was switched on; ``off`` switches the cache off; a
    directory the user gave JAX is kept."""
    import os
    import subprocess
    import sys

    code = ("import jax, jax.numpy as jnp; from disentangle import xla_options as xo; "
            "hits = []; jax.monitoring.register_event_listener("
            "lambda name, **kw: hits.append(name) if name.endswith('cache_hits') else None); "
            "jax.jit(lambda x: x + 1)(1.0); "  # a compilation before: the cache still applies
            "path = xo.enable_compilation_cache(min_compile_seconds=0); "
            "jax.jit(lambda x: jnp.sin(x) * 3.0)(jnp.ones(5)).block_until_ready(); "
            "print(path, len(hits) > 0, sep='|')")
    env = {k: v for k, v in os.environ.items()
           if k not in ("JAX_COMPILATION_CACHE_DIR", xla_options.CACHE_ENV)}
    env["DISENTANGLE_CACHE"] = str(tmp_path / "cache")

    def run(**extra):
        out = subprocess.run([sys.executable, "-c", code], env={**env, **extra},
                             capture_output=True, text=True, check=True)
        return out.stdout.strip().splitlines()[-1]

    default = tmp_path / "cache" / "jax"
    assert run() == f"{default}|False"
    assert any(default.iterdir())
    assert run() == f"{default}|True"
    assert run(**{xla_options.CACHE_ENV: "off"}) == "None|False"
    assert run(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "mine")) == f"{tmp_path / 'mine'}|False"
