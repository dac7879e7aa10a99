"""Shared pieces of the metrics: input checks, discretisation, plug-in information, splits.

Conventions (as in disentanglement_lib, Locatello et al. 2019, but rows are samples):
``codes`` float or int ``[n, L]``, ``factors`` int ``[n, K]``. Mutual information and
entropies are in nats and computed by the plug-in estimator on contingency counts,
``I(a; b) = sum_ab p_ab log(p_ab / (p_a p_b))`` (what ``sklearn.metrics.mutual_info_score``
computes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from disentangle.errors import UserError


class MetricInputError(UserError, ValueError):
    """Codes or factors a metric cannot score (wrong shape, NaN, too few samples)."""


@dataclass
class Prepared:
    """Validated inputs of a supervised metric.

    Attributes:
      codes: float64 or int64 ``[n, L]`` (unchanged values).
      factors: int64 ``[n, K_used]`` label-encoded to ``0..C_k-1`` (constant factors dropped).
      num_classes: ``[K_used]`` number of distinct values of each kept factor.
      kept_factors: indices (into the caller's K factors) of the kept factors.
      warnings: reasons for any value that is defined by convention rather than formula.
    """

    codes: np.ndarray
    factors: np.ndarray
    num_classes: np.ndarray
    kept_factors: np.ndarray
    warnings: list[str] = field(default_factory=list)


def check_codes(codes, where: str = "codes", min_samples: int = 2) -> np.ndarray:
    """Return ``codes`` as a finite 2-D array (int64 or float64); raise on NaN/inf or bad shape."""
    codes = np.asarray(codes)
    if codes.ndim == 1:
        codes = codes[:, None]
    if codes.ndim != 2:
        raise MetricInputError(f"{where} must be a 2-D array [n, L], got shape {codes.shape}")
    if codes.shape[0] < min_samples:
        raise MetricInputError(
            f"{where} has {codes.shape[0]} samples; at least {min_samples} are needed"
        )
    if codes.shape[1] == 0:
        raise MetricInputError(f"{where} has no latent dimensions (shape {codes.shape})")
    if np.issubdtype(codes.dtype, np.integer) or codes.dtype == bool:
        return codes.astype(np.int64)
    if not np.issubdtype(codes.dtype, np.floating):
        raise MetricInputError(f"{where} must be numeric, got dtype {codes.dtype}")
    codes = codes.astype(np.float64)
    bad = ~np.isfinite(codes)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        cols = np.flatnonzero(bad.any(axis=0))
        raise MetricInputError(
            f"{where} contain {int(bad.sum())} NaN/inf values (rows {rows[:5].tolist()}..., "
            f"latents {cols.tolist()}); metrics need finite codes -- check the encoder output"
        )
    return codes


def label_encode(column: np.ndarray) -> tuple[np.ndarray, int]:
    """Values -> ``0..C-1`` (sorted order) and ``C``."""
    values, labels = np.unique(column, return_inverse=True)
    return labels.reshape(-1).astype(np.int64), len(values)


def prepare(codes, factors, where: str = "", min_samples: int = 2) -> Prepared:
    """Validate ``codes [n, L]`` and ``factors [n, K]``; drop single-valued factors (warned)."""
    suffix = f" ({where})" if where else ""
    codes = check_codes(codes, "codes" + suffix, min_samples)
    factors = np.asarray(factors)
    if factors.ndim == 1:
        factors = factors[:, None]
    if factors.ndim != 2:
        raise MetricInputError(f"factors{suffix} must be 2-D [n, K], got shape {factors.shape}")
    if factors.shape[0] != codes.shape[0]:
        raise MetricInputError(
            f"codes{suffix} have {codes.shape[0]} rows but factors have {factors.shape[0]}; "
            "rows are samples and must match"
        )
    if not (np.issubdtype(factors.dtype, np.integer) or factors.dtype == bool):
        if np.issubdtype(factors.dtype, np.floating) and np.all(factors == np.round(factors)):
            factors = factors.astype(np.int64)
        else:
            raise MetricInputError(
                f"factors{suffix} must be integer class indices, got dtype {factors.dtype}"
            )
    warnings: list[str] = []
    encoded, sizes, kept = [], [], []
    for k in range(factors.shape[1]):
        labels, num = label_encode(factors[:, k])
        if num < 2:
            warnings.append(f"factor {k} has a single value in these samples; it is left out")
            continue
        encoded.append(labels)
        sizes.append(num)
        kept.append(k)
    if not kept:
        raise MetricInputError(
            f"every factor{suffix} has a single value in these {codes.shape[0]} samples; "
            "nothing to score"
        )
    return Prepared(codes, np.stack(encoded, axis=1), np.asarray(sizes), np.asarray(kept),
                    warnings)


def histogram_discretize(codes: np.ndarray, num_bins: int = 20) -> np.ndarray:
    """Per-latent equal-width binning as disentanglement_lib: int ``[n, L]`` bin indices.

    Bin edges are ``np.histogram(codes[:, j], num_bins)`` edges; a value gets the index of the
    last left edge <= it (``np.digitize`` on the edges without the last), so 1..num_bins.
    """
    codes = np.asarray(codes, dtype=np.float64)
    out = np.empty(codes.shape, dtype=np.int64)
    for j in range(codes.shape[1]):
        edges = np.histogram_bin_edges(codes[:, j], num_bins)
        out[:, j] = np.digitize(codes[:, j], edges[:-1])
    return out


def contingency(a: np.ndarray, b: np.ndarray, num_a: int, num_b: int) -> np.ndarray:
    """Counts ``[num_a, num_b]`` of the label pairs (a_i, b_i)."""
    return np.bincount(a * num_b + b, minlength=num_a * num_b).reshape(num_a, num_b)


def mutual_info_from_counts(counts: np.ndarray) -> float:
    """Plug-in ``I(a; b) = sum_ab p_ab log(p_ab / (p_a p_b))`` in nats."""
    total = counts.sum()
    p_ab = counts / total
    p_a = p_ab.sum(axis=1, keepdims=True)
    p_b = p_ab.sum(axis=0, keepdims=True)
    nz = p_ab > 0
    mi = float(np.sum(p_ab[nz] * np.log(p_ab[nz] / (p_a @ p_b)[nz])))
    return max(mi, 0.0)


def discrete_entropy(labels: np.ndarray) -> np.ndarray:
    """Plug-in entropy ``H = -sum_c p_c log p_c`` (nats) of each column of int ``[n, M]``."""
    labels = np.asarray(labels)
    out = np.empty(labels.shape[1])
    for m in range(labels.shape[1]):
        p = np.bincount(label_encode(labels[:, m])[0]) / labels.shape[0]
        out[m] = -np.sum(p * np.log(p))
    return out


def discrete_mutual_info(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Plug-in MI matrix ``[A, B]`` between the columns of int ``a [n, A]`` and ``b [n, B]``."""
    a_enc = [label_encode(a[:, i]) for i in range(a.shape[1])]
    b_enc = [label_encode(b[:, j]) for j in range(b.shape[1])]
    out = np.zeros((a.shape[1], b.shape[1]))
    for i, (la, na) in enumerate(a_enc):
        for j, (lb, nb) in enumerate(b_enc):
            out[i, j] = mutual_info_from_counts(contingency(la, lb, na, nb))
    return out


def train_test_split(n: int, test_fraction: float = 0.2, seed: int = 0):
    """Fixed-seed split of ``range(n)`` into (train, test) index arrays."""
    order = np.random.default_rng(seed).permutation(n)
    num_test = max(1, int(round(test_fraction * n)))
    return np.sort(order[num_test:]), np.sort(order[:num_test])


def train_test(codes, factors, codes_test, factors_test, test_fraction=0.2, seed=0):
    """Inputs of metrics with a held-out set: prepared train and test arrays plus warnings.

    When ``codes_test`` is None the given samples are split with a fixed seed.
    Returns ``(codes_tr, y_tr, codes_te, y_te, prepared)`` with factors label-encoded by
    the training set's values (test values unseen in training get label -1).
    """
    if (codes_test is None) != (factors_test is None):
        raise MetricInputError("give both codes_test and factors_test, or neither")
    if codes_test is None:
        codes = check_codes(codes, "codes", min_samples=4)
        train, test = train_test_split(codes.shape[0], test_fraction, seed)
        factors = np.asarray(factors)
        if factors.ndim == 1:
            factors = factors[:, None]
        if factors.shape[0] != codes.shape[0]:
            raise MetricInputError(
                f"codes have {codes.shape[0]} rows but factors have {factors.shape[0]}"
            )
        codes_test, factors_test = codes[test], factors[test]
        codes, factors = codes[train], factors[train]
    prep = prepare(codes, factors, "train")
    codes_test = check_codes(codes_test, "codes_test", min_samples=1)
    factors_test = np.asarray(factors_test)
    if factors_test.ndim == 1:
        factors_test = factors_test[:, None]
    if codes_test.shape[1] != prep.codes.shape[1]:
        raise MetricInputError(
            f"codes_test have {codes_test.shape[1]} latents, codes have {prep.codes.shape[1]}"
        )
    if factors_test.shape != (codes_test.shape[0], np.asarray(factors).shape[1]):
        raise MetricInputError(
            f"factors_test shape {factors_test.shape} does not match codes_test "
            f"{codes_test.shape} and {np.asarray(factors).shape[1]} factors"
        )
    y_test = np.empty((factors_test.shape[0], len(prep.kept_factors)), np.int64)
    for col, k in enumerate(prep.kept_factors):
        values = np.unique(np.asarray(factors)[:, k])
        pos = np.clip(np.searchsorted(values, factors_test[:, k]), 0, len(values) - 1)
        y_test[:, col] = np.where(values[pos] == factors_test[:, k], pos, -1)
    return prep.codes, prep.factors, codes_test, y_test, prep


def is_discrete(codes: np.ndarray, discrete_latents=None) -> np.ndarray:
    """Per-latent bool ``[L]``: integer codes are discrete unless ``discrete_latents`` says."""
    num = codes.shape[1]
    if discrete_latents is None:
        return np.full(num, np.issubdtype(codes.dtype, np.integer))
    flags = np.broadcast_to(np.asarray(discrete_latents, dtype=bool), (num,))
    return flags.copy()
