"""Encoding a fixed sample of a run's dataset: the input of every metric.

``represent(model, dataset, num_samples, seed)`` draws its inputs with
``np.random.default_rng(seed)`` (the same sample for every model of a dataset) and
encodes them. It returns the mean representation,
the sampled one (``mean + sigma * eps``, VAEs only), the log-variances and, for
quantized models, the integer codes.

A finite dataset (``dataset.finite``: stored rows, as npz and TFDS) is sampled without
replacement, so the held-out splits the metrics make of these samples (DCI, SAP,
explicitness) never share a row; asking for more samples than rows takes every row once
and warns. Generated datasets are sampled with ``dataset.sample``.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np

from disentangle import xla_options
from disentangle.data import GroundTruthData
from disentangle.methods import Method


@dataclasses.dataclass
class Encoded:
    factors: np.ndarray  # int [n, K]
    mean: np.ndarray  # float [n, L]
    logvar: np.ndarray | None = None  # float [n, L]
    sampled: np.ndarray | None = None  # float [n, L], mean + exp(logvar / 2) * eps
    codes: np.ndarray | None = None  # int [n, L] (quantized latents)
    rows: np.ndarray | None = None  # int [n] stored row of each sample (finite datasets)

    def representations(self) -> dict[str, np.ndarray]:
        """The representations to score: codes for quantized models, else mean (+ sampled)."""
        if self.codes is not None:
            return {"codes": self.codes}
        out = {"mean": self.mean}
        if self.sampled is not None:
            out["sampled"] = self.sampled
        return out


@xla_options.jit_apply
def _encode(model: Method, x):
    return model.encode(x)


def encode_batches(model: Method, observations: np.ndarray, batch_size: int = 256):
    """Representation fields as numpy arrays, encoded batch by batch."""
    parts = []
    for i in range(0, len(observations), batch_size):
        rep = _encode(model, jnp.asarray(observations[i : i + batch_size]))
        parts.append(jax.device_get(rep))
    cat = lambda name: (None if getattr(parts[0], name) is None
                        else np.concatenate([getattr(p, name) for p in parts]))
    return cat("mean"), cat("logvar"), cat("codes")


def evaluation_rows(dataset: GroundTruthData, num_samples: int,
                    rng: np.random.Generator) -> np.ndarray | None:
    """Distinct stored rows int [min(num_samples, len)] of a finite dataset (None otherwise);
    warns when ``num_samples`` exceeds the rows."""
    if not dataset.finite:
        return None
    num_rows = len(dataset)
    if num_samples > num_rows:
        warnings.warn(f"{dataset.name}: {num_samples} evaluation samples asked for, but it "
                      f"stores {num_rows} rows; using each of the {num_rows} rows once "
                      "(sampling without replacement keeps held-out splits disjoint)",
                      UserWarning, stacklevel=2)
        num_samples = num_rows
    return rng.choice(num_rows, size=num_samples, replace=False)


def evaluation_batches(dataset: GroundTruthData, num_samples: int, seed: int = 0,
                       batch_size: int = 256) -> Iterator[tuple[np.ndarray | None, np.ndarray,
                                                                np.ndarray]]:
    """``(rows [b] or None, factors int [b, K], observations [b, *obs])`` batches of the fixed
    evaluation sample: distinct stored rows of a finite dataset, else ``dataset.sample``."""
    rng = np.random.default_rng(seed)
    rows = evaluation_rows(dataset, num_samples, rng)
    total = num_samples if rows is None else len(rows)
    for i in range(0, total, batch_size):
        if rows is None:
            yield None, *dataset.sample(min(batch_size, total - i), rng)
        else:
            yield rows[i: i + batch_size], *dataset.read_rows(rows[i: i + batch_size])


def represent(model: Method, dataset: GroundTruthData, num_samples: int = 10_000,
              seed: int = 0, batch_size: int = 256) -> Encoded:
    """Encode the evaluation sample (:func:`evaluation_batches`); n = ``num_samples``, or
    the number of stored rows of a finite dataset if smaller."""
    rows, factors, mean, logvar, codes = [], [], [], [], []
    for r, f, obs in evaluation_batches(dataset, num_samples, seed, batch_size):
        m, lv, c = encode_batches(model, obs, batch_size)
        rows.append(r), factors.append(f), mean.append(m), logvar.append(lv), codes.append(c)
    cat = lambda xs: None if xs[0] is None else np.concatenate(xs)
    enc = Encoded(factors=cat(factors), mean=cat(mean), logvar=cat(logvar),
                  codes=cat(codes), rows=cat(rows))
    if enc.logvar is not None:
        eps = np.random.default_rng([seed, 1]).standard_normal(enc.mean.shape)
        enc.sampled = (enc.mean + np.exp(0.5 * enc.logvar) * eps).astype(np.float32)
    return enc
