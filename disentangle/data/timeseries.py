"""Time-series datasets: a procedural multi-factor generator and the UCR/UEA archive.

Observations are float32 ``[n, T, C]`` (time-major per series, channels last), as the
recurrent methods of :mod:`disentangle.methods.dts.lstm_vae` and :mod:`disentangle.methods.dts.dts`
(Li et al., "Towards Learning Disentangled Representations for Time Series", KDD 2022)
expect.

``ts_factors`` (rendered inside ``jit``, no download): one channel of ``T = 64`` samples,

    x(t) = amplitude * wave_shape(2 pi * frequency * t / T) + trend * (t / (T - 1) - 1/2)
           + noise_std * eps(t)

with five factors: ``shape`` (sine, square, triangle), ``frequency`` (1, 2, 3, 4 cycles),
``amplitude`` (0.25 .. 1), ``trend`` (slope -1 .. 1 over the window), ``noise``
(std 0, 0.1, 0.25). The noise ``eps`` is a fixed standard-normal sequence per factor
combination (hashed from the grid index and t, :func:`hashed_normal`), so rendering is deterministic
and a factor change is the only thing that changes a series. The factors fall into the
groups ``oscillation = (shape, frequency, amplitude)``, ``level = (trend,)`` and
``noise = (noise,)`` (``factor_groups``), which DTS's group-level disentanglement targets.

``ucr:SPEC`` reads a UCR/UEA archive problem from ``.ts`` files (the sktime/aeon format):
SPEC is a ``.ts`` file, a folder holding ``NAME_TRAIN.ts``/``NAME_TEST.ts``, or a problem
NAME looked up in the folders of ``$DISENTANGLE_UCR_DIR`` (``os.pathsep``-separated) and
then in the data folder of an installed ``aeon`` or ``sktime`` package (aeon ships ArrowHead,
BasicMotions, GunPoint, ItalyPowerDemand, JapaneseVowels, OSULeaf and a few more). The
class label is the single factor. Options (see :func:`ucr_arrays`):

- ``split``: ``"train"`` (default) or ``"test"``;
- ``length``: ``"error"`` (default: unequal lengths are refused, naming file and line),
  ``"pad"`` (pad at the end to the longest series by repeating the last observed value),
  ``"resample"`` (linear interpolation of every series onto ``target_length`` points,
  default the longest length);
- ``missing``: ``"error"`` (default for '?' values), ``"interpolate"`` (linear in time per
  channel, constant beyond the ends), ``"zero"``;
- ``normalize``: ``"none"`` (default), ``"series"`` (z-normalise each series and
  channel, the archive's convention; needs no statistics of another split) or
  ``"channel"`` (per-channel mean and std of the problem's TRAIN split, applied to either
  split; keeps amplitude differences between series, which "series" removes; a SPEC that
  is one .ts file uses that file's statistics).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import os
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from disentangle.data import register_dataset
from disentangle.data.base import ArrayData, ProceduralData
from disentangle.errors import DataError

# ============================================================================ procedural

WAVE_SHAPES = ("sine", "square", "triangle")


def wave(shape: jax.Array, phase: jax.Array) -> jax.Array:
    """Zero-mean, unit-amplitude periodic waveforms of ``phase`` (radians).

    sine: sin(p); square: tanh(5 sin p) / tanh(5) (slightly smoothed edges);
    triangle: (2 / pi) arcsin(sin p).
    """
    s = jnp.sin(phase)
    square = jnp.tanh(5.0 * s) / math.tanh(5.0)
    triangle = (2.0 / math.pi) * jnp.arcsin(jnp.clip(s, -1.0, 1.0))
    return jnp.select([shape == 0, shape == 1], [s, square], triangle)


def _mix32(h: jax.Array) -> jax.Array:
    """The murmur3 finaliser on uint32 (a bijection that spreads every input bit)."""
    h = h ^ (h >> 16)
    h = h * jnp.uint32(0x85EBCA6B)
    h = h ^ (h >> 13)
    h = h * jnp.uint32(0xC2B2AE35)
    return h ^ (h >> 16)


def hashed_normal(i: jax.Array, j: jax.Array) -> jax.Array:
    """Deterministic N(0, 1) values of integer pairs (i, j) (broadcast), by Box-Muller.

    u1, u2 = uniform (0, 1] from murmur3-mixed hashes of (i, j); eps = sqrt(-2 ln u1) cos(2 pi u2).
    Exact integer arithmetic, so the same on every backend, and cheap to compile.
    """
    h = i.astype(jnp.uint32) * jnp.uint32(0x9E3779B1) + j.astype(jnp.uint32) * jnp.uint32(
        0x85EBCA77)
    h1 = _mix32(h ^ jnp.uint32(0x68E31DA4))
    h2 = _mix32(h1 ^ jnp.uint32(0xB5297A4D))
    u1 = ((h1 >> 8).astype(jnp.float32) + 1.0) / 2.0**24
    u2 = (h2 >> 8).astype(jnp.float32) / 2.0**24
    return jnp.sqrt(-2.0 * jnp.log(u1)) * jnp.cos(2.0 * math.pi * u2)


@register_dataset("ts_factors")
class TimeSeriesFactors(ProceduralData):
    """Procedural univariate series with five factors, float32 [n, 64, 1]."""

    factor_names = ("shape", "frequency", "amplitude", "trend", "noise")
    factor_sizes = (3, 4, 4, 5, 3)
    factor_groups = {"oscillation": (0, 1, 2), "level": (3,), "noise": (4,)}

    def __init__(self, length: int = 64):
        self.length = int(length)
        self.observation_shape = (self.length, 1)
        self.frequencies = np.array([1.0, 2.0, 3.0, 4.0])  # cycles per window
        self.amplitudes = np.linspace(0.25, 1.0, 4)
        self.trends = np.linspace(-1.0, 1.0, 5)  # total rise over the window
        self.noise_stds = np.array([0.0, 0.1, 0.25])

    def render(self, factors: jax.Array) -> jax.Array:
        """int [n, 5] factors -> float32 [n, T, 1]."""
        f32 = lambda a: jnp.asarray(a, jnp.float32)
        factors = factors.astype(jnp.int32)
        t = jnp.arange(self.length, dtype=jnp.float32)  # [T]
        freq = f32(self.frequencies)[factors[:, 1]][:, None]
        amp = f32(self.amplitudes)[factors[:, 2]][:, None]
        trend = f32(self.trends)[factors[:, 3]][:, None]
        noise_std = f32(self.noise_stds)[factors[:, 4]][:, None]
        phase = 2.0 * math.pi * freq * t[None, :] / self.length  # [n, T]
        periodic = amp * wave(factors[:, :1], phase)
        level = trend * (t[None, :] / (self.length - 1) - 0.5)
        # Fixed noise per factor combination: eps = N(0, 1) hashed from (grid index, t).
        strides = np.cumprod((1, *self.factor_sizes[::-1]))[:-1][::-1].copy()
        index = factors @ jnp.asarray(strides, jnp.int32)
        eps = hashed_normal(index[:, None], t.astype(jnp.int32)[None, :])
        return (periodic + level + noise_std * eps)[..., None].astype(jnp.float32)


# ============================================================================ .ts files

BOOL_KEYS = ("timestamps", "missing", "univariate", "equallength")
KNOWN_KEYS = (*BOOL_KEYS, "problemname", "dimensions", "serieslength", "classlabel",
              "targetlabel", "data")
_TIMESTAMPED = re.compile(r"\(([^()]*)\)")


@dataclasses.dataclass
class TsFile:
    """Contents of one ``.ts`` file.

    Attributes:
      series: one float64 array ``[T_i, C]`` per case (NaN where the file has '?').
      labels: class label (str) or regression target (str) per case, or None.
      class_labels: the labels declared by ``@classLabel true ...`` (file order).
      header: the header values, keys lower-cased.
      lines: the file line number of each case (for error messages).
    """

    path: Path
    problem_name: str
    series: list[np.ndarray]
    labels: list[str] | None
    class_labels: tuple[str, ...]
    header: dict
    lines: list[int]


def _split_outside_parens(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where not inside '(...)' (timestamped values contain ':' and ',')."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == sep and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return parts


def _parse_values(field: str, timestamps: bool, where: str, dim: int) -> np.ndarray:
    field = field.strip()
    if timestamps:
        tokens = [m.split(",")[-1] for m in _TIMESTAMPED.findall(field)]
        if not tokens and field:
            raise DataError(f"{where}: dimension {dim} is not a list of (timestamp,value) "
                            f"pairs although the header says @timeStamps true: {field[:40]!r}")
    else:
        tokens = field.split(",") if field else []
    out = np.empty(len(tokens), np.float64)
    for i, tok in enumerate(tokens):
        tok = tok.strip()
        if tok in ("?", "") or tok.lower() == "nan":
            out[i] = np.nan
            continue
        try:
            out[i] = float(tok)
        except ValueError:
            raise DataError(f"{where}: value {i} of dimension {dim} is {tok!r}, not a number "
                            "or '?'") from None
    return out


def parse_ts(path: str | Path) -> TsFile:
    """Read a ``.ts`` file (UCR/UEA archive, sktime/aeon format).

    Header lines (``@key value``, keys case-insensitive) come before ``@data``; lines
    starting with '#' or '%' are comments. A case is one line: dimensions separated by ':'
    (values by ','), the class label last when ``@classLabel true``; '?' is a missing value.
    Raises :class:`DataError` naming the file and line for anything malformed.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such .ts file")
    header: dict = {}
    series, labels, lines = [], [], []
    in_data = False
    with open(path, encoding="utf-8", errors="replace") as fh:
        for lineno, raw in enumerate(fh, start=1):
            line = raw.strip()
            where = f"{path}:{lineno}"
            if not line or line[0] in "#%":
                continue
            if line[0] == "@":
                if in_data:
                    raise DataError(f"{where}: header line {line[:40]!r} after @data")
                key, _, value = line[1:].partition(" ")
                key, value = key.lower(), value.strip()
                if key not in KNOWN_KEYS:
                    raise DataError(f"{where}: unknown header @{key}; accepted: "
                                    + ", ".join("@" + k for k in KNOWN_KEYS))
                if key in BOOL_KEYS:
                    if value.lower() not in ("true", "false"):
                        raise DataError(f"{where}: @{key} must be true or false, got {value!r}")
                    header[key] = value.lower() == "true"
                elif key in ("dimensions", "serieslength"):
                    if not value.isdigit() or int(value) < 1:
                        raise DataError(f"{where}: @{key} must be a positive integer, "
                                        f"got {value!r}")
                    header[key] = int(value)
                elif key in ("classlabel", "targetlabel"):
                    words = value.split()
                    if not words or words[0].lower() not in ("true", "false"):
                        raise DataError(f"{where}: @{key} must start with true or false, "
                                        f"got {value!r}")
                    header[key] = words[0].lower() == "true"
                    if key == "classlabel":
                        header["class_labels"] = tuple(words[1:])
                        if header[key] and not words[1:]:
                            raise DataError(f"{where}: @classLabel true lists no labels")
                elif key == "data":
                    missing = [k for k in ("problemname",) if k not in header]
                    if missing:
                        raise DataError(f"{where}: @data before @problemName")
                    in_data = True
                else:
                    header[key] = value
                continue
            if not in_data:
                raise DataError(f"{where}: data line before the @data header "
                                f"(starts {line[:30]!r})")
            has_label = header.get("classlabel", False) or header.get("targetlabel", False)
            fields = _split_outside_parens(line, ":")
            if has_label:
                if len(fields) < 2:
                    raise DataError(f"{where}: expected values then ':label', found no ':'")
                label = fields.pop().strip()
                if header.get("classlabel") and label not in header["class_labels"]:
                    raise DataError(f"{where}: class label {label!r} is not among the declared "
                                    f"labels {list(header['class_labels'])}")
                labels.append(label)
            dims = [_parse_values(f, header.get("timestamps", False), where, d)
                    for d, f in enumerate(fields)]
            if header.get("univariate", False) and len(dims) != 1:
                raise DataError(f"{where}: {len(dims)} dimensions in a file declared "
                                "@univariate true")
            if "dimensions" in header and len(dims) != header["dimensions"]:
                raise DataError(f"{where}: {len(dims)} dimensions, header says "
                                f"@dimensions {header['dimensions']}")
            if series and len(dims) != series[0].shape[1]:
                raise DataError(f"{where}: {len(dims)} dimensions, earlier cases have "
                                f"{series[0].shape[1]}")
            length = max(len(d) for d in dims)
            if length == 0:
                raise DataError(f"{where}: empty series")
            case = np.full((length, len(dims)), np.nan)
            for d, values in enumerate(dims):  # a shorter dimension is padded with NaN
                case[: len(values), d] = values
            if np.isnan(case).any() and header.get("missing") is False:
                raise DataError(f"{where}: missing value ('?') in a file declared "
                                "@missing false")
            if header.get("equallength") and series and length != len(series[0]):
                raise DataError(f"{where}: series length {length} differs from "
                                f"{len(series[0])} (line {lines[0]}) in a file declared "
                                "@equalLength true")
            if header.get("equallength") and "serieslength" in header \
                    and length != header["serieslength"]:
                raise DataError(f"{where}: series length {length}, header says "
                                f"@seriesLength {header['serieslength']}")
            series.append(case)
            lines.append(lineno)
    if not in_data:
        raise DataError(f"{path}: no @data line; is this a .ts file (sktime/aeon format)?")
    if not series:
        raise DataError(f"{path}: no cases after @data")
    return TsFile(path, header["problemname"], series, labels if labels else None,
                  header.get("class_labels", ()), header, lines)


