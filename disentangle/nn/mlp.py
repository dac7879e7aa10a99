"""Fully connected networks; the encoder/decoder pair flattens any observation shape."""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
from flax import nnx


class MLP(nnx.Module):
    """Linear layers with ReLU between them (none after the last)."""

    def __init__(self, sizes: Sequence[int], *, rngs: nnx.Rngs):
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = jax.nn.relu(x)
        return x


class MLPEncoder(nnx.Module):
    """[n, *obs] -> [n, out_features] (disentanglement_lib fc: 1200, 1200)."""

    def __init__(self, observation_shape, out_features, hidden=(1200, 1200), *, rngs):
        self.net = MLP((math.prod(observation_shape), *hidden, out_features), rngs=rngs)

    def __call__(self, x):
        return self.net(x.reshape(x.shape[0], -1))


class MLPDecoder(nnx.Module):
    """[n, latent_dim] -> logits [n, *obs] (disentanglement_lib fc: 1200, 1200, 1200)."""

    def __init__(self, latent_dim, observation_shape, hidden=(1200, 1200, 1200), *, rngs):
        self.observation_shape = tuple(observation_shape)
        self.net = MLP((latent_dim, *hidden, math.prod(observation_shape)), rngs=rngs)

    def __call__(self, z):
        return self.net(z).reshape(z.shape[0], *self.observation_shape)
