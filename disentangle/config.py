"""Config files and command-line overrides.

A config file ``configs/NAME.py`` defines ``get_config() -> ml_collections.ConfigDict``
with the sections ``data``, ``model`` and ``train``; a sweep file also defines
``get_sweep() -> list[dict]`` of dotted overrides. Overrides ``key=value`` are parsed
against the type of the existing value: an unknown key fails with the closest valid
keys, a value of the wrong type names the key and the expected type.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import json
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import ml_collections

from disentangle.errors import ConfigError


def load_module(path: str | Path):
    """Import a Python file by path (configs and sweeps are plain Python files)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist")
    name = f"_disentangle_config_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """``get_config()`` of the file at ``path`` with ``key=value`` overrides applied."""
    module = load_module(path)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {str(path)!r} defines no get_config()")
    config = module.get_config()
    apply_overrides(config, overrides, source=str(path))
    return config


def flatten(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value."""
    out = {}
    for key, value in config.items():
        dotted = f"{prefix}{key}"
        if isinstance(value, Mapping | ml_collections.ConfigDict):
            out.update(flatten(value, dotted + "."))
        else:
            out[dotted] = value
    return out


FREE_SECTION = "options"  # sections named so (e.g. ``data.options``) take any key


def parse_value(key: str, text: str, current: Any) -> Any:
    """Parse ``text`` as the type of ``current`` (the config's default for ``key``)."""
    if current is None:
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text
    expected = type(current)
    if expected is bool:
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise ConfigError(f"{key}={text!r}: expected a bool (true/false)")
    if expected is str:
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise ConfigError(
            f"{key}={text!r}: expected {expected.__name__} (like the default {current!r})"
        ) from None
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if expected in (tuple, list) and isinstance(value, tuple | list):
        return expected(value)
    if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
        raise ConfigError(
            f"{key}={text!r}: expected {expected.__name__} (like the default {current!r}), "
            f"got {type(value).__name__}"
        )
    return value


def set_dotted(config: ml_collections.ConfigDict, key: str, value: Any, source: str = "") -> None:
    """Set ``a.b.c = value``; unknown keys raise ConfigError with close matches."""
    valid = flatten(config)
    parent_key, _, leaf = key.rpartition(".")
    parts = parent_key.split(".") if parent_key else []
    free = FREE_SECTION in parts
    node = config
    for part in parts:
        if part not in node:
            node = None
            break
        node = node[part]
    if node is None or (not free and key not in valid):
        close = difflib.get_close_matches(key, list(valid), n=3, cutoff=0.5)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        where = f" in {source}" if source else ""
        raise ConfigError(f"unknown config key {key!r}{where}.{hint}")
    if free and key not in valid:
        node[leaf] = parse_value(key, value, None) if isinstance(value, str) else value
        return
    current = valid[key]
    if isinstance(value, str) and not isinstance(current, str):
        value = parse_value(key, value, current)
    elif current is not None and not isinstance(value, type(current)):
        value = parse_value(key, repr(value), current)
    with node.unlocked() if hasattr(node, "unlocked") else _null():
        node[leaf] = value


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def parse_override(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key=value")
    key, value = text.split("=", 1)
    return key.strip(), value.strip()


def apply_overrides(config, overrides: Iterable[str | tuple[str, Any]] = (), source: str = ""):
    """Apply ``key=value`` strings (or ``(key, value)`` pairs) in order; returns config."""
    for item in overrides:
        key, value = parse_override(item) if isinstance(item, str) else item
        set_dotted(config, key, value, source)
    return config


def to_json(config: ml_collections.ConfigDict) -> str:
    return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=_json_default)


def _json_default(value):
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def from_json(text: str) -> ml_collections.ConfigDict:
    return ml_collections.ConfigDict(json.loads(text))


def base_config(model: str, dataset: str = "dsprites") -> ml_collections.ConfigDict:
    """The sections every run has; config files add their method's keys."""
    config = ml_collections.ConfigDict()
    config.data = ml_collections.ConfigDict({"name": dataset, "options": {}})
    config.model = ml_collections.ConfigDict({
        "name": model, "latent_dim": 10, "network": "conv64", "reconstruction": "bernoulli"})
    config.train = ml_collections.ConfigDict({
        "steps": 30_000, "batch_size": 64, "seed": 0, "learning_rate": 1e-4,
        "optimizer": "adam", "weight_decay": 0.0, "clip_value": 0.0,
        "log_every": 100, "checkpoint_every": 1000, "keep_checkpoints": 3,
        # Vectorised sweeps (docs/performance.md): num_seeds x len(vmap_values) members
        # trained as one vmapped program, e.g. train.vmap_key=model.beta
        # train.vmap_values=[1,4,8] train.num_seeds=2.
        "num_seeds": 1, "vmap_key": "", "vmap_values": (),
        # Where the logged rows go besides metrics.jsonl: tensorboard, wandb
        # (disentangle.tracking).
        "log_to": ("jsonl",)})
    # eval.metrics: registered metric names; empty means the default suite. eval.every > 0
    # scores the run every that many steps during training (disentangle.tracking).
    config.eval = ml_collections.ConfigDict({
        "num_samples": 10_000, "seed": 0, "metrics": (),
        "every": 0, "every_samples": 2000, "every_metrics": ("infomec", "mig")})
    return config
