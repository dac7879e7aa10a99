"""Methods: one package per method, found by name in ``MODELS``.

A method is an ``nnx.Module`` subclass of :class:`Method` with ``encode``, ``decode``,
its objectives (``loss(batch, key) -> (scalar, dict)`` for single-loss methods) and,
for methods with several optimizers or stages, ``param_groups`` / ``optimizers`` /
``schedule``; see :mod:`disentangle.methods.base`.
"""

from disentangle.methods.base import (
    MODELS,
    Batch,
    DataSpec,
    Method,
    Representation,
    Update,
    build_model,
    register_model,
)

__all__ = ["MODELS", "Batch", "DataSpec", "Method", "Representation", "Update", "build_model",
           "register_model"]
