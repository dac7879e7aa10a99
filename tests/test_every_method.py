"""Every registered method trains through the one trainer from its config file and resumes
exactly: in-process (a lost checkpoint, rerun) and, in the slow suite, through the CLI with
a real SIGKILL after the first checkpoint."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from disentangle import train as train_lib
from disentangle.config import load_config
from disentangle.methods import MODELS
from experiments.commands.train import method_configs

ROOT = Path(__file__).resolve().parents[1]
IMAGES = {"model.network": "mlp_small", "model.latent_dim": 4, "train.batch_size": 8,
          "train.learning_rate": 1e-3}
SERIES = {"model.hidden": 8, "train.batch_size": 8}
RF = {"data.options.n_devices": 4, "data.options.n_known": 3, "data.options.n_symbols": 1,
      "data.options.samples_per_chip": 2, "data.options.n_per_device": 8,
      "model.embed_dim": 8, "model.channels": [4, 4], "train.batch_size": 8}
DR_RFF = {**RF, "model.q_width": 4, "model.q_bottleneck": 2, "model.g_width": 4,
          "model.warmup_steps": 2}
# method -> (config file, overrides that make it tiny). "{base}" is replaced by the path of
# a tiny trained beta-VAE run (methods that build on a trained run).
TINY: dict[str, tuple[str, dict]] = {
    "ae": ("configs/ae_dsprites.py", IMAGES),
    "beta_vae": ("configs/beta_vae_dsprites.py", IMAGES),
    "beta_tcvae": ("configs/beta_tcvae_dsprites.py", IMAGES),
    "qlae": ("configs/qlae_dsprites.py", IMAGES),
    "factor_vae": ("configs/factor_vae_dsprites.py", {**IMAGES, "model.discriminator_width": 16,
                                                      "model.discriminator_depth": 2}),
    "dip_vae_i": ("configs/dip_vae_i_dsprites.py", IMAGES),
    "dip_vae_ii": ("configs/dip_vae_ii_dsprites.py", IMAGES),
    "annealed_vae": ("configs/annealed_vae_dsprites.py", {**IMAGES,
                                                          "model.iteration_threshold": 3}),
    "ada_gvae": ("configs/ada_gvae_dsprites.py", IMAGES),
    "ada_ml_vae": ("configs/ada_ml_vae_dsprites.py", IMAGES),
    "lstm_vae": ("configs/lstm_vae_ts_factors.py", SERIES),
    "lstm_beta_tcvae": ("configs/lstm_beta_tcvae_ts_factors.py", SERIES),
    "dts": ("configs/dts_ts_factors.py", SERIES),
    "dr_rff": ("configs/dr_rff_zigbee.py", DR_RFF),
    "ml_rff": ("configs/ml_rff_zigbee.py", RF),
    "ml_rff_awgn": ("configs/ml_rff_awgn_zigbee.py", RF),
    "factor_predictor": ("configs/factor_predictor.py", {"train.batch_size": 8}),
    "scan": ("configs/scan_dsprites.py", {"model.visual_run": "{base}", "model.scan_steps": 2,
                                          "train.batch_size": 8}),
    "potential_flow": ("configs/potential_flow.py", {
        "model.base_run": "{base}", "model.num_potentials": 2, "model.num_steps": 4,
        "model.hidden": 8, "model.time_features": 4, "model.classifier_network": "mlp_small",
        "model.laplacian": "hutchinson", "model.num_probes": 1, "train.batch_size": 4}),
}
STEPS = {"train.steps": 4, "train.checkpoint_every": 2, "train.log_every": 1}


@pytest.fixture(scope="module")
def base_run(tmp_path_factory) -> Path:
    """A tiny trained beta-VAE run for the methods that build on one."""
    path = tmp_path_factory.mktemp("base") / "beta_vae"
    config = load_config(ROOT / "configs/beta_vae_dsprites.py", {**IMAGES, **STEPS}.items())
    return train_lib.train_and_evaluate(config, path, progress=False)


def tiny_overrides(method: str, base: Path | None) -> dict:
    _, extra = TINY[method]
    return {k: (str(v).replace("{base}", str(base)) if isinstance(v, str) else v)
            for k, v in {**extra, **STEPS}.items()}


def test_every_registered_method_has_a_config_file_and_a_tiny_setting():
    configs = method_configs()
    missing = [m for m in MODELS if not configs.get(m)]
    assert not missing, f"methods without a config file in configs/: {missing}"
    assert set(TINY) == set(MODELS), "add every registered method to TINY"
    for method, (path, _) in TINY.items():
        assert load_config(ROOT / path).model.name == method


# The default suite resumes a single-loss method and an RF method on a finite dataset;
# every method (SCAN's frozen parent run and two stages among them: 14 s) runs under -m slow.
FAST = ("ae", "ml_rff")


@pytest.mark.parametrize("method", [m if m in FAST else pytest.param(m, marks=pytest.mark.slow)
                                    for m in sorted(TINY)])
def test_resume_after_a_lost_checkpoint_is_exact(method, tmp_path, request):
    """Train 4 steps (checkpoints at 2 and 4); lose checkpoint 4 as a kill would, rerun:
    the resumed run logs bit-identical losses at every step."""
    base = request.getfixturevalue("base_run") if "{base}" in str(TINY[method][1]) else None
    config = load_config(ROOT / TINY[method][0], tiny_overrides(method, base).items())
    full = train_lib.train_and_evaluate(config, tmp_path / "full", progress=False)
    shutil.copytree(full, tmp_path / "killed")
    shutil.rmtree(tmp_path / "killed" / "checkpoints" / "4")
    train_lib.train_and_evaluate(config, tmp_path / "killed", progress=False)
    a, b = train_lib.read_log(full), train_lib.read_log(tmp_path / "killed")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    drop = ("images_per_sec", "time")
    assert [{k: v for k, v in r.items() if k not in drop} for r in b] == [
        {k: v for k, v in r.items() if k not in drop} for r in a]


@pytest.mark.slow
@pytest.mark.parametrize("method", sorted(TINY))
def test_cli_sigkill_after_first_checkpoint_resumes_exactly(method, tmp_path, request):
    base = request.getfixturevalue("base_run") if "{base}" in str(TINY[method][1]) else None
    overrides = {**tiny_overrides(method, base), "train.steps": 12,
                 "train.checkpoint_every": 4}
    args = [sys.executable, "-m", "experiments.cli", "train", TINY[method][0],
            *(f"{k}={v}".replace(" ", "") for k, v in overrides.items()), "--no-progress"]
    subprocess.run([*args, "--workdir", str(tmp_path / "full")], check=True, cwd=ROOT)
    proc = subprocess.Popen([*args, "--workdir", str(tmp_path / "killed")], cwd=ROOT)
    first = tmp_path / "killed" / "checkpoints" / "4"
    while not first.exists() and proc.poll() is None:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([*args, "--workdir", str(tmp_path / "killed")], check=True, cwd=ROOT)
    a, b = (train_lib.read_log(tmp_path / d) for d in ("full", "killed"))
    assert [r["step"] for r in b] == list(range(1, 13))
    assert [r["loss"] for r in b] == [r["loss"] for r in a]
