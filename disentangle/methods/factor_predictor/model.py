"""The ground-truth factor predictor: reads dataset factors off images (real or generated).

Generated images carry no labels, so evaluations that ask which factors an image shows
train once per dataset a classifier p(f_k | x) with one softmax head per factor k on real
images, cross-entropy summed over factors:

    loss = mean_n sum_k -log softmax(h_k(x_n))[f_nk]

Users: traversal scoring (Song et al., ICML 2023: how many factors change along a
traversal, :mod:`disentangle.traverse.score`) and SCAN's symbol -> image evaluation
(Higgins et al., ICLR 2018, :mod:`disentangle.methods.scan.evaluation`).

Network: for 64x64 images a small stride-2 conv net (:class:`ConvFactorNet`; 5x5 kernels
first so small shapes keep their outline), an MLP (``mlp_small`` of ``disentangle.nn``)
otherwise. Training draws batches inside ``jit`` from ``dataset.device_sampler()`` when the
dataset has one (procedural data renders on the device), Adam with a cosine learning-rate
schedule.

Held-out split: the factor combinations with flat grid index = 0 (mod 7) are never used
for training (their rows get zero weight in the loss) and are the test set, so the
reported accuracy is on unseen combinations. Accuracy is reported per factor exactly and
within +-1 class (meaningful for ordered factors such as position and scale) and, for
factors whose values are ambiguous under a shape's symmetry (dSprites' orientation:
square a quarter turn = 10 of 40 steps, ellipse a half turn = 20 steps), also modulo that
period (``exact_symmetric`` / ``within_1_symmetric``). The trained predictor is cached on
disk per dataset name; ``predict_proba(images) -> list of [n, size_k]``.
"""

from __future__ import annotations

import dataclasses
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

from disentangle import xla_options
from disentangle.nn import build_encoder
from disentangle.nn.trunk import ConvTrunkEncoder

HELD_OUT_MODULUS = 7
CACHE_VERSION = 2
DEFAULT_STEPS = 3000
DEFAULT_BATCH_SIZE = 128


@dataclasses.dataclass(frozen=True)
class FactorSymmetry:
    """Values of ``factor`` that render identically modulo ``periods[value of given]``."""

    factor: str
    given: str
    periods: dict[int, int]


# dSprites' orientation (40 steps of 2 pi / 40): the square repeats every quarter turn
# (10 steps), the ellipse every half turn (20 steps), the heart only after a full turn.
SYMMETRIES: dict[str, tuple[FactorSymmetry, ...]] = {
    "dsprites": (FactorSymmetry("orientation", "shape", {0: 10, 1: 20, 2: 40}),),
}


def held_out_mask(flat_index: np.ndarray) -> np.ndarray:
    """True for the held-out test combinations (flat grid index = 0 mod 7)."""
    return np.asarray(flat_index) % HELD_OUT_MODULUS == 0


class ConvFactorNet(ConvTrunkEncoder):
    """[n, 64, 64, C] -> logits [n, out_features].

    conv 32 5x5 s2 -> 64 3x3 s2 -> 64 3x3 s2 -> 128 3x3 s2 (ReLU, 'SAME') -> FC 256 (ReLU)
    -> linear head. Feature maps 32, 16, 8, 4 pixels wide; flattening keeps positions.
    """

    def __init__(self, in_channels: int, out_features: int, *, rngs: nnx.Rngs):
        chans = (in_channels, 32, 64, 64, 128)
        kernels = (5, 3, 3, 3)
        convs = [nnx.Conv(chans[i], chans[i + 1], (kernels[i], kernels[i]), strides=2,
                          padding="SAME", rngs=rngs) for i in range(4)]
        super().__init__(convs, 4 * 4 * chans[-1], out_features, rngs=rngs)


def _build_network(observation_shape: Sequence[int], out_features: int, seed: int) -> nnx.Module:
    shape = tuple(observation_shape)
    if len(shape) == 3 and shape[:2] == (64, 64):
        return ConvFactorNet(shape[2], out_features, rngs=nnx.Rngs(seed))
    return build_encoder("mlp_small", shape, out_features, nnx.Rngs(seed))


