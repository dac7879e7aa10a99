"""Deterministic autoencoder: loss = mean_n reconstruction_loss(decode(encode(x_n)), x_n)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from disentangle.methods.base import DataSpec, Method, Representation, register_model
from disentangle.nn import build_decoder, build_encoder, reconstruction_loss


def network_options(config) -> dict:
    """The keywords every autoencoder of the family takes from the ``model`` section."""
    return {"latent_dim": config.latent_dim, "network": config.network,
            "reconstruction": config.reconstruction}


@register_model("ae")
class AE(Method):
    def __init__(self, spec: DataSpec, latent_dim: int = 10, network: str = "conv64",
                 reconstruction: str = "bernoulli", *, rngs: nnx.Rngs):
        self.latent_dim = latent_dim
        self.reconstruction = reconstruction
        self.encoder = build_encoder(network, spec.observation_shape, self.encoder_outputs(),
                                     rngs)
        self.decoder = build_decoder(network, latent_dim, spec.observation_shape, rngs)

    def encoder_outputs(self) -> int:
        return self.latent_dim

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, **network_options(config), rngs=rngs)

    def encode(self, x: jax.Array) -> Representation:
        return Representation(mean=self.encoder(x))

    def decode(self, z: jax.Array) -> jax.Array:
        return self.decoder(z)

    def loss(self, batch, key):
        x = batch.x
        recon = jnp.mean(reconstruction_loss(self.reconstruction, self.decode(self.encode(x).mean),
                                             x))
        return recon, {"reconstruction": recon}
