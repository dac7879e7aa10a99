"""DIP-VAE-I and DIP-VAE-II (Kumar et al., ICLR 2018): moment matching of a latent
covariance C [L, L] to the identity.

    loss = E[-log p(x|z)] + KL(q(z|x) || N(0, I))
           + lambda_od * sum_{i != j} C_ij^2 + lambda_d * sum_i (C_ii - 1)^2

    DIP-VAE-I:  C = Cov_batch[mu(x)]                           (covariance of the means)
    DIP-VAE-II: C = Cov_batch[mu(x)] + E_batch[diag(sigma^2(x))]   (of the aggregate posterior)

Cov_batch is the batch covariance with 1/n (E[mu mu^T] - E[mu] E[mu]^T), as in
disentanglement_lib. The paper's settings are lambda_d = 10 lambda_od (I) and
lambda_d = lambda_od (II).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from disentangle.methods.base import DataSpec, Representation, register_model
from disentangle.methods.gaussian import batch_kl
from disentangle.methods.vae.ae import network_options
from disentangle.methods.vae.beta_vae import BetaVAE


def batch_covariance(v: jax.Array) -> jax.Array:
    """[n, L] -> [L, L]: E[v v^T] - E[v] E[v]^T over the batch (divides by n)."""
    centred = v - v.mean(0)
    return centred.T @ centred / v.shape[0]


def dip_penalties(cov: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(sum_{i != j} C_ij^2, sum_i (C_ii - 1)^2) of a covariance C [L, L]."""
    diag = jnp.diagonal(cov)
    off_diagonal = jnp.sum(jnp.square(cov - jnp.diag(diag)))
    return off_diagonal, jnp.sum(jnp.square(diag - 1.0))


@register_model("dip_vae_i")
class DIPVAEI(BetaVAE):
    def __init__(self, spec: DataSpec, latent_dim: int = 10, network: str = "conv64",
                 reconstruction: str = "bernoulli", lambda_od: float = 10.0,
                 lambda_d: float = 100.0, *, rngs: nnx.Rngs):
        super().__init__(spec, latent_dim, network, reconstruction, beta=1.0, rngs=rngs)
        self.lambda_od, self.lambda_d = float(lambda_od), float(lambda_d)

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, **network_options(config), lambda_od=config.lambda_od,
                   lambda_d=config.lambda_d, rngs=rngs)

    def covariance(self, rep: Representation) -> jax.Array:
        """C [L, L] of DIP-VAE-I: the batch covariance of the posterior means."""
        return batch_covariance(rep.mean)

    def regularizer(self, z, rep, batch):
        kl = batch_kl(rep.mean, rep.logvar)
        off_diagonal, diagonal = dip_penalties(self.covariance(rep))
        reg = kl + self.lambda_od * off_diagonal + self.lambda_d * diagonal
        return reg, {"kl": kl, "dip_off_diagonal": off_diagonal, "dip_diagonal": diagonal}


@register_model("dip_vae_ii")
class DIPVAEII(DIPVAEI):
    def covariance(self, rep: Representation) -> jax.Array:
        """C of DIP-VAE-II: Cov[mu] + E[diag(exp(logvar))], the aggregate posterior's."""
        return batch_covariance(rep.mean) + jnp.diag(jnp.mean(jnp.exp(rep.logvar), axis=0))
