"""Configs and overrides: unknown keys and wrong types fail before any work."""

from __future__ import annotations

from pathlib import Path

import pytest

from disentangle.config import apply_overrides, base_config, load_config
from disentangle.errors import ConfigError
from experiments.cli import main

CONFIGS = sorted(Path(__file__).parents[1].glob("configs/*_dsprites.py"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_every_config_file_has_the_required_keys_and_a_runnable_docstring(path):
    config = load_config(path)
    for key in ("data.name", "model.name", "train.steps", "train.batch_size", "train.seed",
                "train.learning_rate", "train.log_every", "train.checkpoint_every"):
        section, name = key.split(".")
        assert name in config[section], key
    import importlib.util

    spec = importlib.util.spec_from_file_location("c", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert f"disentangle train configs/{path.name}" in module.__doc__
    assert "CPU" in module.__doc__ and "GPU" in module.__doc__


def test_overrides_parse_to_the_default_type():
    config = apply_overrides(base_config("ae"), ["train.steps=12", "train.learning_rate=1",
                                                 "model.network=mlp", "data.options.foo=3"])
    assert config.train.steps == 12 and isinstance(config.train.steps, int)
    assert config.train.learning_rate == 1.0 and isinstance(config.train.learning_rate, float)
    assert config.model.network == "mlp"
    assert config.data.options.foo == 3  # options sections take any key


def test_unknown_key_names_it_and_the_closest_keys():
    with pytest.raises(ConfigError, match=r"'train.stesp'.*train\.steps"):
        apply_overrides(base_config("ae"), ["train.stesp=3"])


def test_wrong_type_names_key_and_type():
    with pytest.raises(ConfigError, match=r"train\.steps='ten': expected int"):
        apply_overrides(base_config("ae"), ["train.steps=ten"])
    with pytest.raises(ConfigError, match=r"train\.batch_size='2\.5': expected int"):
        apply_overrides(base_config("ae"), ["train.batch_size=2.5"])


def test_cli_unknown_key_fails_before_training(tmp_path, capsys):
    code = main(["train", "configs/qlae_dsprites.py", "model.not_a_key=1",
                 "--workdir", str(tmp_path / "w")])
    assert code == 2
    assert "not_a_key" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_cli_bad_optimizer_is_explained(tmp_path, capsys):
    code = main(["train", "configs/ae_dsprites.py", "train.optimizer=sgd", "train.steps=1",
                 "--workdir", str(tmp_path / "w")])
    assert code == 2
    assert "train.optimizer='sgd'; accepted: 'adam', 'adamw'" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()  # nothing written for a config that cannot train
