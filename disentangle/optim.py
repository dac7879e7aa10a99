"""The default optimizer of a parameter group, built from the ``train`` config section."""

from __future__ import annotations

from typing import Any

import jax
import ml_collections
import optax
from flax import nnx

from disentangle.errors import ConfigError


def decay_labels(params: nnx.State) -> Any:
    """'decay' for kernels (weights), 'no_decay' for biases, norm scales and codebooks."""

    def label(path, _):
        names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        names = [n for n in names if isinstance(n, str) and n != "value"]
        return "decay" if names and names[-1] == "kernel" else "no_decay"

    return jax.tree_util.tree_map_with_path(label, params)


def _adamw(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """AdamW with ``train.weight_decay`` on kernels only, plain Adam on the rest."""
    return optax.multi_transform(
        {"decay": optax.adamw(train.learning_rate, weight_decay=train.weight_decay),
         "no_decay": optax.adam(train.learning_rate)},
        decay_labels)


# ``train.optimizer`` -> its transformation (config.validate checks names against this).
OPTIMIZERS: dict[str, Any] = {
    "adam": lambda train: optax.adam(train.learning_rate),
    "adamw": _adamw,
}

# ``train.clip_scope``: which parameters' gradients ``train.clip_value`` clips.
# 'decayed': those :func:`decay_labels` labels 'decay' (kernels), as in the QLAE authors'
# code, whose clip sits in the weight-decayed group only (biases and codebooks unclipped);
# 'all': every parameter.
CLIP_SCOPES = ("decayed", "all")
DEFAULT_CLIP_SCOPE = "decayed"


def gradient_clip(train: ml_collections.ConfigDict) -> optax.GradientTransformation | None:
    """Element-wise clip of the gradient to [-c, c], c = ``train.clip_value``, on the
    parameters of ``train.clip_scope`` (:data:`CLIP_SCOPES`); None when c = 0."""
    clip = train.get("clip_value", 0.0)
    if not clip:
        return None
    scope = train.get("clip_scope", DEFAULT_CLIP_SCOPE)
    if scope not in CLIP_SCOPES:
        raise ConfigError(f"train.clip_scope={scope!r}; accepted: "
                          f"{', '.join(map(repr, CLIP_SCOPES))}")
    if scope == "all":
        return optax.clip(clip)
    return optax.multi_transform({"decay": optax.clip(clip), "no_decay": optax.identity()},
                                 decay_labels)


def make_optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """The optimizer ``train.optimizer`` of :data:`OPTIMIZERS`, after the element-wise clip
    of :func:`gradient_clip` when ``train.clip_value > 0``.

    AdamW decays kernels only (optax.multi_transform), as QLAE requires. The ranges of the
    settings (positive learning rate, weight decay only with AdamW, ...) are checked once,
    by :func:`disentangle.config.validate`, before a run starts.
    """
    if train.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer={train.optimizer!r}; accepted: "
                          f"{', '.join(map(repr, OPTIMIZERS))}")
    core = OPTIMIZERS[train.optimizer](train)
    clip = gradient_clip(train)
    return core if clip is None else optax.chain(clip, core)