def fill_missing(x: np.ndarray, how: str, where: str = "") -> np.ndarray:
    """Replace NaN in one series ``[T, C]``: 'interpolate' (linear; ends held), 'zero', 'error'."""
    nan = np.isnan(x)
    if not nan.any():
        return x
    if how == "error":
        t, c = np.argwhere(nan)[0]
        raise DataError(f"{where}: missing value at time {t}, channel {c}; pass "
                        "missing='interpolate' or missing='zero' to fill it")
    if how == "zero":
        return np.where(nan, 0.0, x)
    if how != "interpolate":
        raise DataError(f"missing={how!r}; accepted: 'error', 'interpolate', 'zero'")
    out = x.copy()
    t = np.arange(len(x))
    for c in range(x.shape[1]):
        ok = ~nan[:, c]
        if not ok.any():
            raise DataError(f"{where}: channel {c} has no observed value to interpolate from")
        out[:, c] = np.interp(t, t[ok], x[ok, c])
    return out


def equalise_lengths(series: list[np.ndarray], how: str, target_length: int | None = None,
                     where: list[str] | None = None) -> np.ndarray:
    """List of ``[T_i, C]`` -> ``[n, T, C]``.

    'error' refuses unequal lengths, 'pad' repeats each series' last value up to the
    longest length (or ``target_length``), 'resample' linearly interpolates each series onto
    ``target_length`` (default: the longest) evenly spaced points over its own span.
    """
    lengths = np.array([len(s) for s in series])
    where = where or [f"case {i}" for i in range(len(series))]
    longest = int(lengths.max())
    if how == "error":
        if (lengths != lengths[0]).any():
            i = int(np.flatnonzero(lengths != lengths[0])[0])
            raise DataError(f"{where[i]}: series length {lengths[i]} differs from "
                            f"{lengths[0]} ({where[0]}); pass length='pad' or "
                            "length='resample'")
        return np.stack(series)
    target = int(target_length or longest)
    if how == "pad":
        if target < longest:
            i = int(np.argmax(lengths))
            raise DataError(f"{where[i]}: series length {lengths[i]} exceeds target_length "
                            f"{target}; use length='resample'")
        return np.stack([np.concatenate([s, np.repeat(s[-1:], target - len(s), axis=0)])
                         for s in series])
    if how == "resample":
        grid = np.linspace(0.0, 1.0, target)
        out = []
        for s in series:
            src = np.linspace(0.0, 1.0, len(s)) if len(s) > 1 else np.zeros(1)
            out.append(np.stack([np.interp(grid, src, s[:, c]) for c in range(s.shape[1])], 1))
        return np.stack(out)
    raise DataError(f"length={how!r}; accepted: 'error', 'pad', 'resample'")


