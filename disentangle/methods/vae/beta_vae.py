"""beta-VAE (Higgins et al., ICLR 2017).

    loss = E_n[ -log p(x_n | z_n) + beta * KL(q(z | x_n) || N(0, I)) ],  z_n ~ q(z | x_n)

with the reconstruction summed over pixels and the KL over latents (disentanglement_lib's
convention; the QLAE paper's ``BCE_mean + (L / pixels) beta KL_mean`` is the same
objective divided by the number of pixels). beta = 1 is the plain VAE.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from disentangle.methods.base import Batch, DataSpec, Representation, register_model
from disentangle.methods.gaussian import batch_kl
from disentangle.methods.vae.ae import AE, network_options
from disentangle.nn import reconstruction_loss


@register_model("beta_vae")
class BetaVAE(AE):
    def __init__(self, spec: DataSpec, latent_dim: int = 10, network: str = "conv64",
                 reconstruction: str = "bernoulli", beta: float = 1.0, *, rngs: nnx.Rngs):
        super().__init__(spec, latent_dim, network, reconstruction, rngs=rngs)
        self.beta = float(beta)
        self.dataset_size = spec.dataset_size

    def encoder_outputs(self) -> int:
        return 2 * self.latent_dim

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, **network_options(config), beta=config.beta, rngs=rngs)

    def encode(self, x: jax.Array) -> Representation:
        mean, logvar = jnp.split(self.encoder(x), 2, axis=-1)
        return Representation(mean=mean, logvar=logvar)

    def regularizer(self, z: jax.Array, rep: Representation, batch: Batch
                    ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """beta * KL, averaged over the batch; subclasses change this hook only (z [n, L] is
        the sample the decoder saw, ``batch`` the training batch with its step)."""
        kl = batch_kl(rep.mean, rep.logvar)
        return self.beta * kl, {"kl": kl}

    def loss(self, batch, key):
        x = batch.x
        rep = self.encode(x)
        z = rep.sample(key)
        recon = jnp.mean(reconstruction_loss(self.reconstruction, self.decode(z), x))
        reg, terms = self.regularizer(z, rep, batch)
        loss = recon + reg
        kl = terms.get("kl", batch_kl(rep.mean, rep.logvar))
        return loss, {"reconstruction": recon, **terms, "kl": kl, "elbo": -(recon + kl)}
