"""Registry of encoder/decoder pairs that configs name with ``model.network``."""

from __future__ import annotations

from collections.abc import Callable

from flax import nnx

from disentangle.nn.conv64 import Conv64Decoder, Conv64Encoder
from disentangle.nn.mlp import MLPDecoder, MLPEncoder
from disentangle.registry import Registry

NETWORKS: Registry[tuple[Callable, Callable]] = Registry("network")


def _conv64_encoder(observation_shape, out_features, rngs):
    if tuple(observation_shape[:2]) != (64, 64) or len(observation_shape) != 3:
        raise ValueError(
            f"network 'conv64' takes 64x64xC images; the dataset has observation shape "
            f"{tuple(observation_shape)}. Use model.network='mlp' for other shapes."
        )
    return Conv64Encoder(observation_shape[-1], out_features, rngs=rngs)


NETWORKS.register("conv64")((
    _conv64_encoder,
    lambda latent_dim, observation_shape, rngs: Conv64Decoder(
        latent_dim, observation_shape[-1], rngs=rngs),
))
NETWORKS.register("mlp")((
    lambda observation_shape, out_features, rngs: MLPEncoder(
        observation_shape, out_features, rngs=rngs),
    lambda latent_dim, observation_shape, rngs: MLPDecoder(
        latent_dim, observation_shape, rngs=rngs),
))
NETWORKS.register("mlp_small")((
    lambda observation_shape, out_features, rngs: MLPEncoder(
        observation_shape, out_features, hidden=(256, 256), rngs=rngs),
    lambda latent_dim, observation_shape, rngs: MLPDecoder(
        latent_dim, observation_shape, hidden=(256, 256), rngs=rngs),
))


def build_encoder(name: str, observation_shape, out_features: int, rngs: nnx.Rngs) -> nnx.Module:
    return NETWORKS.get(name)[0](tuple(observation_shape), out_features, rngs)


def build_decoder(name: str, latent_dim: int, observation_shape, rngs: nnx.Rngs) -> nnx.Module:
    return NETWORKS.get(name)[1](latent_dim, tuple(observation_shape), rngs)
