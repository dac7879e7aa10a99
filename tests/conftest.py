"""Shared fixtures: tiny configs that train in seconds on CPU."""

from __future__ import annotations

import pytest

from disentangle.config import apply_overrides, base_config

METHOD_OVERRIDES = {
    "ae": {},
    "beta_vae": {"model.beta": 4.0},
    "beta_tcvae": {"model.beta": 6.0},
    "qlae": {"model.values_per_latent": 10, "model.quantization_weight": 0.01,
             "model.commitment_weight": 0.01, "train.optimizer": "adamw",
             "train.weight_decay": 0.1, "train.clip_value": 1.0, "train.learning_rate": 1e-3},
}

def tiny_config(method: str, steps: int = 30, **overrides):
    """An MLP model on dSprites with small batches: a few seconds per run."""
    config = base_config(method)
    for key, value in METHOD_OVERRIDES[method].items():
        section, name = key.split(".")
        with config[section].unlocked():
            config[section][name] = value
    apply_overrides(config, {
        "model.network": "mlp_small", "model.latent_dim": 6, "train.steps": steps,
        "train.batch_size": 32, "train.log_every": 1, "train.checkpoint_every": 10,
        "train.learning_rate": 1e-3, **overrides}.items())
    return config

@pytest.fixture
def make_config():
    return tiny_config
