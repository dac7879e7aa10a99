"""Finished (or partly trained) runs from Python: the notebook API.

    import disentangle
    run = disentangle.load_run("runs/qlae")      # config, dataset, restored model
    rep = run.encode(images)                     # {"mean": [n, L], "logvar"?, "codes"?}
    probs = run.decode(rep["mean"])              # [n, *obs] in [0, 1]
    grid = run.traverse(num_seeds=2)             # Traversals: images [s, L, steps, *obs]
    scores = run.evaluate(num_samples=5000)      # metrics.evaluate's flat dict
    table = disentangle.results("runs/sweep")    # pandas DataFrame, one row per run

See docs/notebook.ipynb for a worked example (executed by the test suite).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import ml_collections
import numpy as np

from disentangle import train as train_lib
from disentangle.data import GroundTruthData
from disentangle.errors import UserError
from disentangle.methods import Method


@dataclasses.dataclass
class Run:
    """A run directory with its config, dataset and the model at ``step``."""

    path: Path
    config: ml_collections.ConfigDict
    dataset: GroundTruthData
    model: Method
    step: int

    @property
    def figures(self) -> Path:
        (self.path / "figures").mkdir(exist_ok=True)
        return self.path / "figures"

    def log(self) -> list[dict]:
        """The rows of metrics.jsonl."""
        return train_lib.read_log(self.path)

    def encode(self, x: np.ndarray, batch_size: int = 256) -> dict[str, np.ndarray]:
        """Representation of observations ``x [n, *obs]``: ``mean`` [n, L] and, where the
        method has them, ``logvar`` [n, L] and integer ``codes`` [n, L]."""
        from disentangle.represent import encode_batches

        mean, logvar, codes = encode_batches(self.model, np.asarray(x, np.float32), batch_size)
        return {k: v for k, v in (("mean", mean), ("logvar", logvar), ("codes", codes))
                if v is not None}

    def decode(self, z: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Observations ``sigmoid(decode(z))`` [n, *obs] in [0, 1] of latents ``z [n, L]``."""
        from disentangle.traverse.common import decode_images

        return decode_images(self.model, np.asarray(z, np.float32), batch_size)

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """``decode(encode(x).mean)``: the deterministic reconstruction of ``x``."""
        return self.decode(self.encode(x)["mean"])

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` (factors int [n, K], observations [n, *obs]) of the run's dataset."""
        return self.dataset.sample(n, np.random.default_rng(seed))

    def traverse(self, num_seeds: int = 1, num_steps: int = 11, seed: int = 0):
        """Linear traversals of every latent from ``num_seeds`` dataset images
        (:class:`disentangle.traverse.common.Traversals`, images [s, L, steps, *obs])."""
        from disentangle.traverse.linear import linear_traversals

        _, seeds = self.sample(num_seeds, seed)
        _, data = self.sample(1000, seed + 1)
        return linear_traversals(self.model, seeds, data, num_steps)

    def evaluate(self, num_samples: int = 10_000, metrics: list[str] | None = None,
                 seed: int = 0) -> dict:
        """The metric suite (or ``metrics``) on the primary representation of a fixed
        sample (nothing is written; ``disentangle evaluate`` writes eval.json)."""
        import metrics as metrics_lib
        from disentangle.represent import represent

        enc = represent(self.model, self.dataset, num_samples, seed)
        codes = next(iter(enc.representations().values()))
        return metrics_lib.evaluate(codes, enc.factors, names=metrics)


def load_run(path: str | Path, step: int | None = None) -> Run:
    """Restore the model of the run in ``path`` from its latest (or given) checkpoint."""
    path = Path(path)
    cfg_path = path / "config.json"
    if not cfg_path.exists():
        raise UserError(f"{path} is not a run directory (no config.json); "
                        "create one with `disentangle train CONFIG --workdir DIR`")
    config = ml_collections.ConfigDict(json.loads(cfg_path.read_text()))
    s = train_lib.setup(config)
    manager = train_lib.checkpoint_manager(path)
    target = train_lib._target(s, jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32))
    if step is not None and step not in manager.all_steps():
        raise UserError(f"{path} has no checkpoint at step {step}; it has {manager.all_steps()}")
    restored = train_lib.restore_checkpoint(manager, target, step)
    manager.close()
    if restored is None:
        raise UserError(f"{path} has no checkpoint yet; train it first")
    step, state = restored
    return Run(path, config, s.dataset, s.model(state["params"]), step)


def results(path: str | Path):
    """A pandas DataFrame with one row per run in ``path`` (a run or a sweep directory):
    ``run``, ``path``, ``method``, ``dataset``, ``seed``, ``step`` (latest logged), the
    flattened ``model.*`` / ``train.*`` / ``data.*`` settings, the last logged training
    terms (``train/loss``, ...) and the scalar scores of eval.json's primary
    representation (``infom``, ``mig``, ..., ``reconstruction``)."""
    import pandas as pd

    from disentangle import config as config_lib
    from disentangle.report import find_runs

    rows = []
    for run in find_runs(Path(path)):
        if not (run / "config.json").exists():
            continue
        cfg = json.loads((run / "config.json").read_text())
        flat = {k: (tuple(v) if isinstance(v, list) else v)
                for k, v in config_lib.flatten(cfg).items() if not k.startswith("eval.")}
        row = {"run": run.name, "path": str(run), "method": cfg["model"]["name"],
               "dataset": cfg["data"]["name"], "seed": cfg["train"]["seed"], **flat}
        log = train_lib.read_log(run)
        if log:
            row["step"] = log[-1]["step"]
            row |= {f"train/{k}": v for k, v in log[-1].items() if k not in ("step", "time")}
        ev_path = run / "eval.json"
        if ev_path.exists():
            ev = json.loads(ev_path.read_text())
            scores = ev["representations"][ev["primary"]]
            row |= {k: v for k, v in scores.items()
                    if isinstance(v, int | float) and not isinstance(v, bool)}
            row["reconstruction"] = ev["reconstruction"]
        rows.append(row)
    return pd.DataFrame(rows)


def is_finished(path: str | Path) -> bool:
    """True when the run's latest checkpoint is at its configured ``train.steps``."""
    path = Path(path)
    if not (path / "config.json").exists() or not (path / "checkpoints").exists():
        return False
    steps = json.loads((path / "config.json").read_text())["train"]["steps"]
    done = [int(p.name) for p in (path / "checkpoints").iterdir() if p.name.isdigit()]
    return bool(done) and max(done) >= steps
