"""Encoding a fixed sample of a run's dataset: the input of every metric.

``represent(model, dataset, num_samples, seed)`` draws ``dataset.sample`` batches with
``np.random.default_rng(seed)`` (the same sample for every model of a dataset) and
encodes them. It returns the mean representation,
the sampled one (``mean + sigma * eps``, VAEs only), the log-variances and, for
quantized models, the integer codes.
"""

from __future__ import annotations

import dataclasses

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


def represent(model: Method, dataset: GroundTruthData, num_samples: int = 10_000,
              seed: int = 0, batch_size: int = 256) -> Encoded:
    rng = np.random.default_rng(seed)
    factors, mean, logvar, codes = [], [], [], []
    for i in range(0, num_samples, batch_size):
        f, obs = dataset.sample(min(batch_size, num_samples - i), rng)
        m, lv, c = encode_batches(model, obs, batch_size)
        factors.append(f), mean.append(m), logvar.append(lv), codes.append(c)
    cat = lambda xs: None if xs[0] is None else np.concatenate(xs)
    enc = Encoded(factors=cat(factors), mean=cat(mean), logvar=cat(logvar),
                  codes=cat(codes))
    if enc.logvar is not None:
        eps = np.random.default_rng([seed, 1]).standard_normal(enc.mean.shape)
        enc.sampled = (enc.mean + np.exp(0.5 * enc.logvar) * eps).astype(np.float32)
    return enc
