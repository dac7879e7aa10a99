"""Reconstruction losses: negative log-likelihoods summed over observation dimensions.

``bernoulli``: -sum[x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))] (x in [0, 1]).
``gaussian``: sum (sigmoid(l) - x)^2, the unit-variance Gaussian NLL up to a constant
and a factor 1/2, as disentanglement_lib's l2 loss.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax

from disentangle.registry import Registry

RECONSTRUCTION: Registry[Callable[[jax.Array, jax.Array], jax.Array]] = Registry(
    "reconstruction loss")


def _sum_per_example(v: jax.Array) -> jax.Array:
    return v.reshape(v.shape[0], -1).sum(axis=1)


@RECONSTRUCTION.register("bernoulli")
def bernoulli(logits: jax.Array, x: jax.Array) -> jax.Array:
    return _sum_per_example(optax.sigmoid_binary_cross_entropy(logits, x))


@RECONSTRUCTION.register("gaussian")
def gaussian(logits: jax.Array, x: jax.Array) -> jax.Array:
    return _sum_per_example(jnp.square(jax.nn.sigmoid(logits) - x))


def reconstruction_loss(kind: str, logits: jax.Array, x: jax.Array) -> jax.Array:
    """Per-example reconstruction loss [n] of the named kind."""
    return RECONSTRUCTION.get(kind)(logits, x)