def ucr_search_dirs() -> list[Path]:
    """Folders searched for a problem NAME: $DISENTANGLE_UCR_DIR, then aeon's and sktime's."""
    dirs = [Path(p) for p in os.environ.get("DISENTANGLE_UCR_DIR", "").split(os.pathsep) if p]
    for package in ("aeon", "sktime"):
        spec = importlib.util.find_spec(package)  # finds the folder without importing it
        if spec is not None and spec.submodule_search_locations:
            for root in spec.submodule_search_locations:
                dirs.append(Path(root) / "datasets" / "data")
    return dirs


def resolve_ts(spec: str, split: str = "train") -> Path:
    """The ``.ts`` file of ``spec`` (file, folder or problem name) for ``split``."""
    if split not in ("train", "test"):
        raise DataError(f"split={split!r}; accepted: 'train', 'test'")
    suffix = f"_{split.upper()}.ts"
    path = Path(spec).expanduser()
    if path.suffix == ".ts":
        if not path.is_file():
            raise DataError(f"ucr:{spec}: no such file")
        return path
    if path.is_dir():
        candidates = [path / f"{path.name}{suffix}", *sorted(path.glob(f"*{suffix}"))]
        for c in candidates:
            if c.is_file():
                return c
        raise DataError(f"ucr:{spec}: folder has no *{suffix} file")
    searched = []
    for d in ucr_search_dirs():
        for c in (d / spec / f"{spec}{suffix}", d / f"{spec}{suffix}"):
            searched.append(str(c))
            if c.is_file():
                return c
    raise DataError(
        f"ucr:{spec}: no {spec}{suffix} found (looked in {', '.join(searched) or 'nothing'}). "
        "Give a path to a .ts file or folder, set DISENTANGLE_UCR_DIR to a folder of UCR/UEA "
        "problems (NAME/NAME_TRAIN.ts), or `pip install --no-deps aeon` for the few it ships.")


