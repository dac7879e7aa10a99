"""What the workbench does differently per JAX backend (one home for that choice).

Code written for one backend is used only where it was measured to pay. On XLA:CPU:

- the conv64 networks use the ``phase`` layers of :mod:`disentangle.nn.subpixel`
  (:class:`~disentangle.nn.subpixel.PhaseGradConv`,
  :class:`~disentangle.nn.subpixel.SubPixelConvTranspose`: transposed convolutions and
  strided-convolution gradients computed by phases, custom VJPs): the conv64 beta-VAE
  train step ran 4.8x faster than with the stock layers under the same options on 2 cores
  (``benchmarks/train_step.py``, ``jax`` / ``jax_stock``; docs/performance.md); so do the
  ``hsu_style`` networks: QLAE's step 2.3x and the beta-VAE's 3.3x the stock layers' rate
  (``benchmarks/network_step.py --stock``, 2 cores at load ~8);
- programs are compiled with XLA:CPU options (:mod:`disentangle.xla_options`).

On GPU and TPU the networks use the ``stock`` layers, ``nnx.Conv`` and
``nnx.ConvTranspose`` (cuDNN's and XLA's own transposed convolutions and gradients; the
phase layers were never measured there), and programs are plain ``jax.jit``.

Both layer kinds are the same modules with the same parameters (the phase layers subclass
the stock ones: same ``kernel [kh, kw, C_in, C_out]`` and ``bias [C_out]`` at the same
paths, same initialisation, same map), so a checkpoint written on one backend restores on
the other. ``DISENTANGLE_LAYERS=phase|stock`` overrides the layer kind (tests,
benchmarks, an A/B run on an accelerator); it is read when a network is built.

The metrics' multinomial logistic fits (:func:`metrics._linear.fit_softmax`: InfoE,
explicitness, DCI's logistic importances) run on the host on CPU (scipy's L-BFGS-B over
float32 numpy/numba objectives, one column per thread) and on the default JAX device
elsewhere (:mod:`metrics._linear_device`: all columns in one jitted, vmapped optax
L-BFGS). On CPU the host path was measured faster (docs/metrics.md, Speed);
``DISENTANGLE_FIT=host|device`` overrides the choice; it is read at each fit.

:func:`machine` describes the CPU and backend a figure was measured on (studies record it
per seed: training is not bit-reproducible across CPU vector widths).
"""

from __future__ import annotations

import contextlib
import os
import platform

import jax

from disentangle.errors import UserError

LAYERS_ENV = "DISENTANGLE_LAYERS"
LAYER_KINDS = ("phase", "stock")
FIT_ENV = "DISENTANGLE_FIT"
FIT_PATHS = ("host", "device")


def machine() -> dict:
    """What a figure was measured on: ``{"cpu", "cpu_family_model", "avx512", "cpu_count",
    "jax_backend"}`` (from /proc/cpuinfo where there is one; a Zen 3 and a Zen 4 EPYC print
    the same model name, "AMD EPYC", so family/model and AVX-512 are kept beside it)."""
    info = {"cpu": platform.processor() or platform.machine() or "unknown",
            "cpu_family_model": None, "avx512": None, "cpu_count": os.cpu_count(),
            "jax_backend": jax.default_backend()}
    try:
        with open("/proc/cpuinfo") as f:
            fields = {}
            for line in f:
                if not line.strip():
                    break  # the first processor's block
                key, _, value = line.partition(":")
                fields[key.strip()] = value.strip()
    except OSError:
        return info
    info["cpu"] = fields.get("model name", info["cpu"])
    if "cpu family" in fields and "model" in fields:
        info["cpu_family_model"] = f"{fields['cpu family']}/{fields['model']}"
    if "flags" in fields:
        info["avx512"] = "avx512f" in fields["flags"].split()
    return info


def describe_machine(info: dict) -> str:
    """One line for a report, e.g. "AMD EPYC (family/model 25/17, AVX-512), 2 CPUs, cpu"."""
    extra = [f"family/model {info['cpu_family_model']}"] if info.get("cpu_family_model") else []
    if info.get("avx512") is not None:
        extra.append("AVX-512" if info["avx512"] else "no AVX-512")
    cpu = f"{info.get('cpu', 'unknown')}" + (f" ({', '.join(extra)})" if extra else "")
    return f"{cpu}, {info.get('cpu_count')} CPUs, {info.get('jax_backend')}"


def cpu_tuned(backend: str | None = None) -> bool:
    """The workbench's XLA:CPU code paths apply: ``backend`` (default: JAX's default
    backend) is ``'cpu'``."""
    return (backend or jax.default_backend()) == "cpu"


def layer_kind(backend: str | None = None) -> str:
    """``'phase'`` or ``'stock'``: ``$DISENTANGLE_LAYERS`` if set, else ``'phase'`` on CPU
    and ``'stock'`` on other backends."""
    value = os.environ.get(LAYERS_ENV, "")
    if value:
        return _checked(value, f"{LAYERS_ENV} (environment variable)")
    return "phase" if cpu_tuned(backend) else "stock"


def fit_path(backend: str | None = None) -> str:
    """Where the metrics' logistic fits run, ``'host'`` or ``'device'``: ``$DISENTANGLE_FIT``
    if set, else ``'host'`` on CPU and ``'device'`` on other backends."""
    value = os.environ.get(FIT_ENV, "")
    if value:
        return _checked(value, f"{FIT_ENV} (environment variable)", FIT_PATHS)
    return "host" if cpu_tuned(backend) else "device"


def _checked(kind: str, source: str, accepted: tuple[str, ...] = LAYER_KINDS) -> str:
    if kind not in accepted:
        raise UserError(f"{source}={kind!r}; accepted: {', '.join(accepted)} (unset: the "
                        f"backend's default, {accepted[0]!r} on CPU, {accepted[1]!r} elsewhere)")
    return kind


@contextlib.contextmanager
def use_layers(kind: str):
    """Networks built inside this block use layer ``kind`` (sets ``$DISENTANGLE_LAYERS``)."""
    saved = os.environ.get(LAYERS_ENV)
    os.environ[LAYERS_ENV] = _checked(kind, "use_layers kind")
    try:
        yield
    finally:
        if saved is None:
            del os.environ[LAYERS_ENV]
        else:
            os.environ[LAYERS_ENV] = saved


def conv_layers(kind: str | None = None) -> tuple[type, type]:
    """``(Conv, ConvTranspose)`` classes of layer ``kind`` (default :func:`layer_kind`);
    both take ``nnx.Conv`` / ``nnx.ConvTranspose``'s constructor arguments."""
    from flax import nnx

    from disentangle.nn.subpixel import PhaseGradConv, SubPixelConvTranspose

    layers = {"phase": (PhaseGradConv, SubPixelConvTranspose),
              "stock": (nnx.Conv, nnx.ConvTranspose)}
    return layers[_checked(kind, "layer kind") if kind else layer_kind()]
