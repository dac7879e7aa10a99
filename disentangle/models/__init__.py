"""Methods: one file per method, found by name in ``MODELS``.

A method is an ``nnx.Module`` subclass of :class:`Method` with ``encode``, ``decode``
and ``loss(x, key) -> (scalar, dict)``; see :mod:`disentangle.models.base`.
"""

from disentangle.models.base import (
    MODELS,
    DataSpec,
    Method,
    Representation,
    build_model,
    register_model,
)

__all__ = ["MODELS", "DataSpec", "Method", "Representation", "build_model", "register_model"]
