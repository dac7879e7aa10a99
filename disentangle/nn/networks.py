"""Registry of encoder/decoder pairs that configs name with ``model.network``."""

from __future__ import annotations

from collections.abc import Callable

from flax import nnx

from disentangle.errors import ConfigError
from disentangle.nn.conv64 import Conv64Decoder, Conv64Encoder
from disentangle.nn.mlp import MLPDecoder, MLPEncoder
from disentangle.registry import Registry

NETWORKS: Registry[tuple[Callable, Callable]] = Registry("network")


def _check_conv64(observation_shape) -> int:
    """The channel count C of a [64, 64, C] observation; a ConfigError for any other shape."""
    shape = tuple(observation_shape)
    if len(shape) != 3 or shape[:2] != (64, 64):
        raise ConfigError(
            f"model.network='conv64' takes 64x64xC images; the dataset's observations have "
            f"shape {shape}. Use model.network='mlp' (any shape) or resize the images to "
            "64x64.")
    return shape[-1]


NETWORKS.register("conv64")((
    lambda observation_shape, out_features, rngs: Conv64Encoder(
        _check_conv64(observation_shape), out_features, rngs=rngs),
    lambda latent_dim, observation_shape, rngs: Conv64Decoder(
        latent_dim, _check_conv64(observation_shape), rngs=rngs),
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
