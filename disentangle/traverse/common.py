"""What every traversal shares: batched encode/decode of a frozen method and the result type.

Images are ``sigmoid(decode(z))`` (the methods' decoders return Bernoulli logits); codes are
the deterministic representation ``encode(x).mean``.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from disentangle import xla_options
from disentangle.methods.base import Method


@dataclasses.dataclass
class Traversals:
    """A set of latent traversals from several seed images.

    Attributes:
      images: float32 [seeds, rows, steps, H, W, C] in [0, 1].
      latents: float32 [seeds, rows, steps, L], the codes that were decoded.
      row_labels: one label per row (``z3``, ``k7``).
      kind: ``linear`` or ``potential_flow``.
    """

    images: np.ndarray
    latents: np.ndarray
    row_labels: list[str]
    kind: str

    @property
    def num_rows(self) -> int:
        return self.images.shape[1]


@xla_options.jit_apply
def _encode_mean(model: Method, x: jax.Array) -> jax.Array:
    return model.encode(x).mean


@xla_options.jit_apply
def _decode_images(model: Method, z: jax.Array) -> jax.Array:
    return jax.nn.sigmoid(model.decode(z))


def encode_means(model: Method, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Deterministic codes ``encode(x).mean``: [n, *obs] -> float32 [n, L]."""
    out = [np.asarray(_encode_mean(model, jax.numpy.asarray(images[i:i + batch_size])))
           for i in range(0, len(images), batch_size)]
    return np.concatenate(out).astype(np.float32)


def decode_images(model: Method, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """Images ``sigmoid(decode(z))``: [..., L] -> float32 [..., *obs] in [0, 1]."""
    z = np.asarray(z, np.float32)
    flat = z.reshape(-1, z.shape[-1])
    out = [np.asarray(_decode_images(model, jax.numpy.asarray(flat[i:i + batch_size])))
           for i in range(0, len(flat), batch_size)]
    images = np.concatenate(out)
    return images.reshape(*z.shape[:-1], *images.shape[1:])
