"""The default optimizer of a parameter group, built from the ``train`` config section."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import optax
from flax import nnx

from disentangle.errors import ConfigError

# ``train.decay_scope`` -> whether a parameter (by the last name of its path) is decayed.
# 'all_but_biases': every parameter but biases and QLAE codebooks, as the QLAE authors'
# code labels them (their published numbers; norm scales and hsu_style's learned input map
# are decayed); 'kernels': conv and dense kernels only (biases, norm scales, codebooks and
# other parameters are not). The two differ only for networks with such other parameters.
DECAY_SCOPES: dict[str, Callable[[str], bool]] = {
    "all_but_biases": lambda name: name not in ("bias", "codebook"),
    "kernels": lambda name: name == "kernel",
}
DEFAULT_DECAY_SCOPE = "all_but_biases"


def decay_labels(params: nnx.State, scope: str = DEFAULT_DECAY_SCOPE) -> Any:
    """'decay' or 'no_decay' per parameter of ``params``, by ``scope`` (:data:`DECAY_SCOPES`);
    the clip of ``train.clip_scope='decayed'`` uses the same labels."""
    if scope not in DECAY_SCOPES:
        raise ConfigError(f"train.decay_scope={scope!r}; accepted: "
                          f"{', '.join(map(repr, DECAY_SCOPES))}")
    decayed = DECAY_SCOPES[scope]

    def label(path, _):
        names = [getattr(k, "key", getattr(k, "name", None)) for k in path]
        names = [n for n in names if isinstance(n, str) and n != "value"]
        return "decay" if names and decayed(names[-1]) else "no_decay"

    return jax.tree_util.tree_map_with_path(label, params)


def _labels(train: ml_collections.ConfigDict) -> Callable[[Any], Any]:
    return functools.partial(decay_labels,
                             scope=train.get("decay_scope", DEFAULT_DECAY_SCOPE))


def _adamw(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """AdamW with ``train.weight_decay`` on the decayed parameters (``train.decay_scope``),
    plain Adam on the rest."""
    return optax.multi_transform(
        {"decay": optax.adamw(train.learning_rate, weight_decay=train.weight_decay),
         "no_decay": optax.adam(train.learning_rate)},
        _labels(train))


# ``train.optimizer`` -> its transformation (config.validate checks names against this).
OPTIMIZERS: dict[str, Any] = {
    "adam": lambda train: optax.adam(train.learning_rate),
    "adamw": _adamw,
}

# ``train.clip_scope``: which parameters' gradients ``train.clip_value`` clips.
# 'decayed': those :func:`decay_labels` labels 'decay' (``train.decay_scope``), as in the
# QLAE authors' code, whose clip sits in the weight-decayed group only (biases and codebooks
# unclipped); 'all': every parameter.
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
                                 _labels(train))


def make_optimizer(train: ml_collections.ConfigDict) -> optax.GradientTransformation:
    """The optimizer ``train.optimizer`` of :data:`OPTIMIZERS`, after the element-wise clip
    of :func:`gradient_clip` when ``train.clip_value > 0``.

    AdamW decays the parameters of ``train.decay_scope`` only (optax.multi_transform), as
    QLAE requires. The ranges of the
    settings (positive learning rate, weight decay only with AdamW, ...) are checked once,
    by :func:`disentangle.config.validate`, before a run starts.
    """
    if train.optimizer not in OPTIMIZERS:
        raise ConfigError(f"train.optimizer={train.optimizer!r}; accepted: "
                          f"{', '.join(map(repr, OPTIMIZERS))}")
    core = OPTIMIZERS[train.optimizer](train)
    clip = gradient_clip(train)
    return core if clip is None else optax.chain(clip, core)
