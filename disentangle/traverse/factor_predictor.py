"""A ground-truth factor predictor on images, to read off which factors a traversal changes.

Song et al. (ICML 2023) evaluate traversals by how many ground-truth factors change along
them. Generated images carry no labels, so we train once per dataset a classifier
p(f_k | x) with one softmax head per factor k on real images (the disentanglement_lib conv
encoder for 64x64 images, an MLP otherwise), cross-entropy summed over factors:

    loss = mean_n sum_k -log softmax(h_k(x_n))[f_nk]

Held-out split: the factor combinations with flat grid index = 0 (mod 7) are never used
for training and are the test set, so the reported accuracy is on unseen combinations.
Accuracy is reported per factor exactly and within +-1 class (meaningful for ordered
factors such as position and scale). The trained predictor is cached on disk per dataset
name; ``predict_proba(images) -> list of [n, size_k]``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.special
from flax import nnx

from disentangle.nn import build_encoder

HELD_OUT_MODULUS = 7
CACHE_VERSION = 1


def held_out_mask(flat_index: np.ndarray) -> np.ndarray:
    """True for the held-out test combinations (flat grid index = 0 mod 7)."""
    return np.asarray(flat_index) % HELD_OUT_MODULUS == 0


def _network_name(observation_shape: Sequence[int]) -> str:
    shape = tuple(observation_shape)
    return "conv64" if len(shape) == 3 and shape[:2] == (64, 64) else "mlp_small"


class FactorPredictor:
    """p(f_k | x) for every factor k; a small conv net with one softmax head per factor.

    Attributes:
      factor_names, factor_sizes: the dataset's factors (K of them).
      accuracy: held-out accuracy report, ``{"exact": {name: acc}, "within_1": {...},
        "mean_exact": float, "mean_within_1": float, "num_test": int}``.
    """

    def __init__(self, factor_names: Sequence[str], factor_sizes: Sequence[int],
                 observation_shape: Sequence[int], seed: int = 0):
        self.factor_names = tuple(factor_names)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.observation_shape = tuple(observation_shape)
        self.network = build_encoder(_network_name(observation_shape), self.observation_shape,
                                     sum(self.factor_sizes), nnx.Rngs(seed))
        self.accuracy: dict = {}
        self._split = np.cumsum(self.factor_sizes)[:-1]

    def logits(self, images: jax.Array) -> jax.Array:
        """[n, *obs] -> concatenated logits [n, sum_k size_k]."""
        return self.network(images)

    def predict_proba(self, images: np.ndarray, batch_size: int = 256) -> list[np.ndarray]:
        """Per-factor class probabilities: [n, *obs] -> list of K arrays [n, size_k]."""
        images = np.asarray(images, np.float32)
        out = [np.asarray(_logits(self.network, jnp.asarray(images[i:i + batch_size])))
               for i in range(0, len(images), batch_size)]
        logits = np.concatenate(out) if out else np.zeros((0, sum(self.factor_sizes)), np.float32)
        return [scipy.special.softmax(block.astype(np.float64), axis=1)
                for block in np.split(logits, self._split, axis=1)]

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Most probable class per factor, int [n, K]."""
        return np.stack([p.argmax(axis=1) for p in self.predict_proba(images)], axis=1)

    # Persistence: parameters as one .npz, metadata (factors, accuracy) as JSON.
    def save(self, directory: str | Path, extra: dict | None = None) -> None:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        leaves = jax.tree_util.tree_flatten_with_path(nnx.state(self.network, nnx.Param))[0]
        arrays = {jax.tree_util.keystr(path): np.asarray(v) for path, v in leaves}
        tmp = directory / "params.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(directory / "params.npz")
        meta = {"version": CACHE_VERSION, "factor_names": list(self.factor_names),
                "factor_sizes": list(self.factor_sizes),
                "observation_shape": list(self.observation_shape),
                "accuracy": self.accuracy, **(extra or {})}
        (directory / "meta.json").write_text(json.dumps(meta, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> FactorPredictor:
        directory = Path(directory)
        meta = json.loads((directory / "meta.json").read_text())
        predictor = cls(meta["factor_names"], meta["factor_sizes"], meta["observation_shape"])
        state = nnx.state(predictor.network, nnx.Param)
        leaves, treedef = jax.tree_util.tree_flatten_with_path(state)
        with np.load(directory / "params.npz") as stored:
            new = [jnp.asarray(stored[jax.tree_util.keystr(path)]) for path, _ in leaves]
        nnx.update(predictor.network, jax.tree_util.tree_unflatten(treedef, new))
        predictor.accuracy = meta.get("accuracy", {})
        return predictor


@nnx.jit
def _logits(network: nnx.Module, x: jax.Array) -> jax.Array:
    return network(x)


def _cross_entropy(logits: jax.Array, factors: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """sum_k CE(softmax(logits_k), f_k) per example: [n, sum sizes], [n, K] -> [n]."""
    total = 0.0
    start = 0
    for k, size in enumerate(sizes):
        block = logits[:, start:start + size]
        total = total + optax.softmax_cross_entropy_with_integer_labels(block, factors[:, k])
        start += size
    return total


def _sample_split(dataset, n: int, rng: np.random.Generator, test: bool):
    """Factors [n, K] and images of the train (test=False) or held-out (test=True) split."""
    rows = []
    have = 0
    for _ in range(1000):
        factors = dataset.sample_factors(4 * n if test else 2 * n, rng)
        keep = held_out_mask(dataset.factors_to_index(factors)) == test
        rows.append(factors[keep])
        have += int(keep.sum())
        if have >= n:
            break
    factors = np.concatenate(rows)[:n]
    if len(factors) < n:
        raise ValueError(f"{dataset.name}: could not draw {n} {'test' if test else 'train'} rows")
    return factors, dataset.sample_observations_from_factors(factors, rng)


def evaluate_predictor(predictor: FactorPredictor, dataset, num_test: int = 2000,
                       seed: int = 1) -> dict:
    """Held-out accuracy per factor: exact and within +-1 class."""
    factors, images = _sample_split(dataset, num_test, np.random.default_rng(seed), test=True)
    pred = predictor.predict(images)
    exact = pred == factors
    within = np.abs(pred - factors) <= 1
    names = predictor.factor_names
    return {
        "exact": {n: float(exact[:, k].mean()) for k, n in enumerate(names)},
        "within_1": {n: float(within[:, k].mean()) for k, n in enumerate(names)},
        "mean_exact": float(exact.mean()),
        "mean_within_1": float(within.mean()),
        "num_test": int(num_test),
    }


def train_factor_predictor(dataset, *, cache_dir: str | Path | None = None, steps: int = 3000,
                           batch_size: int = 64, learning_rate: float = 1e-3, seed: int = 0,
                           num_test: int = 2000, log: Callable[[str], None] | None = print,
                           ) -> FactorPredictor:
    """Train (or load from ``cache_dir/<dataset name>``) a factor predictor for ``dataset``.

    The cache is reused when it was trained for the same factors, observation shape and
    at least as many steps. Returns the predictor with ``accuracy`` filled in.
    """
    log = log or (lambda msg: None)
    name = (dataset.name or type(dataset).__name__).replace(":", "_").replace("/", "_")
    target = Path(cache_dir) / f"factor_predictor_{name}" if cache_dir else None
    if target is not None and (target / "meta.json").exists():
        meta = json.loads((target / "meta.json").read_text())
        if (meta.get("version") == CACHE_VERSION
                and tuple(meta["factor_sizes"]) == tuple(dataset.factor_sizes)
                and tuple(meta["observation_shape"]) == tuple(dataset.observation_shape)
                and meta.get("steps", 0) >= steps):
            log(f"factor predictor: loaded from {target}")
            return FactorPredictor.load(target)

    predictor = FactorPredictor(dataset.factor_names, dataset.factor_sizes,
                                dataset.observation_shape, seed)
    sizes = predictor.factor_sizes
    schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.05)
    optimizer = nnx.Optimizer(predictor.network, optax.adam(schedule), wrt=nnx.Param)

    @nnx.jit
    def train_step(network, optimizer, x, f):
        def loss_fn(network):
            return jnp.mean(_cross_entropy(network(x), f, sizes))

        loss, grads = nnx.value_and_grad(loss_fn)(network)
        optimizer.update(network, grads)
        return loss

    rng = np.random.default_rng(seed)
    start = time.time()
    for step in range(1, steps + 1):
        f, x = _sample_split(dataset, batch_size, rng, test=False)
        loss = train_step(predictor.network, optimizer, jnp.asarray(x), jnp.asarray(f))
        if step % 500 == 0 or step == steps:
            log(f"factor predictor: step {step}/{steps} loss {float(loss):.3f} "
                f"({time.time() - start:.0f}s)")
    predictor.accuracy = evaluate_predictor(predictor, dataset, num_test, seed + 1)
    log("factor predictor: held-out exact "
        + ", ".join(f"{k} {v:.3f}" for k, v in predictor.accuracy["exact"].items()))
    if target is not None:
        predictor.save(target, {"steps": steps, "dataset": dataset.name,
                                "train_seconds": time.time() - start})
    return predictor
