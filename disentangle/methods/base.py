"""The method interface the trainer, representation code and analyses rely on.

- ``encode(x) -> Representation(mean [n, L], logvar [n, L] | None, codes [n, L] | None)``
- ``decode(z) -> logits [n, *observation_shape]``
- objectives ``name(batch, key) -> (scalar, dict[str, scalar])`` on a :class:`Batch`
  (observations ``x`` and integer ``factors``), every term in the dict (logged to
  metrics.jsonl); single-loss methods define ``loss``.
- ``from_config(model_config, spec, rngs)``: construction from the ``model`` config
  section and the dataset's :class:`DataSpec`.
- ``training_data(dataset)``: what the trainer draws training batches from; default the
  dataset itself. A method whose batches are not single observations returns a source with
  the same ``sample(n, rng)`` / ``device_sampler()`` (Ada-GVAE: pairs of observations,
  :class:`disentangle.data.pairs.PairedData`).

What the one trainer (``disentangle.train``) needs to train any method, single-loss or
with several optimizers and stages alike:

- ``param_groups() -> {group: nnx filter}``: disjoint sets of trainable parameters, each
  with its own optimizer state. Parameters in no group (a frozen parent run's model) are
  not trained. Default: every ``nnx.Param`` in one group ``"model"``.
- ``optimizers(train) -> {group: optax transformation}``. Default: Adam/AdamW from the
  ``train`` section (:func:`disentangle.optim.make_optimizer`) for every group.
- ``schedule(step) -> tuple[Update, ...]``: the updates of training step ``step``
  (1-based), applied in order within one jitted step, each an optimizer step of one group
  on one objective. It is evaluated on the host and must be piecewise constant (stages);
  the trainer compiles one program per distinct tuple. Default: ``(Update("model",
  "loss"),)`` at every step.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import jax
import ml_collections
import optax
from flax import nnx, struct

from disentangle.optim import make_optimizer
from disentangle.registry import Registry

if TYPE_CHECKING:
    from disentangle.data import GroundTruthData


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


@struct.dataclass
class Batch:
    """A training batch: observations ``x [n, *obs]``, their factors ``int [n, K]`` (pairs:
    ``[n, 2, *obs]`` and ``[n, 2, K]``) and the training step (1-based, int32) it is drawn
    for, set by the trainer (None outside training); step-dependent objectives read it."""

    x: jax.Array
    factors: jax.Array | None = None
    step: jax.Array | None = None


@dataclasses.dataclass(frozen=True)
class Update:
    """One optimizer step of parameter group ``group`` on the objective ``objective``
    (the method's ``objective(batch, key) -> (loss, terms)``)."""

    group: str = "model"
    objective: str = "loss"


SINGLE_LOSS = (Update(),)


@dataclasses.dataclass(frozen=True)
class DataSpec:
    """What a method needs to know of its dataset."""

    observation_shape: tuple[int, ...]
    factor_sizes: tuple[int, ...] = ()
    dataset_size: int = 0
    factor_names: tuple[str, ...] = ()

    @classmethod
    def of(cls, dataset) -> DataSpec:
        return cls(tuple(dataset.observation_shape), tuple(dataset.factor_sizes), len(dataset),
                   tuple(dataset.factor_names))


class Method(nnx.Module):
    """Base class of the workbench's methods (see the module docstring)."""

    latent_dim: int

    def param_groups(self) -> dict[str, Any]:
        """Group name -> nnx filter of its trainable parameters (disjoint groups)."""
        return {"model": nnx.Param}

    def optimizers(self, train: ml_collections.ConfigDict
                   ) -> dict[str, optax.GradientTransformation]:
        """Group name -> optimizer; default: ``train.optimizer`` for every group."""
        return {group: make_optimizer(train) for group in self.param_groups()}

    def schedule(self, step: int) -> tuple[Update, ...]:
        """The updates of training step ``step`` (1-based), in order."""
        return SINGLE_LOSS

    def training_data(self, dataset: GroundTruthData) -> Any:
        """The source of training batches (``sample(n, rng)``, ``device_sampler()``)."""
        return dataset

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs):
        raise NotImplementedError

    def encode(self, x: jax.Array) -> Representation:
        raise NotImplementedError

    def decode(self, z: jax.Array) -> jax.Array:
        raise NotImplementedError

    def loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
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


MODELS: Registry[type[Method]] = Registry("model", "disentangle.methods")
register_model = MODELS.register


def build_model(config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs) -> Method:
    """The method named ``config.name``, built from the ``model`` config section."""
    return MODELS.get(config.name).from_config(config, spec, rngs)
