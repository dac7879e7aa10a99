"""AnnealedVAE (Burgess et al., 2018, "Understanding disentangling in beta-VAE"): the KL is
pulled towards a capacity C(t) that grows linearly with training.

    loss = E[-log p(x|z)] + gamma * |KL(q(z|x) || N(0, I)) - C(t)|
    C(t) = min(C_max, C_max * t / iteration_threshold)

t counts the updates done before this one (t = step - 1 for the trainer's 1-based
``Batch.step``), as disentanglement_lib's global step, so C = 0 at the first step.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from disentangle.errors import ConfigError, UserError
from disentangle.methods.base import DataSpec, register_model
from disentangle.methods.gaussian import batch_kl
from disentangle.methods.vae.ae import network_options
from disentangle.methods.vae.beta_vae import BetaVAE


def capacity(step: jax.Array, c_max: float, iteration_threshold: int) -> jax.Array:
    """C at training step ``step`` (1-based): min(c_max, c_max * (step - 1) / threshold)."""
    t = jnp.asarray(step, jnp.float32) - 1.0
    return jnp.minimum(c_max, c_max * t / iteration_threshold)


@register_model("annealed_vae")
class AnnealedVAE(BetaVAE):
    def __init__(self, spec: DataSpec, latent_dim: int = 10, network: str = "conv64",
                 reconstruction: str = "bernoulli", gamma: float = 1000.0, c_max: float = 25.0,
                 iteration_threshold: int = 100_000, *, rngs: nnx.Rngs):
        super().__init__(spec, latent_dim, network, reconstruction, beta=1.0, rngs=rngs)
        if not (isinstance(iteration_threshold, int) and iteration_threshold >= 1):
            raise ConfigError(f"model.iteration_threshold={iteration_threshold!r}; accepted: an "
                            "integer >= 1 (the steps over which C grows to model.c_max)")
        self.gamma, self.c_max = float(gamma), float(c_max)
        self.iteration_threshold = iteration_threshold

    @classmethod
    def from_config(cls, config, spec, rngs):
        return cls(spec, **network_options(config), gamma=config.gamma, c_max=config.c_max,
                   iteration_threshold=config.iteration_threshold, rngs=rngs)

    def regularizer(self, z, rep, batch):
        if batch.step is None:
            raise UserError("annealed_vae's loss depends on the training step: pass "
                            "Batch(x, step=STEP) (the trainer sets it)")
        kl = batch_kl(rep.mean, rep.logvar)
        c = capacity(batch.step, self.c_max, self.iteration_threshold)
        return self.gamma * jnp.abs(kl - c), {"kl": kl, "capacity": c}
