"""The convolutional encoder trunk shared by conv64, conv1d and the factor predictor.

``x -> ReLU(conv_1) -> ... -> ReLU(conv_L) -> flatten -> ReLU(FC hidden) -> linear head``
(the disentanglement_lib encoder shape). Subclasses choose the convolutions; parameter
paths are ``convs/<i>``, ``fc``, ``head``.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
from flax import nnx


class ConvTrunkEncoder(nnx.Module):
    """[n, *spatial, C] -> [n, out_features] through ``convs``, FC ``hidden`` and a head."""

    def __init__(self, convs: Sequence[nnx.Module], flat_features: int, out_features: int,
                 *, rngs: nnx.Rngs, hidden: int = 256):
        """``flat_features``: size of the last convolution's output, flattened."""
        self.convs = nnx.List(list(convs))
        self.fc = nnx.Linear(flat_features, hidden, rngs=rngs)
        self.head = nnx.Linear(hidden, out_features, rngs=rngs)

    def __call__(self, x: jax.Array) -> jax.Array:
        for conv in self.convs:
            x = jax.nn.relu(conv(x))
        x = jax.nn.relu(self.fc(x.reshape(x.shape[0], -1)))
        return self.head(x)
