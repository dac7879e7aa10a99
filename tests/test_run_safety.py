"""Runs that cannot be corrupted: the run-dir lock, checkpoint fallback, log repair, refused
and allowed config changes (the trainer's part of the reliability issue)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from disentangle import train as train_lib
from disentangle.errors import ConfigError, UserError
from experiments.cli import main

ROOT = Path(__file__).resolve().parents[1]


def test_a_locked_run_dir_refuses_a_second_trainer(tmp_path):
    """A second process on the same workdir gets an error naming the holder."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from disentangle.train import RunLock\n"
        "with RunLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)"),
        str(tmp_path)], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(UserError, match=rf"is being trained by pid {holder.pid} on "):
            with train_lib.RunLock(tmp_path):
                pass
    finally:
        holder.kill()
        holder.wait()
    with train_lib.RunLock(tmp_path):  # released by the OS when the holder died
        pass


def test_cli_second_trainer_on_one_workdir_is_a_one_line_error(tmp_path, capsys):
    with train_lib.RunLock(tmp_path / "w"):
        code = main(["train", "configs/ae_dsprites.py", "train.steps=1", "model.network=mlp_small",
                     "--workdir", str(tmp_path / "w")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "is being trained by pid" in err
    assert not (tmp_path / "w" / "metrics.jsonl").exists()


def test_damaged_latest_checkpoint_falls_back_and_is_kept_aside(make_config, tmp_path):
    config = make_config("beta_vae", steps=6, **{"train.checkpoint_every": 2})
    full = train_lib.train_and_evaluate(config, tmp_path / "full", progress=False)
    short = make_config("beta_vae", steps=4, **{"train.checkpoint_every": 2})
    run = train_lib.train_and_evaluate(short, tmp_path / "run", progress=False)
    # Truncate every file of the latest checkpoint (step 4), as a full disk or a kill would.
    damaged = run / "checkpoints" / "4"
    for f in damaged.rglob("*"):
        if f.is_file():
            f.write_bytes(f.read_bytes()[: len(f.read_bytes()) // 3])
    with pytest.warns(UserWarning, match=r"checkpoint 4 of .* does not restore"):
        train_lib.train_and_evaluate(config, run, progress=False)
    assert (run / "checkpoints_damaged" / "4").is_dir()  # kept, not deleted
    a, b = train_lib.read_log(full), train_lib.read_log(run)
    assert [r["step"] for r in b] == list(range(1, 7))
    assert [r["loss"] for r in b] == [r["loss"] for r in a]


def test_no_restorable_checkpoint_is_an_error_and_nothing_moves(make_config, tmp_path):
    run = train_lib.train_and_evaluate(make_config("ae", steps=2, **{
        "train.checkpoint_every": 2}), tmp_path / "run", progress=False)
    for f in (run / "checkpoints" / "2").rglob("*"):
        if f.is_file():
            f.write_bytes(b"")
    with pytest.raises(UserError, match=r"no checkpoint of .* restores \(step 2: .*nothing "
                                        r"was moved"):
        train_lib.train_and_evaluate(make_config("ae", steps=4, **{
            "train.checkpoint_every": 2}), run, progress=False)
    assert (run / "checkpoints" / "2").is_dir() and not (run / "checkpoints_damaged").exists()


def test_torn_last_log_line_is_dropped_and_a_bad_middle_line_named(make_config, tmp_path):
    config = make_config("ae", steps=4, **{"train.checkpoint_every": 2})
    run = train_lib.train_and_evaluate(config, tmp_path / "run", progress=False)
    log = run / "metrics.jsonl"
    log.write_text(log.read_text() + '{"step": 5, "lo')
    with pytest.warns(UserWarning, match="torn last line"):
        assert [r["step"] for r in train_lib.read_log(run)] == [1, 2, 3, 4]
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0], "garbage", *lines[1:4]]) + "\n")
    with pytest.raises(UserError, match=r"metrics.jsonl: line 2 is not JSON"):
        train_lib.read_log(run)


