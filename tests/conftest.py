"""Shared fixtures: tiny configs that train in seconds on CPU; one compilation cache for
the session."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from disentangle import xla_options
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


# The suite is compile-bound: many tests build the same programs (the tiny configs' train
# steps, their evaluation). JAX's persistent cache, in a directory of this session shared by
# the xdist workers and the commands tests start (never the user's cache) and removed at the
# end, compiles each once.
SESSION_CACHE_ENV = "DISENTANGLE_TEST_SESSION_CACHE"


def pytest_configure(config):
    if SESSION_CACHE_ENV not in os.environ:  # the controller (or a run without xdist)
        os.environ[SESSION_CACHE_ENV] = tempfile.mkdtemp(prefix="disentangle-test-jax-cache-")
        config._session_cache_owner = True
    os.environ[xla_options.CACHE_ENV] = os.environ[SESSION_CACHE_ENV]
    xla_options.enable_compilation_cache(min_compile_seconds=0)


def pytest_unconfigure(config):
    if getattr(config, "_session_cache_owner", False):
        shutil.rmtree(os.environ.pop(SESSION_CACHE_ENV), ignore_errors=True)
        os.environ.pop(xla_options.CACHE_ENV, None)
