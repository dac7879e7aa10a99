"""The method interface the trainer, representation code and analyses rely on.

- ``encode(x) -> Representation(mean [n, L], logvar [n, L] | None, codes [n, L] | None)``
- ``decode(z) -> logits [n, *observation_shape]``
- ``loss(x, key) -> (scalar, dict[str, scalar])``: the training objective on a batch,
  with every term in the dict (logged to metrics.jsonl).
- ``from_config(model_config, spec, rngs)``: construction from the ``model`` config
  section and the dataset's :class:`DataSpec`.

Methods that alternate optimizers (SCAN stages, DR-RFF, potential flows) keep their
own ``train_step`` and are not driven through ``loss``.
"""

from __future__ import annotations

import dataclasses

import jax
import ml_collections
from flax import nnx, struct

from disentangle.registry import Registry


@struct.dataclass
class Representation:
    """What an encoder says about a batch; ``codes`` are integer codebook indices."""

    mean: jax.Array
    logvar: jax.Array | None = None
    codes: jax.Array | None = None

    def sample(self, key: jax.Array) -> jax.Array:
        """z = mean + exp(logvar / 2) * eps; the mean itself when there is no variance."""
        if self.logvar is None:
            return self.mean
        eps = jax.random.normal(key, self.mean.shape, self.mean.dtype)
        return self.mean + jax.numpy.exp(0.5 * self.logvar) * eps


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a method needs to know of its dataset."""

    observation_shape: tuple[int, ...]
    factor_sizes: tuple[int, ...] = ()
    dataset_size: int = 0

    @classmethod
    def of(cls, dataset) -> DataSpec:
        return cls(tuple(dataset.observation_shape), tuple(dataset.factor_sizes), len(dataset))


class Method(nnx.Module):
    """Base class of single-optimizer representation learners."""

    latent_dim: int

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs):
        raise NotImplementedError

    def encode(self, x: jax.Array) -> Representation:
        raise NotImplementedError

    def decode(self, z: jax.Array) -> jax.Array:
        raise NotImplementedError

    def loss(self, x: jax.Array, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        raise NotImplementedError

    def reconstruct(self, x: jax.Array) -> jax.Array:
        """Logits of the reconstruction from the deterministic representation."""
        return self.decode(self.encode(x).mean)

    def reconstruction_error(self, x: jax.Array) -> jax.Array:
        """Per-example reconstruction loss [n] of ``reconstruct(x)``, as in training.

        Uses the method's ``reconstruction`` kind (default Bernoulli); methods whose
        decoder is not a logit model override this.
        """
        from disentangle.nn import reconstruction_loss

        return reconstruction_loss(getattr(self, "reconstruction", "bernoulli"),
                                   self.reconstruct(x), x)


MODELS: Registry[type[Method]] = Registry("model", "disentangle.models")
register_model = MODELS.register


def build_model(config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs) -> Method:
    """The method named ``config.name``, built from the ``model`` config section."""
    return MODELS.get(config.name).from_config(config, spec, rngs)