class FactorPredictor:
    """p(f_k | x) for every factor k: one network, one softmax head per factor.

    Attributes:
      factor_names, factor_sizes: the dataset's factors (K of them).
      accuracy: held-out accuracy report (see :func:`evaluate_predictor`).
    """

    def __init__(self, factor_names: Sequence[str], factor_sizes: Sequence[int],
                 observation_shape: Sequence[int], seed: int = 0):
        self.factor_names = tuple(factor_names)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.observation_shape = tuple(observation_shape)
        self.network = _build_network(self.observation_shape, sum(self.factor_sizes), seed)
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

    def predict(self, images: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Most probable class per factor, int [n, K]."""
        probs = self.predict_proba(images, batch_size)
        return np.stack([p.argmax(axis=1) for p in probs], axis=1)

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


@xla_options.jit_apply
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


def _flat_index(factors: jax.Array, sizes: Sequence[int]) -> jax.Array:
    """Row-major grid index on the device: int [n, K] -> int [n] (as factors_to_index)."""
    index = jnp.zeros(factors.shape[0], jnp.int32)
    for k, size in enumerate(sizes):
        index = index * size + factors[:, k].astype(jnp.int32)
    return index


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


def symmetric_difference(pred: np.ndarray, true: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Circular distance between class indices modulo a per-row period: int [n].

    d = min(r, period - r) with r = (pred - true) mod period; 0 when both values render
    the same image under the symmetry.
    """
    r = np.mod(np.asarray(pred) - np.asarray(true), period)
    return np.minimum(r, period - r)


def evaluate_predictor(predictor: FactorPredictor, dataset, num_test: int = 2000,
                       seed: int = 1) -> dict:
    """Held-out accuracy per factor.

    Returns ``{"exact": {name: acc}, "within_1": {...}, "mean_exact", "mean_within_1",
    "num_test"}`` and, for datasets with a :data:`SYMMETRIES` entry, ``"exact_symmetric"``
    and ``"within_1_symmetric"`` for every factor (equal to the raw figures for factors
    without a symmetry).
    """
    factors, images = _sample_split(dataset, num_test, np.random.default_rng(seed), test=True)
    pred = predictor.predict(images)
    names = predictor.factor_names
    diff = np.abs(pred - factors)
    report = {
        "exact": {n: float((diff[:, k] == 0).mean()) for k, n in enumerate(names)},
        "within_1": {n: float((diff[:, k] <= 1).mean()) for k, n in enumerate(names)},
        "mean_exact": float((diff == 0).mean()),
        "mean_within_1": float((diff <= 1).mean()),
        "num_test": int(num_test),
    }
    symmetries = SYMMETRIES.get(getattr(dataset, "name", ""), ())
    if symmetries:
        sym = diff.copy()
        for s in symmetries:
            k, g = names.index(s.factor), names.index(s.given)
            period = np.array([s.periods.get(int(v), predictor.factor_sizes[k])
                               for v in factors[:, g]])
            sym[:, k] = symmetric_difference(pred[:, k], factors[:, k], period)
        report["exact_symmetric"] = {n: float((sym[:, k] == 0).mean())
                                     for k, n in enumerate(names)}
        report["within_1_symmetric"] = {n: float((sym[:, k] <= 1).mean())
                                        for k, n in enumerate(names)}
    return report


def _cache_dir(dataset, cache_dir: str | Path | None) -> Path | None:
    name = (dataset.name or type(dataset).__name__).replace(":", "_").replace("/", "_")
    return Path(cache_dir) / f"factor_predictor_{name}" if cache_dir else None


def train_factor_predictor(dataset, *, cache_dir: str | Path | None = None,
                           steps: int = DEFAULT_STEPS, batch_size: int = DEFAULT_BATCH_SIZE,
                           learning_rate: float = 1e-3, seed: int = 0, num_test: int = 2000,
                           log: Callable[[str], None] | None = print) -> FactorPredictor:
    """Train (or load from ``cache_dir/factor_predictor_<dataset name>``) a factor predictor.

    The cache is reused when it was trained for the same factors and observation shape
    with at least as many steps. Batches come from ``dataset.device_sampler()`` inside one
    jitted step when available (held-out rows weighted 0), else from the host.
    Returns the predictor with ``accuracy`` filled in (:func:`evaluate_predictor`).
    """
    log = log or (lambda msg: None)
    target = _cache_dir(dataset, cache_dir)
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
    # Cosine decay from learning_rate to 1 % of it over the run.
    schedule = optax.cosine_decay_schedule(learning_rate, max(steps, 1), alpha=0.01)
    optimizer = nnx.Optimizer(predictor.network, optax.adam(schedule), wrt=nnx.Param)
    sampler = dataset.device_sampler()

    def update(network, optimizer, x, f, weight):
        def loss_fn(network):
            # Weighted mean over the batch; held-out rows have weight 0.
            ce = _cross_entropy(network(x), f, sizes)
            return jnp.sum(weight * ce) / jnp.maximum(jnp.sum(weight), 1.0)

        loss, grads = nnx.value_and_grad(loss_fn)(network)
        optimizer.update(network, grads)
        return loss

    @xla_options.nnx_jit
    def device_step(network, optimizer, key):
        f, x = sampler(key, batch_size)
        weight = (_flat_index(f, sizes) % HELD_OUT_MODULUS != 0).astype(jnp.float32)
        return update(network, optimizer, x.astype(jnp.float32), f.astype(jnp.int32), weight)

    @xla_options.nnx_jit
    def host_step(network, optimizer, x, f):
        return update(network, optimizer, x, f, jnp.ones(x.shape[0], jnp.float32))

    rng = np.random.default_rng(seed)
    key = jax.random.key(seed)
    start, cpu_start = time.time(), time.process_time()
    for step in range(1, steps + 1):
        if sampler is not None:
            loss = device_step(predictor.network, optimizer, jax.random.fold_in(key, step))
        else:
            f, x = _sample_split(dataset, batch_size, rng, test=False)
            loss = host_step(predictor.network, optimizer, jnp.asarray(x), jnp.asarray(f))
        if step % 500 == 0 or step == steps:
            log(f"factor predictor: step {step}/{steps} loss {float(loss):.3f} "
                f"({time.time() - start:.0f}s)")
    train_seconds, train_cpu = time.time() - start, time.process_time() - cpu_start
    predictor.accuracy = evaluate_predictor(predictor, dataset, num_test, seed + 1)
    log("factor predictor: held-out exact "
        + ", ".join(f"{k} {v:.3f}" for k, v in predictor.accuracy["exact"].items()))
    if "exact_symmetric" in predictor.accuracy:
        log("factor predictor: held-out exact (symmetry-aware) "
            + ", ".join(f"{k} {v:.3f}" for k, v in predictor.accuracy["exact_symmetric"].items()))
    if target is not None:
        predictor.save(target, {"steps": steps, "batch_size": batch_size,
                                "dataset": dataset.name, "train_seconds": train_seconds,
                                "train_cpu_seconds": train_cpu})
    return predictor


def main(argv: Sequence[str] | None = None) -> int:
    """Train (or load) and print the held-out accuracy report of one dataset's predictor.

    python -m disentangle.methods.factor_predictor.model dsprites --cache-dir DIR [--steps N]
    """
    import argparse

    from disentangle.data import get_dataset

    p = argparse.ArgumentParser(description=main.__doc__.split("\n")[0])
    p.add_argument("dataset")
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    p.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    args = p.parse_args(argv)
    predictor = train_factor_predictor(get_dataset(args.dataset), cache_dir=args.cache_dir,
                                       steps=args.steps, batch_size=args.batch_size,
                                       learning_rate=args.learning_rate)
    print(json.dumps(predictor.accuracy, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
