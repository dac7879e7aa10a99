"""Shared fixtures: tiny configs that train in seconds on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from disentangle.config import apply_overrides, load_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def tiny_config(method: str, steps: int = 30, **overrides):
    """configs/<method>_dsprites.py with an MLP and small batches: a few seconds per run."""
    config = load_config(CONFIGS / f"{method}_dsprites.py")
    apply_overrides(config, {
        "model.network": "mlp_small", "model.latent_dim": 6, "train.steps": steps,
        "train.batch_size": 32, "train.log_every": 1, "train.checkpoint_every": 10,
        "train.learning_rate": 1e-3, **overrides}.items())
    return config


@pytest.fixture
def make_config():
    return tiny_config
