"""Loading finished (or partly trained) runs: config, dataset and restored model."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jax.numpy as jnp
import ml_collections

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
        return train_lib.read_log(self.path)


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


def is_finished(path: str | Path) -> bool:
    """True when the run's latest checkpoint is at its configured ``train.steps``."""
    path = Path(path)
    if not (path / "config.json").exists() or not (path / "checkpoints").exists():
        return False
    steps = json.loads((path / "config.json").read_text())["train"]["steps"]
    done = [int(p.name) for p in (path / "checkpoints").iterdir() if p.name.isdigit()]
    return bool(done) and max(done) >= steps
