"""FactorVAE (Kim & Mnih, ICML 2018): the VAE loss plus a total-correlation penalty whose
density ratio is estimated by a discriminator.

With z ~ q(z|x) for a batch and z_perm the batch with every latent dimension permuted
independently across the batch (a sample of prod_j q(z_j)), a discriminator D with two
logits (column 0: "from q(z)", column 1: "from prod_j q(z_j)") estimates

    TC(z) = KL(q(z) || prod_j q(z_j)) ~= mean_n [D(z_n)_0 - D(z_n)_1]

so the two objectives, each an optimizer step of its own parameter group per training
step (the VAE first, then D on the same batch; neither moves the other's parameters):

    loss               = E[-log p(x|z)] + KL(q(z|x) || N(0, I)) + gamma * TC     (encoder, decoder)
    discriminator_loss = -1/2 mean_n log softmax(D(z_n))_0
                         -1/2 mean_n log softmax(D(z_perm_n))_1                  (D)

D is an MLP of ``discriminator_depth`` layers of ``discriminator_width`` units with
LeakyReLU(0.2) (6 x 1000 in the paper and disentanglement_lib), trained with its own Adam
(lr 1e-4, beta1 0.5, beta2 0.9 there). The discriminator step draws its own z (a fresh key)
from the encoder as updated by this step's VAE update.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from disentangle.errors import ConfigError
from disentangle.methods.base import Batch, DataSpec, Update, register_model
from disentangle.methods.gaussian import batch_kl
from disentangle.methods.vae.ae import network_options
from disentangle.methods.vae.beta_vae import BetaVAE
from disentangle.optim import make_optimizer

DISCRIMINATOR = "discriminator"  # the attribute (and parameter group) of D


def permute_dims(z: jax.Array, key: jax.Array) -> jax.Array:
    """[n, L] -> [n, L]: column j permuted by its own random permutation of the n rows, so
    each column keeps its values (its marginal) and the columns become independent."""
    perms = jax.vmap(lambda k: jax.random.permutation(k, z.shape[0]))(
        jax.random.split(key, z.shape[1]))  # [L, n]
    return jnp.take_along_axis(z, perms.T, axis=0)


def discriminator_tc(logits: jax.Array) -> jax.Array:
    """TC estimate mean_n [logit_0 - logit_1] from D's logits [n, 2] on samples of q(z)."""
    return jnp.mean(logits[:, 0] - logits[:, 1])


def discriminator_cross_entropy(logits_real: jax.Array, logits_perm: jax.Array) -> jax.Array:
    """Cross-entropy of D [n, 2] logits: class 0 on q(z) samples, class 1 on permuted ones,
    each half weighted."""
    return -0.5 * (jnp.mean(jax.nn.log_softmax(logits_real)[:, 0])
                   + jnp.mean(jax.nn.log_softmax(logits_perm)[:, 1]))


class Discriminator(nnx.Module):
    """[n, L] -> logits [n, 2]: ``depth`` Linear + LeakyReLU(0.2) layers of ``width`` units."""

    def __init__(self, latent_dim: int, width: int = 1000, depth: int = 6, *, rngs: nnx.Rngs):
        sizes = [latent_dim] + [width] * depth
        self.hidden = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])
        self.out = nnx.Linear(sizes[-1], 2, rngs=rngs)

    def __call__(self, z: jax.Array) -> jax.Array:
        for layer in self.hidden:
            z = jax.nn.leaky_relu(layer(z), 0.2)
        return self.out(z)


@register_model("factor_vae")
class FactorVAE(BetaVAE):
    SCHEDULE = (Update("model", "loss"), Update(DISCRIMINATOR, "discriminator_loss"))

    def __init__(self, spec: DataSpec, latent_dim: int = 10, network: str = "conv64",
                 reconstruction: str = "bernoulli", gamma: float = 10.0,
                 discriminator_width: int = 1000, discriminator_depth: int = 6,
                 discriminator_learning_rate: float = 1e-4, discriminator_beta1: float = 0.5,
                 discriminator_beta2: float = 0.9, *, rngs: nnx.Rngs):
        super().__init__(spec, latent_dim, network, reconstruction, beta=1.0, rngs=rngs)
        if not (discriminator_width >= 1 and discriminator_depth >= 0):
            raise ConfigError(f"model.discriminator_width={discriminator_width!r}, "
                              f"model.discriminator_depth={discriminator_depth!r}; accepted: "
                              "a width >= 1 and a depth >= 0 (hidden layers; 1000 and 6 in "
                              "the paper)")
        self.gamma = float(gamma)
        self.discriminator = Discriminator(latent_dim, discriminator_width, discriminator_depth,
                                           rngs=rngs)
        self.discriminator_adam = (float(discriminator_learning_rate),
                                   float(discriminator_beta1), float(discriminator_beta2))

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, **network_options(config), gamma=config.gamma,
                   discriminator_width=config.discriminator_width,
                   discriminator_depth=config.discriminator_depth,
                   discriminator_learning_rate=config.discriminator_learning_rate,
                   discriminator_beta1=config.discriminator_beta1,
                   discriminator_beta2=config.discriminator_beta2, rngs=rngs)

    def param_groups(self) -> dict:
        in_d = nnx.PathContains(DISCRIMINATOR)
        return {"model": nnx.All(nnx.Param, nnx.Not(in_d)),
                DISCRIMINATOR: nnx.All(nnx.Param, in_d)}

    def optimizers(self, train) -> dict[str, optax.GradientTransformation]:
        lr, b1, b2 = self.discriminator_adam
        return {"model": make_optimizer(train), DISCRIMINATOR: optax.adam(lr, b1=b1, b2=b2)}

    def schedule(self, step: int) -> tuple[Update, ...]:
        return self.SCHEDULE

    def regularizer(self, z, rep, batch):
        """KL + gamma * TC, TC from D's logits on the decoder's sample z (D held fixed)."""
        kl = batch_kl(rep.mean, rep.logvar)
        tc = discriminator_tc(self.discriminator(z))
        return kl + self.gamma * tc, {"kl": kl, "tc": tc}

    def discriminator_loss(self, batch: Batch, key: jax.Array
                           ) -> tuple[jax.Array, dict[str, jax.Array]]:
        """D's cross-entropy on z ~ q(z|x) against its dimension-wise permutation."""
        sample_key, perm_key = jax.random.split(key)
        z = jax.lax.stop_gradient(self.encode(batch.x).sample(sample_key))
        real, perm = self.discriminator(z), self.discriminator(permute_dims(z, perm_key))
        accuracy = 0.5 * (jnp.mean(real[:, 0] > real[:, 1]) + jnp.mean(perm[:, 1] > perm[:, 0]))
        return discriminator_cross_entropy(real, perm), {"discriminator_accuracy": accuracy}
