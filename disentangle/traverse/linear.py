"""Linear latent traversals (the standard picture since Higgins et al., ICLR 2017).

For a seed image x with code z = encode(x).mean and each latent j, the traversal is

    z^(j, s) = z with z_j replaced by v_j,s,   s = 0..S-1,

decoded as sigmoid(decode(z^(j, s))). The values v_j,s are

- quantiles of the encoded data, v_j,s = Quantile_q_s({z_nj}) with q_s evenly spaced in
  [q_lo, q_hi] (2 % .. 98 % by default), for continuous latents (AE, VAE family);
- the sorted codebook values of latent j, v_j = sort(codebook[j]) [V], for QLAE
  (Hsu et al., NeurIPS 2023), whose decoder only ever saw those values.
"""

from __future__ import annotations

import numpy as np

from disentangle.methods.base import Method
from disentangle.traverse.common import Traversals, decode_images, encode_means


def has_codebook(model: Method) -> bool:
    return hasattr(model, "codebook")


def latent_ranges(model: Method, codes: np.ndarray | None, num_steps: int = 11,
                  quantiles: tuple[float, float] = (0.02, 0.98)) -> np.ndarray:
    """Values to sweep per latent, float32 [L, S].

    Args:
      model: the method; one with a ``codebook`` [L, V] sweeps its sorted values (S = V).
      codes: encoded data [n, L] (ignored for codebook models).
      num_steps: S for quantile ranges.
      quantiles: (q_lo, q_hi) in [0, 1].
    """
    if has_codebook(model):
        return np.sort(np.asarray(model.codebook[...], np.float32), axis=1)
    if codes is None:
        raise ValueError("latent_ranges needs encoded data for a model without a codebook")
    lo, hi = quantiles
    if not 0.0 <= lo < hi <= 1.0:
        raise ValueError(f"quantiles must satisfy 0 <= lo < hi <= 1, got {quantiles}")
    q = np.linspace(lo, hi, num_steps)
    return np.quantile(np.asarray(codes, np.float64), q, axis=0).T.astype(np.float32)  # [L, S]


def mean_length(lengths: np.ndarray, min_share: float = 0.1) -> float:
    """Mean of the row lengths [rows] of at least ``min_share`` of the largest (collapsed
    latents and stalled flows are left out)."""
    lengths = np.asarray(lengths, np.float64)
    return float(lengths[lengths >= min_share * lengths.max()].mean())


def linear_length(values: np.ndarray, min_share: float = 0.1) -> float:
    """Mean end-to-end displacement |v_j,S-1 - v_j,0| of the linear traversals of the
    latents in use (:func:`mean_length`); ``values``: [L, S] from :func:`latent_ranges`."""
    values = np.asarray(values, np.float64)
    return mean_length(np.abs(values[:, -1] - values[:, 0]), min_share)


def linear_codes(seed_codes: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Codes of the traversals: seeds [s, L], values [L, S] -> [s, L (rows), S, L].

    Row j, step t of seed i is seed_codes[i] with latent j set to values[j, t].
    """
    seeds, dim = seed_codes.shape
    rows, steps = values.shape
    if rows != dim:
        raise ValueError(f"values has {rows} rows but the codes have {dim} latents")
    z = np.broadcast_to(seed_codes[:, None, None, :], (seeds, dim, steps, dim)).copy()
    j = np.arange(dim)
    z[:, j, :, j] = values[:, None, :]  # advanced indices go first: target is [L, s, S]
    return z.astype(np.float32)


def linear_traversals(model: Method, seed_images: np.ndarray, data_images: np.ndarray | None,
                      num_steps: int = 11, quantiles: tuple[float, float] = (0.02, 0.98),
                      ) -> Traversals:
    """Linear traversals of every latent from each seed image.

    Args:
      model: a trained method (frozen).
      seed_images: [s, *obs] images whose codes fix the other latents.
      data_images: [n, *obs] images whose codes give the quantile ranges (may be None for
        codebook models).
    Returns:
      Traversals with images [s, L, S, *obs].
    """
    codes = None if has_codebook(model) else encode_means(model, data_images)
    values = latent_ranges(model, codes, num_steps, quantiles)
    z = linear_codes(encode_means(model, seed_images), values)
    images = decode_images(model, z)
    return Traversals(images=images, latents=z, row_labels=[f"z{j}" for j in range(z.shape[1])],
                      kind="linear")
