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
otherwise. It is the registered method ``factor_predictor`` (objective ``loss``), trained
by the one trainer (``configs/factor_predictor.py``): Adam with a cosine learning-rate
decay from ``train.learning_rate`` to 1 % of it over ``train.steps``.

Held-out split: the factor combinations with flat grid index = 0 (mod 7) are never used
for training (their rows get zero weight in the loss) and are the test set, so the
reported accuracy is on unseen combinations. Accuracy is reported per factor exactly and
within +-1 class (meaningful for ordered factors such as position and scale) and, for
factors whose values are ambiguous under a shape's symmetry (dSprites' orientation:
square a quarter turn = 10 of 40 steps, ellipse a half turn = 20 steps), also modulo that
period (``exact_symmetric`` / ``within_1_symmetric``). :func:`train_factor_predictor`
trains (or resumes, or reuses) an ordinary run directory per dataset in a cache
directory; ``predict_proba(images) -> list of [n, size_k]``.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import scipy.special
from flax import nnx

from disentangle import xla_options
from disentangle.errors import ConfigError, UserError
from disentangle.methods.base import Batch, DataSpec, Method, register_model
from disentangle.nn import build_encoder
from disentangle.nn.trunk import ConvTrunkEncoder

HELD_OUT_MODULUS = 7
DEFAULT_STEPS = 3000
DEFAULT_BATCH_SIZE = 128
CONFIG_FILE = Path(__file__).resolve().parents[3] / "configs" / "factor_predictor.py"


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


def _build_network(observation_shape: Sequence[int], out_features: int,
                   rngs: nnx.Rngs) -> nnx.Module:
    shape = tuple(observation_shape)
    if len(shape) == 3 and shape[:2] == (64, 64):
        return ConvFactorNet(shape[2], out_features, rngs=rngs)
    return build_encoder("mlp_small", shape, out_features, rngs)


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


@register_model("factor_predictor")
class FactorClassifier(Method):
    """The trainable method: one network, one softmax head per factor.

    Objective (``loss``), with weight w_n = 0 for held-out combinations (flat grid index
    = 0 mod 7) and 1 otherwise:

        loss = sum_n w_n sum_k -log softmax(h_k(x_n))[f_nk] / max(sum_n w_n, 1)
    """

    def __init__(self, observation_shape: Sequence[int], factor_sizes: Sequence[int], *,
                 rngs: nnx.Rngs):
        if not factor_sizes:
            raise ConfigError("factor_predictor needs a dataset with ground-truth factors; "
                              "this data section has none")
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.latent_dim = sum(self.factor_sizes)
        self.network = _build_network(observation_shape, self.latent_dim, rngs)

    @classmethod
    def from_config(cls, config: ml_collections.ConfigDict, spec: DataSpec, rngs: nnx.Rngs):
        return cls(spec.observation_shape, spec.factor_sizes, rngs=rngs)

    def optimizers(self, train: ml_collections.ConfigDict
                   ) -> dict[str, optax.GradientTransformation]:
        """Adam, cosine decay from ``train.learning_rate`` to 1 % of it over ``train.steps``
        (extending a finished run restarts the decay over the new length)."""
        schedule = optax.cosine_decay_schedule(train.learning_rate, max(train.steps, 1),
                                               alpha=0.01)
        return {"model": optax.adam(schedule)}

    def logits(self, x: jax.Array) -> jax.Array:
        """[n, *obs] -> concatenated logits [n, sum_k size_k]."""
        return self.network(x)

    def loss(self, batch: Batch, key: jax.Array) -> tuple[jax.Array, dict[str, jax.Array]]:
        factors = batch.factors.astype(jnp.int32)
        weight = (_flat_index(factors, self.factor_sizes) % HELD_OUT_MODULUS != 0)
        weight = weight.astype(jnp.float32)
        logits = self.network(batch.x.astype(jnp.float32))
        ce = _cross_entropy(logits, factors, self.factor_sizes)
        loss = jnp.sum(weight * ce) / jnp.maximum(jnp.sum(weight), 1.0)
        start, correct = 0, []
        for k, size in enumerate(self.factor_sizes):
            correct.append(jnp.argmax(logits[:, start:start + size], -1) == factors[:, k])
            start += size
        accuracy = jnp.sum(weight * jnp.mean(jnp.stack(correct), 0)) / jnp.maximum(
            jnp.sum(weight), 1.0)
        return loss, {"train_accuracy": accuracy, "held_out_share": 1.0 - jnp.mean(weight)}


class FactorPredictor:
    """p(f_k | x) for every factor k from a trained :class:`FactorClassifier`.

    Attributes:
      factor_names, factor_sizes: the dataset's factors (K of them).
      accuracy: held-out accuracy report (see :func:`evaluate_predictor`).
    """

    def __init__(self, factor_names: Sequence[str], factor_sizes: Sequence[int],
                 observation_shape: Sequence[int], network: nnx.Module | None = None,
                 seed: int = 0):
        self.factor_names = tuple(factor_names)
        self.factor_sizes = tuple(int(s) for s in factor_sizes)
        self.observation_shape = tuple(observation_shape)
        self.network = network if network is not None else _build_network(
            self.observation_shape, sum(self.factor_sizes), nnx.Rngs(seed))
        self.accuracy: dict = {}
        self.step = 0  # training steps of the restored run
        self._split = np.cumsum(self.factor_sizes)[:-1]

    @classmethod
    def from_run(cls, path: str | Path) -> FactorPredictor:
        """The predictor of a trained ``factor_predictor`` run (latest checkpoint)."""
        from disentangle.runs import load_run

        run = load_run(path)
        if not isinstance(run.model, FactorClassifier):
            raise UserError(f"{path} is a {run.config.model.name!r} run, not a factor_predictor "
                            "run")
        predictor = cls(run.dataset.factor_names, run.dataset.factor_sizes,
                        run.dataset.observation_shape, run.model.network)
        predictor.step = run.step
        return predictor

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


