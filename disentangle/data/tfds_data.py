"""TFDS ground-truth datasets read through ``tfds.data_source`` (array_record).

``tfds:NAME`` (for example ``tfds:dsprites``, ``tfds:shapes3d``, ``tfds:smallnorb``)
reads the user's prepared copy from the TFDS data dir (``data.options.data_dir`` or
``$TFDS_DATA_DIR`` or ``~/tensorflow_datasets``); TensorFlow is not needed to read it.
Factors are the builder's ``ClassLabel`` features in the builder's order, with sizes
from ``num_classes``; observations are its first ``Image`` feature. Images stored as
0/1 (TFDS dSprites) are detected from the data and kept in [0, 1]; others are / 255.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from disentangle.cache import cache_dir
from disentangle.data import register_dataset
from disentangle.data.base import GroundTruthData
from disentangle.errors import DataError


def prepare_command(name: str, data_dir: str | None) -> str:
    where = f" --data_dir {data_dir}" if data_dir else ""
    return (f"pip install 'disentangle[prepare]' && "
            f"tfds build {name} --file_format=array_record{where}")


@register_dataset("tfds:")
class TFDSData(GroundTruthData):
    """A TFDS dataset with ``ClassLabel`` factors, random access by row."""

    def __init__(self, spec: str, data_dir: str | None = None, split: str = "train",
                 image_key: str | None = None):
        import tensorflow_datasets as tfds

        self.tfds_name = spec
        data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
        try:
            builder = tfds.builder(spec, data_dir=data_dir)
        except Exception as err:  # unknown name
            raise DataError(f"tfds:{spec}: TFDS knows no dataset {spec!r} ({err})") from None
        features = builder.info.features
        labels = [k for k, f in features.items() if isinstance(f, tfds.features.ClassLabel)]
        images = [k for k, f in features.items() if isinstance(f, tfds.features.Image)]
        if not labels or not images:
            raise DataError(f"tfds:{spec}: needs ClassLabel factor features and an Image "
                            f"feature; it has {list(features)}")
        self.image_key = image_key or images[0]
        self.label_keys = labels
        self.factor_names = tuple(k.removeprefix("label_") for k in labels)
        self.factor_sizes = tuple(int(features[k].num_classes) for k in labels)
        self.observation_shape = tuple(features[self.image_key].shape)
        try:
            self.source = tfds.data_source(spec, split=split, data_dir=data_dir)
        except Exception as err:
            raise DataError(
                f"tfds:{spec} is not prepared in {data_dir or '~/tensorflow_datasets'} "
                f"({type(err).__name__}). Prepare it once with:\n  "
                f"{prepare_command(spec, data_dir)}") from None
        self._index: tuple[np.ndarray, np.ndarray] | None = None
        self.split, self.data_dir = split, data_dir
        self.version = str(builder.info.version)
        first = self.source[0][self.image_key]
        self._scale = 1.0 if first.max() <= 1 else 1.0 / 255.0

    finite = True  # evaluation draws stored rows without replacement (read_rows)

    def __len__(self) -> int:
        return len(self.source)

    def read_rows(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Factors int [n, K] and observations float32 [n, *observation_shape] of stored rows."""
        return self._read(rows)

    def _read(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        records = [self.source[int(i)] for i in rows]
        factors = np.asarray([[r[k] for k in self.label_keys] for r in records], np.int64)
        images = np.stack([r[self.image_key] for r in records]).astype(np.float32)
        return factors, images * self._scale

    def sample(self, n, rng):
        return self._read(rng.integers(0, len(self), size=n))

    def sample_factors(self, n, rng):
        return self.sample(n, rng)[0]

    def _index_cache_path(self) -> Path:
        """Where this copy's factor index is cached: keyed by name, version, split, row count
        and data dir (a different copy of the data gets its own file)."""
        where = hashlib.sha1(str(Path(self.data_dir or "~/tensorflow_datasets").expanduser()
                                 .resolve()).encode()).hexdigest()[:12]
        name = self.tfds_name.replace("/", "_").replace(":", "_")
        return cache_dir("tfds_index", f"{name}-{self.version}-{self.split}-{len(self)}-"
                                       f"{where}.npz")

    def factor_index(self) -> tuple[np.ndarray, np.ndarray]:
        """(sorted flat factor index, row order): read once per dataset copy (labels only,
        images not decoded where the source allows it), then cached on disk
        (:mod:`disentangle.cache`) and in memory.
        """
        if self._index is not None:
            return self._index
        path = self._index_cache_path()
        try:
            with np.load(path, allow_pickle=False) as cached:
                flat, order = cached["sorted_flat"], cached["order"]
            if flat.shape == order.shape == (len(self),):
                self._index = flat, order
                return self._index
        except (OSError, KeyError, ValueError):  # absent, unreadable or stale: rebuild
            pass
        import tensorflow_datasets as tfds

        try:
            src = tfds.data_source(self.tfds_name, split=self.split, data_dir=self.data_dir,
                                   decoders={self.image_key: tfds.decode.SkipDecoding()})
            src[0]
        except Exception:  # sources that cannot skip decoding (e.g. mocks)
            src = self.source
        rows = np.asarray([[src[i][k] for k in self.label_keys] for i in range(len(src))],
                          np.int64)
        flat = np.ravel_multi_index(tuple(rows.T), self.factor_sizes)
        order = np.argsort(flat, kind="stable")
        self._index = flat[order], order
        try:  # write-then-rename: a killed process never leaves a half-written index
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            with open(tmp, "wb") as f:
                np.savez(f, sorted_flat=self._index[0], order=self._index[1])
            os.replace(tmp, path)
        except OSError:  # read-only cache: keep the in-memory index only
            pass
        return self._index

    def sample_observations_from_factors(self, factors, rng):
        factors = np.asarray(factors)
        flat = self.factors_to_index(factors)
        sorted_flat, order = self.factor_index()
        lo = np.searchsorted(sorted_flat, flat, "left")
        hi = np.searchsorted(sorted_flat, flat, "right")
        if (hi == lo).any():
            bad = factors[np.flatnonzero(hi == lo)[0]].tolist()
            raise DataError(f"tfds:{self.tfds_name}: no example has factors {bad}")
        rows = order[lo + (rng.random(len(flat)) * (hi - lo)).astype(np.int64)]
        return self._read(rows)[1]
