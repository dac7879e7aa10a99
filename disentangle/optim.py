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


def make_optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """Adam or AdamW with weight decay on weights only, optional element-wise clipping.

    ``train.optimizer``: 'adam' | 'adamw'; ``train.weight_decay`` applies to kernels only
    (optax.multi_transform), as QLAE requires; ``train.clip_value > 0`` clips each
    gradient element to [-clip, clip] first.
    """
    lr = train.learning_rate
    if train.optimizer == "adam":
        if train.get("weight_decay", 0.0):
            raise ConfigError("train.weight_decay needs train.optimizer='adamw'")
        core = optax.adam(lr)
    elif train.optimizer == "adamw":
        core = optax.multi_transform(
            {"decay": optax.adamw(lr, weight_decay=train.weight_decay),
             "no_decay": optax.adam(lr)},
            decay_labels)
    else:
        raise ConfigError(f"train.optimizer={train.optimizer!r}; accepted: 'adam', 'adamw'")
    clip = train.get("clip_value", 0.0)
    return optax.chain(optax.clip(clip), core) if clip else core