def ucr_arrays(spec: str, split: str = "train", length: str = "error", missing: str = "error",
               normalize: str = "none", target_length: int | None = None,
               class_labels: tuple[str, ...] | None = None):
    """Observations float32 ``[n, T, C]``, integer labels ``[n]``, class names, source file.

    Labels are indices into ``class_labels`` (default: the file's ``@classLabel`` list, so
    train and test files of a problem share the encoding).
    """
    path = resolve_ts(spec, split)
    ts = parse_ts(path)
    if ts.labels is None or not ts.header.get("classlabel"):
        raise DataError(f"{path}: has no class labels (@classLabel false); ucr: needs "
                        "labelled series")
    where = [f"{path}:{ln}" for ln in ts.lines]
    series = [fill_missing(s, missing, w) for s, w in zip(ts.series, where, strict=True)]
    x = equalise_lengths(series, length, target_length, where)
    if normalize == "series":
        mu, sd = x.mean(1, keepdims=True), x.std(1, keepdims=True)
        x = (x - mu) / np.where(sd > 1e-8, sd, 1.0)
    elif normalize == "channel":
        same_file = split == "train" or str(spec).endswith(".ts")
        ref = x if same_file else ucr_arrays(spec, "train", length, missing, "none",
                                             target_length)[0]
        mu, sd = ref.mean((0, 1)), ref.std((0, 1))
        x = (x - mu) / np.where(sd > 1e-8, sd, 1.0)
    elif normalize != "none":
        raise DataError(f"normalize={normalize!r}; accepted: 'none', 'series', 'channel'")
    names = tuple(class_labels or ts.class_labels)
    index = {c: i for i, c in enumerate(names)}
    y = np.array([index[label] for label in ts.labels], np.int64)
    return x.astype(np.float32), y, names, path


class UCRData(ArrayData):
    """A labelled UCR/UEA problem in memory: observations [n, T, C], factor ``label``."""

    def __init__(self, spec: str, split: str = "train", length: str = "error",
                 missing: str = "error", normalize: str = "none",
                 target_length: int | None = None):
        x, y, names, path = ucr_arrays(spec, split, length, missing, normalize, target_length)
        super().__init__(f"ucr:{spec}", x, y[:, None], ("label",), (len(names),))
        self.class_names, self.path, self.split = names, path, split


@register_dataset("ucr:")
def ucr(spec: str, **options) -> UCRData:
    return UCRData(spec, **options)
