"""Config files and command-line overrides.

A config file ``configs/NAME.py`` defines ``get_config() -> ml_collections.ConfigDict``
with the sections ``data``, ``model`` and ``train``; a sweep file also defines
``get_sweep() -> list[dict]`` of dotted overrides. Overrides ``key=value`` are parsed
against the type of the existing value: an unknown key fails with the closest valid
keys, a value of the wrong type names the key and the expected type. A file that does
not parse or whose ``get_config`` raises fails with its path and line. :func:`validate`
checks ranges and registry names before any run directory is written.
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import importlib.util
import inspect
import json
import math
import sys
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import ml_collections

from disentangle.errors import ConfigError, UserError
from disentangle.optim import (
    CLIP_SCOPES,
    DECAY_SCOPES,
    DEFAULT_CLIP_SCOPE,
    DEFAULT_DECAY_SCOPE,
    OPTIMIZERS,
)


@contextlib.contextmanager
def errors_in_file(path: str | Path, action: str) -> Iterator[None]:
    """Re-raise an exception from running a user's Python file (a config or sweep) as a
    one-line :class:`ConfigError` naming the file and the line; the original is chained."""
    path = Path(path)
    try:
        yield
    except SyntaxError as err:  # also IndentationError; may come from a module it imports
        where = f"{err.filename or path}, line {err.lineno}"
        raise ConfigError(f"{where}: syntax error ({err.msg}) while {action}") from err
    except Exception as err:
        lines = [f.lineno for f in traceback.extract_tb(err.__traceback__)
                 if Path(f.filename).resolve() == path.resolve()]
        where = f"{path}, line {lines[-1]}" if lines else str(path)
        what = str(err) if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
        raise ConfigError(f"{where}: {what} (while {action})") from err


def load_module(path: str | Path):
    """Import a Python file by path (configs and sweeps are plain Python files)."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "does not exist"
        raise ConfigError(f"config file {str(path)!r} {what}; expected a Python file")
    name = f"_disentangle_config_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None:
        raise ConfigError(f"config file {str(path)!r} is not a Python file; expected a .py "
                          "file that defines get_config() (e.g. configs/ae_dsprites.py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    with errors_in_file(path, "loading it"):
        spec.loader.exec_module(module)
    return module


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> ml_collections.ConfigDict:
    """``get_config()`` of the file at ``path`` with ``key=value`` overrides applied."""
    module = load_module(path)
    if not hasattr(module, "get_config"):
        raise ConfigError(f"config file {str(path)!r} defines no get_config()")
    with errors_in_file(path, "running get_config()"):
        config = module.get_config()
    if not isinstance(config, ml_collections.ConfigDict):
        raise ConfigError(f"{path}: get_config() returned {type(config).__name__}; expected an "
                          "ml_collections.ConfigDict (start from disentangle.config.base_config)")
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
        if expected is float:  # 'inf', 'nan': parsed, then refused by validate's range
            with contextlib.suppress(ValueError):
                return float(text)
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


def override_origins(overrides: Iterable[str | tuple[str, Any]], where: str) -> dict[str, str]:
    """Dotted key -> ``where`` for each override, for :func:`validate`'s messages."""
    return {(parse_override(o) if isinstance(o, str) else o)[0]: where for o in overrides}


# ----------------------------------------------------------------------------- validation
MAX_SEED = 2**31 - 1  # seeds are int32 on device; jax.random.key(2**40) wraps to key(0)

Check = tuple[Callable[[Any], bool], str]  # (value is accepted, what is accepted)


def _integer(low: int, high: int | None = None) -> Check:
    def ok(v):
        return (isinstance(v, int) and not isinstance(v, bool) and v >= low
                and (high is None or v <= high))

    return ok, f"an integer >= {low}" + (f" and <= {high}" if high is not None else "")


def _number(low: float, *, strict: bool) -> Check:
    def ok(v):
        return (isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
                and (v > low if strict else v >= low))

    return ok, f"a finite number {'>' if strict else '>='} {low:g}"


# Range of every generic key a run reads; keys a config does not have are not checked.
RANGES: dict[str, Check] = {
    "model.latent_dim": _integer(1),
    "train.steps": _integer(1),
    "train.batch_size": _integer(1),
    "train.seed": _integer(0, MAX_SEED),
    "train.learning_rate": _number(0, strict=True),
    "train.optimizer": ((lambda v: v in OPTIMIZERS), ", ".join(map(repr, OPTIMIZERS))),
    "train.weight_decay": _number(0, strict=False),
    "train.clip_value": _number(0, strict=False),
    "train.clip_scope": ((lambda v: v in CLIP_SCOPES), ", ".join(map(repr, CLIP_SCOPES))),
    "train.decay_scope": ((lambda v: v in DECAY_SCOPES), ", ".join(map(repr, DECAY_SCOPES))),
    "train.log_every": _integer(1),
    "train.checkpoint_every": _integer(1),
    "train.keep_checkpoints": _integer(1),
    "train.num_seeds": _integer(1),
    "eval.num_samples": _integer(1),
    "eval.seed": _integer(0, MAX_SEED),
}
REQUIRED = ("data.name", "model.name", "train.steps", "train.batch_size", "train.seed",
            "train.learning_rate", "train.log_every", "train.checkpoint_every")


def _registries() -> dict[str, Any]:
    """Config key -> the registry its value (or each of its values) is looked up in
    (``eval.metrics``: :func:`disentangle.evaluation.split_metric_names`)."""
    from disentangle.data import DATASETS
    from disentangle.methods import MODELS
    from disentangle.nn import NETWORKS, RECONSTRUCTION

    return {"data.name": DATASETS, "model.name": MODELS, "model.network": NETWORKS,
            "model.reconstruction": RECONSTRUCTION}


def validate(config: ml_collections.ConfigDict, source: str = "the config",
             origins: Mapping[str, str] | None = None) -> ml_collections.ConfigDict:
    """Refuse a config a run cannot train, before anything is written; returns it.

    Checks the keys every run has (:data:`RANGES`: positive sizes, step counts and
    learning rate, finite non-negative weight decay and clip, seeds in [0, 2^31 - 1]...),
    that every float is finite, registry names (dataset, model, network, reconstruction,
    metrics), that ``data.options`` are keywords the dataset takes, and that weight decay
    comes with AdamW. Raises one :class:`ConfigError` listing every problem, each with
    where the value came from: ``origins[key]`` (e.g. 'the command line') or ``source``.
    """
    origins = origins or {}
    flat = flatten(config)

    def origin(key: str) -> str:
        return f"from {origins.get(key, source)}"

    problems = [f"{key} is missing in {source}; every config has it (see base_config)"
                for key in REQUIRED if key not in flat]
    for key, value in flat.items():
        if isinstance(value, float) and not math.isfinite(value) and key not in RANGES:
            problems.append(f"{key}={value!r}; accepted: a finite number ({origin(key)})")
    for key, (ok, accepted) in RANGES.items():
        if key in flat and not ok(flat[key]):
            problems.append(f"{key}={flat[key]!r}; accepted: {accepted} ({origin(key)})")
    if flat.get("train.weight_decay") and flat.get("train.optimizer") == "adam":
        problems.append(f"train.weight_decay={flat['train.weight_decay']!r} "
                        f"({origin('train.weight_decay')}) needs train.optimizer='adamw'; "
                        f"train.optimizer='adam' ({origin('train.optimizer')})")
    for key, registry in _registries().items():
        value = flat.get(key)
        for name in value if isinstance(value, tuple | list) else [value] * (key in flat):
            try:
                registry.get(name, where=f"{key}, {origin(key)}")
            except UserError as err:
                problems.append(str(err))
    if "train.log_to" in flat:
        from disentangle.tracking import check_log_to

        try:
            check_log_to(flat["train.log_to"])
        except ConfigError as err:
            problems.append(f"{err} ({origin('train.log_to')})")
    if flat.get("eval.metrics"):
        from disentangle.evaluation import split_metric_names

        try:
            split_metric_names(list(flat["eval.metrics"]))
        except UserError as err:
            problems.append(f"eval.metrics={flat['eval.metrics']!r} ({origin('eval.metrics')}): "
                            f"{err}")
    if not problems:  # the dataset's keywords, once its name is known
        problems += _option_problems(config, origin)
    if problems:
        raise ConfigError("; ".join(problems))
    return config


def _option_problems(config: ml_collections.ConfigDict, origin: Callable[[str], str]) -> list:
    """``data.options`` the dataset's factory does not take, or of another type than its
    default (an int option given 'abc')."""
    from disentangle.data import DATASETS

    name = config.data.name
    options = dict(config.data.get("options", {}))
    params = inspect.signature(DATASETS.get(name)).parameters
    takes = ", ".join(p for p in params if p != "spec") or "none"
    problems = []
    for key, value in options.items():
        where = f"data.options.{key}={value!r} ({origin('data.options.' + key)})"
        param = params.get(key)
        if param is None or key == "spec":
            if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
                problems.append(f"{where}: dataset {name!r} takes no option {key!r}; its "
                                f"options: {takes}")
            continue
        default = param.default
        if default is not param.empty and default is not None and not _same_kind(value, default):
            problems.append(f"{where}: dataset {name!r} takes {type(default).__name__} values "
                            f"(like the default {default!r})")
    return problems


def _same_kind(value: Any, default: Any) -> bool:
    """``value`` can stand where ``default`` does (an int for a float, never a bool for an int)."""
    if isinstance(value, bool) or isinstance(default, bool):
        return type(value) is type(default)
    if isinstance(default, float):
        return isinstance(value, int | float)
    return isinstance(value, type(default))


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
        # which parameters AdamW decays ('all_but_biases', the QLAE authors', or 'kernels')
        # and which gradients clip_value clips ('decayed', the authors', or 'all')
        "decay_scope": DEFAULT_DECAY_SCOPE, "clip_scope": DEFAULT_CLIP_SCOPE,
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