@xla_options.jit_apply
def _logits(network: nnx.Module, x: jax.Array) -> jax.Array:
    return network(x)


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
    return Path(cache_dir).expanduser() / f"factor_predictor_{name}" if cache_dir else None


def predictor_config(dataset_name: str, steps: int = DEFAULT_STEPS,
                     batch_size: int = DEFAULT_BATCH_SIZE, learning_rate: float = 1e-3,
                     seed: int = 0) -> ml_collections.ConfigDict:
    """``configs/factor_predictor.py`` for one dataset and training length."""
    from disentangle.config import load_config

    if not CONFIG_FILE.is_file():
        raise UserError(f"{CONFIG_FILE} is missing; the factor predictor trains from that "
                        "config file of the repository")
    return load_config(CONFIG_FILE, [
        ("data.name", dataset_name), ("train.steps", int(steps)),
        ("train.batch_size", int(batch_size)), ("train.learning_rate", float(learning_rate)),
        ("train.seed", int(seed))])


def _reusable(run_dir: Path, config: ml_collections.ConfigDict) -> int:
    """Steps of the finished run in ``run_dir`` if it has ``config`` but for more or as many
    ``train.steps``; else 0."""
    from disentangle.config import to_json
    from disentangle.runs import is_finished

    path = run_dir / "config.json"
    if not path.exists() or not is_finished(run_dir):
        return 0
    stored = json.loads(path.read_text())
    steps = stored["train"]["steps"]
    wanted = json.loads(to_json(config))
    wanted["train"]["steps"] = steps
    return steps if steps >= config.train.steps and wanted == stored else 0


def train_factor_predictor(dataset, *, cache_dir: str | Path | None = None,
                           steps: int = DEFAULT_STEPS, batch_size: int = DEFAULT_BATCH_SIZE,
                           learning_rate: float = 1e-3, seed: int = 0, num_test: int = 2000,
                           log: Callable[[str], None] | None = print) -> FactorPredictor:
    """Train, resume or reuse the factor predictor of ``dataset`` (a registry dataset).

    The run is ``configs/factor_predictor.py`` for ``dataset.name`` trained by
    :func:`disentangle.train.train_and_evaluate` into ``cache_dir/factor_predictor_<name>``
    (a temporary directory without ``cache_dir``), an ordinary run directory: a killed
    training resumes, and a finished run trained with the same settings and at least
    ``steps`` steps is reused as it is. Returns the predictor with ``accuracy`` filled in
    (:func:`evaluate_predictor` on ``num_test`` held-out combinations, stored in the run
    directory as ``accuracy.json``).
    """
    from disentangle.data import DATASETS
    from disentangle.train import train_and_evaluate

    log = log or (lambda msg: None)
    try:
        DATASETS.get(dataset.name)
    except KeyError:
        raise UserError(
            f"train_factor_predictor: dataset name {dataset.name!r} is not a registered "
            "dataset; the trainer rebuilds the dataset from its name (save your arrays as an "
            ".npz file and use get_dataset('npz:PATH'))") from None
    if cache_dir is None:
        with tempfile.TemporaryDirectory() as tmp:
            return train_factor_predictor(dataset, cache_dir=tmp, steps=steps,
                                          batch_size=batch_size, learning_rate=learning_rate,
                                          seed=seed, num_test=num_test, log=log)
    target = _cache_dir(dataset, cache_dir)
    config = predictor_config(dataset.name, steps, batch_size, learning_rate, seed)
    reused = _reusable(target, config)
    if reused:
        log(f"factor predictor: loaded from {target} ({reused} steps)")
    else:
        began, cpu_began = time.time(), time.process_time()
        try:
            train_and_evaluate(config, target, progress=False)
        except ConfigError as err:
            raise UserError(f"{target} holds a factor predictor trained with other settings "
                            f"({err}); delete it or pass another cache_dir") from None
        log(f"factor predictor: trained {steps} steps in {time.time() - began:.0f}s "
            f"({time.process_time() - cpu_began:.0f} CPU-s) -> {target}")
    predictor = FactorPredictor.from_run(target)
    predictor.accuracy = _accuracy(predictor, dataset, target, num_test, seed + 1)
    log("factor predictor: held-out exact "
        + ", ".join(f"{k} {v:.3f}" for k, v in predictor.accuracy["exact"].items()))
    if "exact_symmetric" in predictor.accuracy:
        log("factor predictor: held-out exact (symmetry-aware) "
            + ", ".join(f"{k} {v:.3f}" for k, v in predictor.accuracy["exact_symmetric"].items()))
    return predictor


def _accuracy(predictor: FactorPredictor, dataset, run_dir: Path, num_test: int,
              seed: int) -> dict:
    """:func:`evaluate_predictor`, cached in ``run_dir/accuracy.json`` per checkpoint step."""
    path = run_dir / "accuracy.json"
    key = f"step{predictor.step}_n{num_test}_seed{seed}"
    cached = json.loads(path.read_text()) if path.exists() else {}
    if key not in cached:
        cached[key] = evaluate_predictor(predictor, dataset, num_test, seed)
        path.write_text(json.dumps(cached, indent=1))
    return cached[key]


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
