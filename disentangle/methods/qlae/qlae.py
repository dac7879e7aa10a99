"""QLAE: quantized-latent autoencoder (Hsu et al., NeurIPS 2023).

Each latent dimension j has its own scalar codebook v_j of V values (initialised
``linspace(-0.5, 0.5, V)``). The encoder output z is quantized per dimension to the
nearest value, q_j = v_j[argmin_k |z_j - v_jk|], and the decoder sees the
straight-through value z_hat = z + sg(q - z). Loss:

    BCE_mean(x_logits, x) + w_q * mean((sg(z) - q)^2) + w_c * mean((z - sg(q))^2)

with w_q = w_c = 0.01 (the authors: 0.001 on dSprites). The strong weight decay that the
method relies on lives in the optimizer (``train.optimizer='adamw'``, no decay on biases
and codebooks; see disentangle.optim).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from disentangle.methods.base import DataSpec, Method, Representation, register_model
from disentangle.nn import build_decoder, build_encoder, reconstruction_loss


class Codebook(nnx.Param):
    """Codebook values; excluded from weight decay like biases."""


@register_model("qlae")
class QLAE(Method):
    def __init__(self, spec: DataSpec, latent_dim: int = 10, values_per_latent: int = 10,
                 network: str = "conv64", reconstruction: str = "bernoulli",
                 quantization_weight: float = 0.01, commitment_weight: float = 0.01,
                 *, rngs: nnx.Rngs):
        self.latent_dim = latent_dim
        self.reconstruction = reconstruction
        self.quantization_weight = quantization_weight
        self.commitment_weight = commitment_weight
        self.num_pixels = math.prod(spec.observation_shape)
        self.encoder = build_encoder(network, spec.observation_shape, latent_dim, rngs)
        self.decoder = build_decoder(network, latent_dim, spec.observation_shape, rngs)
        self.codebook = Codebook(jnp.tile(jnp.linspace(-0.5, 0.5, values_per_latent),
                                          (latent_dim, 1)))

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, latent_dim=config.latent_dim, values_per_latent=config.values_per_latent,
                   network=config.network, reconstruction=config.reconstruction,
                   quantization_weight=config.quantization_weight,
                   commitment_weight=config.commitment_weight, rngs=rngs)

    def quantize(self, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Nearest codebook value per dimension: (values [n, L], indices [n, L])."""
        book = self.codebook[...]  # [L, V]
        idx = jnp.argmin(jnp.abs(z[:, :, None] - book[None]), axis=-1)
        q = jnp.take_along_axis(book[None], idx[:, :, None], axis=-1)[..., 0]
        return q, idx

    def encode(self, x):
        q, idx = self.quantize(self.encoder(x))
        return Representation(mean=q, codes=idx)

    def decode(self, z):
        return self.decoder(z)

    def loss(self, batch, key):
        x = batch.x
        z = self.encoder(x)
        q, _ = self.quantize(z)
        z_hat = z + jax.lax.stop_gradient(q - z)
        recon = jnp.mean(reconstruction_loss(self.reconstruction, self.decode(z_hat), x))
        recon_mean = recon / self.num_pixels  # BCE averaged over pixels, as in the paper
        quant = jnp.mean(jnp.square(jax.lax.stop_gradient(z) - q))
        commit = jnp.mean(jnp.square(z - jax.lax.stop_gradient(q)))
        loss = recon_mean + self.quantization_weight * quant + self.commitment_weight * commit
        return loss, {"reconstruction": recon, "quantization": quant, "commitment": commit}