def test_missing_log_is_recreated_on_resume_with_a_warning(make_config, tmp_path):
    config = make_config("ae", steps=4, **{"train.checkpoint_every": 2})
    run = train_lib.train_and_evaluate(config, tmp_path / "run", progress=False)
    (run / "metrics.jsonl").unlink()
    longer = make_config("ae", steps=6, **{"train.checkpoint_every": 2})
    with pytest.warns(UserWarning, match=r"metrics.jsonl is missing; .* after step 4"):
        train_lib.train_and_evaluate(longer, run, progress=False)
    assert [r["step"] for r in train_lib.read_log(run)] == [5, 6]


def test_steps_below_the_latest_checkpoint_are_refused_and_nothing_changes(make_config,
                                                                           tmp_path):
    run = train_lib.train_and_evaluate(make_config("ae", steps=6, **{
        "train.checkpoint_every": 2}), tmp_path / "run", progress=False)
    before = (run / "config.json").read_text()
    with pytest.raises(ConfigError, match=r"train.steps=2 is below the latest checkpoint"):
        train_lib.train_and_evaluate(make_config("ae", steps=2), run, progress=False)
    assert (run / "config.json").read_text() == before


def test_a_diverged_run_continues_with_a_lower_learning_rate(make_config, tmp_path):
    run = train_lib.train_and_evaluate(make_config("ae", steps=4, **{
        "train.checkpoint_every": 2}), tmp_path / "run", progress=False)
    lower = make_config("ae", steps=6, **{"train.checkpoint_every": 2,
                                          "train.learning_rate": 1e-4})
    with pytest.raises(ConfigError, match=r"--allow-change KEY"):
        train_lib.train_and_evaluate(lower, run, progress=False)
    with pytest.raises(ConfigError, match=r"only train.learning_rate"):
        train_lib.train_and_evaluate(lower, run, progress=False,
                                     allow_changes=("model.latent_dim",))
    train_lib.train_and_evaluate(lower, run, progress=False,
                                 allow_changes=("train.learning_rate",))
    assert [r["step"] for r in train_lib.read_log(run)] == list(range(1, 7))
    change = json.loads((run / "config_changes.jsonl").read_text().splitlines()[0])
    assert change["step"] == 4
    assert change["changes"]["train.learning_rate"] == {"old": 1e-3, "new": 1e-4}
    assert json.loads((run / "config.json").read_text())["train"]["learning_rate"] == 1e-4


def _write_old_run(workdir: Path, config, drop: tuple[str, ...]) -> None:
    """``config.json`` as a version without the keys ``drop`` wrote it."""
    from disentangle import config as config_lib

    data = json.loads(config_lib.to_json(config))
    for key in drop:
        section, name = key.split(".")
        del data[section][name]
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.json").write_text(json.dumps(data))


def test_a_run_older_than_a_new_default_key_is_not_a_different_config(make_config, tmp_path):
    """A run written before train.clip_scope / decay_scope existed, without a clip or a decay,
    resumes under today's defaults; with a clip, its old scope ('all') differs from today's
    default ('decayed') and is refused, naming both."""
    drop = ("train.clip_scope", "train.decay_scope")
    config = make_config("beta_vae", steps=4)
    _write_old_run(tmp_path / "plain", config, drop)
    assert train_lib.config_changes(tmp_path / "plain", config) == {}
    clipped = make_config("beta_vae", steps=4, **{"train.clip_value": 1.0})
    _write_old_run(tmp_path / "clipped", clipped, drop)
    assert train_lib.config_changes(tmp_path / "clipped", clipped) == {
        "train.clip_scope": ("all", "decayed"), "train.decay_scope": ("kernels", "all_but_biases")}
    with pytest.raises(ConfigError, match=r"train.clip_scope: 'all' -> 'decayed'"):
        train_lib.check_config_matches(tmp_path / "clipped", clipped)
    # the old behaviour asked for explicitly is the same config
    same = make_config("beta_vae", steps=4, **{"train.clip_value": 1.0,
                                                "train.clip_scope": "all"})
    assert train_lib.config_changes(tmp_path / "clipped", same) == {}
