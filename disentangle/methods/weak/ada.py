"""Ada-GVAE and Ada-ML-VAE (Locatello et al., "Weakly-Supervised Disentanglement Without
Compromises", ICML 2020).

A training item is a pair (x_1, x_2) whose factors differ in k of them
(:mod:`disentangle.data.pairs`; ``model.k``, -1 = random). With the posteriors
q_i = N(mu_i, diag(var_i)) = q(z | x_i), per pair:

    delta_j = KL(q_1(z_j) || q_2(z_j))               per latent dimension j
    tau     = (max_j delta_j + min_j delta_j) / 2
    shared_j = delta_j < tau                         (the adaptive estimate of the k changes)

For shared dimensions both posteriors are replaced by one aggregate (the others keep their
own):

    Ada-GVAE   (group VAE): mu = (mu_1 + mu_2) / 2,  var = (var_1 + var_2) / 2
    Ada-ML-VAE (ML-VAE):    var = 2 var_1 var_2 / (var_1 + var_2),
                            mu  = var (mu_1 / var_1 + mu_2 / var_2) / 2

(the ML-VAE aggregate is the product of the two Gaussians each at half its precision,
i.e. sqrt(q_1 q_2) normalised, as disentanglement_lib computes it). With z_i sampled from
the replaced posterior q~_i:

    loss = 1/2 sum_{i=1,2} E[-log p(x_i | z_i)] + beta * 1/2 sum_{i=1,2} KL(q~_i || N(0, I))

The paper writes the sum over the pair; disentanglement_lib (and this code) take the mean,
which keeps the loss on the per-image scale of the other VAEs (Adam is insensitive to the
factor 2). Evaluation encodes single images with the unreplaced posterior.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from disentangle.data.pairs import PairedData
from disentangle.errors import UserError
from disentangle.methods.base import Batch, DataSpec, register_model
from disentangle.methods.gaussian import batch_kl, kl_normal
from disentangle.methods.vae.ae import network_options
from disentangle.methods.vae.beta_vae import BetaVAE
from disentangle.nn import reconstruction_loss

Gaussian = tuple[jax.Array, jax.Array]  # (mean, logvar), each [n, L]


def shared_dimensions(q1: Gaussian, q2: Gaussian) -> jax.Array:
    """bool [n, L]: delta_j < (max delta + min delta) / 2 per pair, delta_j = KL(q1_j || q2_j)."""
    delta = kl_normal(*q1, *q2)
    tau = 0.5 * (delta.max(-1, keepdims=True) + delta.min(-1, keepdims=True))
    return delta < tau


def gvae_average(q1: Gaussian, q2: Gaussian) -> Gaussian:
    """Group-VAE aggregate: the mean of the means and the mean of the variances."""
    var = 0.5 * (jnp.exp(q1[1]) + jnp.exp(q2[1]))
    return 0.5 * (q1[0] + q2[0]), jnp.log(var)


def mlvae_average(q1: Gaussian, q2: Gaussian) -> Gaussian:
    """ML-VAE aggregate: var = 2 v1 v2 / (v1 + v2), mu = var (mu1 / v1 + mu2 / v2) / 2."""
    v1, v2 = jnp.exp(q1[1]), jnp.exp(q2[1])
    var = 2.0 * v1 * v2 / (v1 + v2)
    return 0.5 * var * (q1[0] / v1 + q2[0] / v2), jnp.log(var)


@register_model("ada_gvae")
class AdaGVAE(BetaVAE):
    """Trains on pairs (``training_data``); ``aggregate`` is the variant's average."""

    aggregate = staticmethod(gvae_average)

    def __init__(self, spec: DataSpec, latent_dim: int = 10, network: str = "conv64",
                 reconstruction: str = "bernoulli", beta: float = 1.0, k: int = -1,
                 *, rngs: nnx.Rngs):
        super().__init__(spec, latent_dim, network, reconstruction, beta, rngs=rngs)
        # Not named ``k``: a value the trainer could vmap would not reach the pair sampler.
        self.changed_factors = k

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, **network_options(config), beta=config.beta, k=config.k, rngs=rngs)

    def training_data(self, dataset) -> PairedData:
        return PairedData(dataset, self.changed_factors)

    def pair_posteriors(self, q1: Gaussian, q2: Gaussian) -> tuple[Gaussian, Gaussian, jax.Array]:
        """The replaced posteriors q~_1, q~_2 and the shared-dimension mask [n, L]."""
        shared = shared_dimensions(q1, q2)
        avg = self.aggregate(q1, q2)

        def replace(q: Gaussian) -> Gaussian:
            return tuple(jnp.where(shared, a, b) for a, b in zip(avg, q))

        return replace(q1), replace(q2), shared

    def loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        x = batch.x
        if x.ndim < 2 or x.shape[1] != 2:
            raise UserError(f"{type(self).__name__} trains on pairs: batch.x of shape "
                            f"[n, 2, *obs] expected, got {tuple(x.shape)}")
        n = x.shape[0]
        rep = self.encode(x.reshape(2 * n, *x.shape[2:]))  # rows 2i, 2i+1 = pair i
        mean, logvar = (a.reshape(n, 2, -1) for a in (rep.mean, rep.logvar))
        q1, q2, shared = self.pair_posteriors((mean[:, 0], logvar[:, 0]),
                                              (mean[:, 1], logvar[:, 1]))
        mean = jnp.stack([q1[0], q2[0]], 1).reshape(2 * n, -1)
        logvar = jnp.stack([q1[1], q2[1]], 1).reshape(2 * n, -1)
        z = mean + jnp.exp(0.5 * logvar) * jax.random.normal(key, mean.shape, mean.dtype)
        recon = jnp.mean(reconstruction_loss(self.reconstruction, self.decode(z),
                                             x.reshape(2 * n, *x.shape[2:])))
        kl = batch_kl(mean, logvar)
        return recon + self.beta * kl, {
            "reconstruction": recon, "kl": kl, "elbo": -(recon + kl),
            "shared_dims": jnp.mean(jnp.sum(shared, -1).astype(jnp.float32))}


@register_model("ada_ml_vae")
class AdaMLVAE(AdaGVAE):
    aggregate = staticmethod(mlvae_average)
