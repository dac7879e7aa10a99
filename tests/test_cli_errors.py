"""Bad input on the command line: one line ``error: ...``, exit status 2, nothing written.

Each probe reproduces a mistake a new user made (issue 21) through ``experiments.cli.main``.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from disentangle.config import base_config, load_config, validate
from disentangle.data import DATASETS, get_dataset
from disentangle.errors import ConfigError, DataError, UnknownNameError, UserError
from experiments.cli import main

REPO = Path(__file__).resolve().parents[1]
AE = str(REPO / "configs/ae_dsprites.py")
BETA_VAE = str(REPO / "configs/beta_vae_dsprites.py")
DTS = str(REPO / "configs/dts_ts_factors.py")
TINY = ["train.steps=2", "train.batch_size=8", "model.network=mlp_small", "model.latent_dim=4",
        "train.log_every=1", "train.checkpoint_every=1"]


def cli(capsys, *argv: str) -> tuple[int, str]:
    """(exit status, stderr) of ``disentangle ARGV``."""
    code = main(list(argv))
    return code, capsys.readouterr().err


def one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ----------------------------------------------------------------------------- config ranges
RANGE_PROBES = [
    (AE, ["train.batch_size=0"], "train.batch_size=0; accepted: an integer >= 1 (from the "
     "command line)"),
    (AE, ["train.batch_size=-4"], "train.batch_size=-4; accepted: an integer >= 1"),
    (AE, ["train.steps=-5"], "train.steps=-5; accepted: an integer >= 1"),
    (AE, ["train.steps=0"], "train.steps=0; accepted: an integer >= 1"),
    (AE, ["train.learning_rate=-0.01"], "train.learning_rate=-0.01; accepted: a finite number > 0"),
    (AE, ["train.learning_rate=0"], "train.learning_rate=0.0; accepted: a finite number > 0"),
    (AE, ["train.learning_rate=inf"], "train.learning_rate=inf; accepted: a finite number > 0"),
    (AE, ["train.learning_rate=1e999"], "train.learning_rate=inf; accepted"),
    (AE, ["train.learning_rate=nan"], "train.learning_rate=nan; accepted: a finite number > 0"),
    (AE, ["model.latent_dim=0"], "model.latent_dim=0; accepted: an integer >= 1"),
    (AE, ["train.optimizer=adamw", "train.weight_decay=-0.1"],
     "train.weight_decay=-0.1; accepted: a finite number >= 0"),
    (AE, ["train.clip_value=nan"], "train.clip_value=nan; accepted: a finite number >= 0"),
    (AE, ["train.log_every=0"], "train.log_every=0; accepted: an integer >= 1"),
    (AE, ["train.checkpoint_every=-1"], "train.checkpoint_every=-1; accepted: an integer >= 1"),
    (AE, ["train.keep_checkpoints=0"], "train.keep_checkpoints=0; accepted: an integer >= 1"),
    (AE, ["train.num_seeds=0"], "train.num_seeds=0; accepted: an integer >= 1"),
    (AE, ["eval.num_samples=0"], "eval.num_samples=0; accepted: an integer >= 1"),
    (AE, ["train.seed=-1"], "train.seed=-1; accepted: an integer >= 0 and <= 2147483647"),
    (AE, ["train.seed=4294967296"], "train.seed=4294967296; accepted: an integer >= 0"),
    (AE, ["train.optimizer=sgd"], "train.optimizer='sgd'; accepted: 'adam', 'adamw'"),
    (AE, ["train.weight_decay=0.1"], "train.weight_decay=0.1 (from the command line) needs "
     "train.optimizer='adamw'; train.optimizer='adam' (from "),
    (BETA_VAE, ["model.beta=nan"], "model.beta=nan; accepted: a finite number"),
    (AE, ["data.name=nope"], "unknown dataset 'nope' (data.name, from the command line). "
     "Known: "),
    (AE, ["data.name=dsprite"], "Did you mean 'dsprites'"),
    (AE, ["model.name=nope"], "unknown model 'nope' (model.name, from the command line)."),
    (AE, ["model.network=conv65"], "unknown network 'conv65' (model.network, from the command "
     "line). Did you mean 'conv64'"),
    (AE, ["model.reconstruction=poisson"], "unknown reconstruction loss 'poisson'"),
    (AE, ["eval.metrics=('mig','dcx')"], "eval.metrics=('mig', 'dcx') (from the command "
     "line): unknown metric 'dcx'; accepted: "),
    (AE, ["data.options.foo=3"], "data.options.foo=3 (from the command line): dataset "
     "'dsprites' takes no option 'foo'; its options: none"),
    (DTS, ["data.options.length=abc"], "data.options.length='abc' (from the command line): "
     "dataset 'ts_factors' takes int values (like the default 64)"),
    (DTS, ["data.options.length=True"], "dataset 'ts_factors' takes int values"),
    (DTS, ["data.options.lenght=32"], "takes no option 'lenght'; its options: length"),
]


@pytest.mark.parametrize("config, overrides, message", RANGE_PROBES,
                         ids=[" ".join(p[1]) for p in RANGE_PROBES])
def test_bad_value_is_one_line_and_writes_nothing(tmp_path, capsys, config, overrides, message):
    work = tmp_path / "w"
    code, err = cli(capsys, "train", config, *TINY, *overrides, "--workdir", str(work))
    one_line_error(code, err, message)
    assert not work.exists()


def test_every_problem_is_listed_in_the_one_line(tmp_path, capsys):
    code, err = cli(capsys, "train", AE, *TINY, "train.steps=0", "train.batch_size=-1",
                    "--workdir", str(tmp_path / "w"))
    one_line_error(code, err, "train.steps=0;", "train.batch_size=-1;")


def test_value_from_the_config_file_names_the_file(tmp_path, capsys):
    path = tmp_path / "my_config.py"
    path.write_text("from disentangle.config import base_config\n\n\ndef get_config():\n"
                    "    config = base_config('ae')\n    config.train.steps = -3\n"
                    "    return config\n")
    code, err = cli(capsys, "train", str(path), "--workdir", str(tmp_path / "w"))
    one_line_error(code, err, f"train.steps=-3; accepted: an integer >= 1 (from {path})")


@pytest.mark.slow
def test_refused_config_writes_nothing_so_the_corrected_rerun_trains(tmp_path, capsys):
    """Issue 21: batch_size=-4 used to leave config.json, and the fix was then refused.
    (The fast probes above assert that nothing is written; this one trains the fix.)"""
    work = tmp_path / "w"
    code, err = cli(capsys, "train", AE, *TINY, "train.batch_size=-4", "--workdir", str(work))
    one_line_error(code, err, "train.batch_size=-4")
    assert not work.exists()
    assert main(["train", AE, *TINY, "--workdir", str(work), "--no-progress"]) == 0
    assert json.loads((work / "config.json").read_text())["train"]["batch_size"] == 8


def test_shipped_configs_validate():
    for path in sorted((REPO / "configs").glob("*.py")):
        validate(load_config(path), str(path))
    with pytest.raises(ConfigError, match="train.steps is missing in x.py"):
        config = base_config("ae")
        del config.train["steps"]
        validate(config, "x.py")


@pytest.mark.slow
def test_study_configs_validate():
    """validate refuses no config the studies train (the trainer calls it too)."""
    from experiments import be_more_active, dts, qlae_vs_vae, scan_eeg, scan_shapes

    for mode in qlae_vs_vae.MODES.values():
        for network in mode["networks"]:
            for method in mode["methods"][network]:
                validate(load_config(qlae_vs_vae.CONFIGS / qlae_vs_vae.METHODS[method][0],
                                     qlae_vs_vae.overrides(mode, network, method, 0).items()))
    for mode in be_more_active.MODES.values():
        for beta in mode["betas"]:
            validate(load_config(be_more_active.CONFIG, be_more_active.overrides(mode, beta, 0)))
    for mode in dts.MODES.values():
        for model in dts.method_configs(mode["obs_std"], 8, (4, 2, 2)).values():
            validate(dts.make_config(model, "ts_factors", {}, mode["proc_steps"], 0,
                                     mode["hidden"]))
    for mode in scan_eeg.MODES.values():
        validate(scan_eeg.visual_config(mode, 0))
    for mode in scan_shapes.MODES.values():
        validate(scan_shapes.visual_config("dsprites", mode, 0))


# ----------------------------------------------------------------------------- CLI behaviour
def test_debug_flag_and_environment_show_the_traceback(tmp_path, capsys, monkeypatch):
    argv = ["train", AE, "data.name=nope", "--workdir", str(tmp_path / "w")]
    monkeypatch.delenv("DISENTANGLE_DEBUG", raising=False)
    for args in (["--debug", *argv], [*argv, "--debug"]):
        code, err = cli(capsys, *args)
        assert code == 2 and "Traceback (most recent call last)" in err
        assert "ConfigError" in err and err.strip().splitlines()[-1].startswith("error: ")
    monkeypatch.setenv("DISENTANGLE_DEBUG", "1")
    code, err = cli(capsys, *argv)
    assert code == 2 and "Traceback" in err
    monkeypatch.setenv("DISENTANGLE_DEBUG", "0")
    one_line_error(*cli(capsys, *argv), "unknown dataset 'nope'")


def test_overrides_may_follow_options_and_unknown_flags_are_refused(tmp_path, capsys):
    code, err = cli(capsys, "train", AE, "--workdir", str(tmp_path / "w"), "--no-progress",
                    "train.steps=0")
    one_line_error(code, err, "train.steps=0; accepted")
    with pytest.raises(SystemExit) as exit_:
        main(["train", AE, "--workdir", str(tmp_path / "w"), "--bogus"])
    assert exit_.value.code == 2 and "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_unwritable_workdir_is_one_line(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, err = cli(capsys, "train", AE, *TINY, "--workdir", str(blocker / "w"), "--no-progress")
    one_line_error(code, err, str(blocker), "--debug shows the traceback")


# ----------------------------------------------------------------------------- config files
BROKEN_FILES = {
    "syntax": ("def get_config(:\n    pass\n", "line 1: syntax error"),
    "raises": ("from disentangle.config import base_config\n\n\ndef get_config():\n"
               "    config = base_config('ae')\n    config.train.steps = 10 // 0\n"
               "    return config\n", "line 6: ZeroDivisionError: integer division or modulo by "
               "zero (while running get_config())"),
    "module_error": ("import math\nVALUE = undefined_name\n",
                     "line 2: NameError: name 'undefined_name' is not defined (while loading it)"),
    "returns_dict": ("def get_config():\n    return {'train': {}}\n",
                     "get_config() returned dict; expected an ml_collections.ConfigDict"),
    "no_get_config": ("X = 1\n", "defines no get_config()"),
}


@pytest.mark.parametrize("kind", BROKEN_FILES)
def test_broken_config_file_names_file_and_line(tmp_path, capsys, kind):
    text, message = BROKEN_FILES[kind]
    path = tmp_path / f"{kind}.py"
    path.write_text(text)
    code, err = cli(capsys, "train", str(path), "--workdir", str(tmp_path / "w"))
    one_line_error(code, err, str(path), message)
    assert not (tmp_path / "w").exists()


def test_missing_directory_or_non_python_config_file(tmp_path, capsys):
    work = str(tmp_path / "w")
    one_line_error(*cli(capsys, "train", str(tmp_path / "nope.py"), "--workdir", work),
                   "nope.py' does not exist; expected a Python file")
    one_line_error(*cli(capsys, "train", str(tmp_path), "--workdir", work),
                   f"config file '{tmp_path}' is a directory")
    (tmp_path / "config.json").write_text("{}")
    one_line_error(*cli(capsys, "train", str(tmp_path / "config.json"), "--workdir", work),
                   "config.json' is not a Python file; expected a .py file that defines "
                   "get_config()")


# ----------------------------------------------------------------------------- registries
def test_unknown_registry_name_is_a_user_error_and_a_key_error():
    with pytest.raises(UnknownNameError) as info:
        get_dataset("nope")
    assert isinstance(info.value, KeyError) and isinstance(info.value, UserError)
    assert str(info.value).startswith("unknown dataset 'nope'. Known: ")  # no KeyError quotes
    with pytest.raises(KeyError, match=r"\(data.name\)"):
        DATASETS.get("nope", where="data.name")
    with pytest.raises(KeyError, match="Known"):
        DATASETS.get(["not", "a", "name"])  # unhashable: still the registry's error


# ----------------------------------------------------------------------------- npz files
def _npz(path: Path, shape=(20, 64, 64, 1), compressed: bool = False) -> Path:
    rng = np.random.default_rng(0)
    save = np.savez_compressed if compressed else np.savez
    save(path, images=rng.integers(0, 256, shape, dtype=np.uint8),
         factors=rng.integers(0, 3, (shape[0], 2)))
    return path


def _damage(kind: str, tmp_path: Path) -> Path:
    good = _npz(tmp_path / "good.npz", compressed=kind == "corrupt_compressed")
    data = bytearray(good.read_bytes())
    path = tmp_path / f"{kind}.npz"
    if kind == "truncated":
        data = data[: len(data) // 2]
    elif kind == "empty":
        data = bytearray()
    elif kind == "text":
        data = bytearray(b"images,factors\n1,2\n")
    elif kind == "npy":
        np.save(tmp_path / "a.npy", np.zeros((2, 64, 64, 1), np.uint8))
        data = bytearray((tmp_path / "a.npy").read_bytes())
    elif kind in ("corrupt_compressed", "bad_crc"):  # zip directory intact, member data not
        with zipfile.ZipFile(good) as z:
            start = z.getinfo("images.npy").header_offset + 200
        for i in range(start, start + 64):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


NPZ_DAMAGE = {
    "truncated": "is not a zip archive (truncated or not an .npz)",
    "empty": "is an empty file",
    "text": "is not a zip archive",
    "npy": "is a .npy file (one array)",
    "corrupt_compressed": "array 'images' is corrupt (error: Error -3 while decompressing",
    "bad_crc": "array 'images' is corrupt (BadZipFile: Bad CRC-32 for file 'images.npy')",
}


@pytest.mark.parametrize("kind", NPZ_DAMAGE)
def test_damaged_npz_names_file_and_expectation(tmp_path, kind):
    path = _damage(kind, tmp_path)
    with pytest.raises(DataError) as info:
        get_dataset(f"npz:{path}")
    message = str(info.value)
    assert message.startswith(f"npz:{path}: ") and NPZ_DAMAGE[kind] in message, message
    assert "expected an .npz archive (np.savez) of 'images' uint8 [N, H, W, C]" in message


def test_truncated_npz_through_the_cli_writes_nothing(tmp_path, capsys):
    path = _damage("truncated", tmp_path)
    work = tmp_path / "w"
    code, err = cli(capsys, "train", AE, *TINY, f"data.name=npz:{path}", "--workdir", str(work))
    one_line_error(code, err, f"npz:{path}: is not a zip archive")
    assert not work.exists()


def test_conv64_on_32x32_images_names_network_shape_and_alternative(tmp_path, capsys):
    path = _npz(tmp_path / "small.npz", shape=(20, 32, 32, 1))
    work = tmp_path / "w"
    code, err = cli(capsys, "train", AE, *TINY, "model.network=conv64", f"data.name=npz:{path}",
                    "--workdir", str(work))
    one_line_error(code, err, "model.network='conv64' takes 64x64xC images",
                   "observations have shape (32, 32, 1)", "model.network='mlp'")
    assert not work.exists()


def test_interrupt_swallowed_by_a_callback_is_delivered_again():
    """A SIGTERM that lands in a __del__ or gc callback (seen in JAX's gc hook) is not lost."""
    import os
    import signal
    import sys
    import time

    from experiments.cli import Terminated, sigterm_as_interrupt

    class SignalsInDel:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGTERM)  # Terminated is raised here and swallowed

    before, hook = signal.getsignal(signal.SIGTERM), sys.unraisablehook
    t0 = time.monotonic()
    with sigterm_as_interrupt(), pytest.raises(Terminated):
        SignalsInDel()  # collected at once
        time.sleep(5)  # the redelivered signal interrupts this
    assert time.monotonic() - t0 < 4
    assert signal.getsignal(signal.SIGTERM) is before and sys.unraisablehook is hook
