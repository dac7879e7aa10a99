"""Pairs of observations that share all but k factors: the weak supervision of Locatello et
al. (ICML 2020), over any :class:`GroundTruthData`.

Pair i: factors f1 drawn as the dataset draws them; f2 = f1 with k_i factors changed. The
changed factors are drawn uniformly without replacement among the factors that take more
than one value (K' of them), and each gets a new value drawn uniformly among its *other*
values, so a pair differs in exactly k_i factors. ``k`` is fixed (1 <= k <= K' - 1), or
``k = -1`` (disentanglement_lib's convention for "random"): k_i uniform in 1..K'-1 per pair.
(disentanglement_lib's generator differs in two details: it changes 1 factor or k_i
factors with probability 1/2 each, for a fixed k too, and a redrawn value may equal the
old one, so its pairs differ in at most that many factors.)

:class:`PairedData` is what the trainer draws an Ada-VAE's batches from
(``Method.training_data``): ``sample(n, rng)`` and ``device_sampler()`` as a dataset's,
returning factors int [n, 2, K] and observations [n, 2, *observation_shape].
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from disentangle.data.base import DeviceSampler, GroundTruthData, ProceduralData
from disentangle.errors import ConfigError


def change_factors(key: jax.Array, factors: jax.Array, sizes: tuple[int, ...], k: int
                   ) -> jax.Array:
    """f2 [n, K]: ``factors`` [n, K] with k (or, k = -1, k_i ~ U{1..K'-1}) varying factors
    changed to another of their values (module docstring). Jit-traceable."""
    n, num = factors.shape
    sizes_arr = jnp.asarray(sizes, jnp.int32)
    varying = sizes_arr > 1
    k_key, order_key, value_key = jax.random.split(key, 3)
    if k == -1:
        k_i = jax.random.randint(k_key, (n, 1), 1, int(np.sum(np.asarray(sizes) > 1)))
    else:
        k_i = jnp.full((n, 1), k, jnp.int32)
    # A uniformly random order of the varying factors per row; the first k_i change.
    u = jnp.where(varying, jax.random.uniform(order_key, (n, num)), jnp.inf)
    rank = jnp.argsort(jnp.argsort(u, axis=1), axis=1)
    changed = rank < k_i
    # A shift in 1..size-1 moves the value to one of the size-1 others, uniformly.
    shift = 1 + jnp.floor(jax.random.uniform(value_key, (n, num))
                          * (sizes_arr - 1)).astype(jnp.int32)
    return jnp.where(changed, (factors + shift) % sizes_arr, factors)


class PairedData:
    """Pairs of observations of ``dataset`` sharing all but ``k`` factors (module docstring).

    Works over any dataset through its host ``sample_observations_from_factors`` (which
    must hold an observation for every factor combination of a pair; partial grids raise
    the dataset's error naming the missing combination); rendered on the device inside the
    train step for procedural datasets.
    """

    def __init__(self, dataset: GroundTruthData, k: int = -1):
        self.dataset = dataset
        varying = sum(s > 1 for s in dataset.factor_sizes)
        if varying < 2:
            raise ConfigError(f"dataset {dataset.name!r} has {varying} factor(s) with more than "
                              "one value; pairs that share all but k factors need at least 2")
        if not (isinstance(k, int) and (k == -1 or 1 <= k <= varying - 1)):
            raise ConfigError(f"model.k={k!r}; accepted: -1 (k random in 1..{varying - 1} per "
                              f"pair) or an integer in 1..{varying - 1} (the changed factors of "
                              f"a pair; dataset {dataset.name!r} has {varying} varying factors)")
        self.k = k
        self.observation_shape = tuple(dataset.observation_shape)

    @functools.cached_property
    def _partner(self):
        return jax.jit(lambda key, f: change_factors(key, f, tuple(self.dataset.factor_sizes),
                                                     self.k))

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Factors int [n, 2, K] and observations float32 [n, 2, *observation_shape]."""
        first = np.asarray(self.dataset.sample_factors(n, rng))
        key = jax.random.key(int(rng.integers(2**31 - 1)))
        second = np.asarray(self._partner(key, jnp.asarray(first, jnp.int32)), first.dtype)
        factors = np.stack([first, second], axis=1)
        x = self.dataset.sample_observations_from_factors(
            factors.reshape(2 * n, -1), rng)
        return factors, x.reshape(n, 2, *self.observation_shape)

    def device_sampler(self) -> DeviceSampler | None:
        """``(key, n) -> (factors [n, 2, K], x [n, 2, *obs])`` for procedural datasets."""
        if not isinstance(self.dataset, ProceduralData):
            return None
        sizes, render = tuple(self.dataset.factor_sizes), self.dataset.render
        draw = self.dataset.device_sampler()  # the first of a pair, as the dataset draws it

        def sample(key: jax.Array, n: int):
            first_key, partner_key = jax.random.split(key)
            first, x1 = draw(first_key, n)
            second = change_factors(partner_key, first, sizes, self.k)
            return jnp.stack([first, second], 1), jnp.stack([x1, render(second)], 1)

        return sample
