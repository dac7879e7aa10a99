"""Trainer: each method learns, QLAE codes are codebook values, resume is exact."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from disentangle import train as train_lib
from disentangle.optim import decay_labels
from disentangle.runs import is_finished, load_run


@pytest.mark.parametrize("method", ["ae", "beta_vae", "beta_tcvae", "qlae"])
def test_loss_falls(method, make_config, tmp_path):
    config = make_config(method, steps=40)
    train_lib.train_and_evaluate(config, tmp_path, progress=False)
    log = train_lib.read_log(tmp_path)
    assert [r["step"] for r in log] == list(range(1, 41))
    first = np.mean([r["reconstruction"] for r in log[:5]])
    last = np.mean([r["reconstruction"] for r in log[-5:]])
    assert last < 0.8 * first, (first, last)
    assert is_finished(tmp_path)
    expected_terms = {"ae": {"reconstruction"}, "beta_vae": {"kl", "elbo"},
                      "beta_tcvae": {"tc", "mi", "dimwise_kl"},
                      "qlae": {"quantization", "commitment"}}[method]
    assert expected_terms <= set(log[0])


def test_qlae_codes_are_codebook_values(make_config, tmp_path):
    train_lib.train_and_evaluate(make_config("qlae", steps=20), tmp_path, progress=False)
    run = load_run(tmp_path)
    book = np.asarray(run.model.codebook[...])
    x = run.dataset.sample(128, np.random.default_rng(0))[1]
    rep = run.model.encode(jnp.asarray(x))
    codes, values = np.asarray(rep.codes), np.asarray(rep.mean)
    assert codes.dtype.kind == "i" and codes.min() >= 0 and codes.max() < book.shape[1]
    np.testing.assert_array_equal(values, book[np.arange(book.shape[0]), codes])
    # The codebook moved away from its linspace initialisation (it is trained).
    assert not np.allclose(book, np.linspace(-0.5, 0.5, book.shape[1]))


def test_weight_decay_only_on_kernels(make_config):
    s = train_lib.setup(make_config("qlae"))
    labels = decay_labels(s.params["model"])
    flat = {"/".join(str(getattr(k, "key", getattr(k, "name", k))) for k in path): v
            for path, v in jax.tree_util.tree_flatten_with_path(labels)[0]}
    assert all(v == "decay" for k, v in flat.items() if "kernel" in k)
    assert all(v == "no_decay" for k, v in flat.items() if "bias" in k or "codebook" in k)
    assert any("codebook" in k for k in flat)


class _Killed(Exception):
    pass


def test_resume_reproduces_uninterrupted_run(make_config, tmp_path, monkeypatch):
    config = make_config("beta_vae", steps=25)
    train_lib.train_and_evaluate(config, tmp_path / "full", progress=False)

    real = train_lib._progress

    def dying_progress(*args, **kwargs):
        bar = real(*args, **kwargs)
        count = {"n": 0}
        update = bar.update

        def update_then_die(n=1):
            count["n"] += n
            if count["n"] == 15:  # after the step-10 checkpoint, before step 20's
                raise _Killed
            return update(n)

        bar.update = update_then_die
        return bar

    monkeypatch.setattr(train_lib, "_progress", dying_progress)
    with pytest.raises(_Killed):
        train_lib.train_and_evaluate(config, tmp_path / "resumed", progress=False)
    monkeypatch.setattr(train_lib, "_progress", real)
    partial = train_lib.read_log(tmp_path / "resumed")
    assert partial[-1]["step"] == 14  # logged past the checkpoint, then killed
    train_lib.train_and_evaluate(config, tmp_path / "resumed", progress=False)

    full, resumed = (train_lib.read_log(tmp_path / d) for d in ("full", "resumed"))
    assert [r["step"] for r in resumed] == list(range(1, 26))
    for a, b in zip(full, resumed):
        for key in ("loss", "reconstruction", "kl"):
            assert a[key] == b[key], (a["step"], key, a[key], b[key])


def test_rerun_of_finished_run_does_no_training(make_config, tmp_path, monkeypatch):
    config = make_config("ae", steps=10)
    train_lib.train_and_evaluate(config, tmp_path, progress=False)
    monkeypatch.setattr(train_lib, "make_train_step", lambda s: pytest.fail("trained again"))
    train_lib.train_and_evaluate(config, tmp_path, progress=False)


def test_different_config_in_same_workdir_is_refused(make_config, tmp_path):
    train_lib.train_and_evaluate(make_config("ae", steps=10), tmp_path, progress=False)
    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(train_lib.ConfigError, match="train.learning_rate"):
        train_lib.train_and_evaluate(make_config("ae", steps=10, **{"train.learning_rate": 0.5}),
                                     tmp_path, progress=False)
    assert (tmp_path / "metrics.jsonl").read_text() == before


def test_non_finite_loss_stops_with_step_and_checkpoint(make_config, tmp_path, monkeypatch):
    """Parameters turn NaN from step 13: error names step 13 and the step-10 checkpoint."""
    config = make_config("ae", steps=30, **{"train.checkpoint_every": 10})
    real_make = train_lib.make_train_step

    def make_poisoned(setup, updates):
        step = real_make(setup, updates)

        def poisoned(params, opt_state, bad_step, t, *rest):
            if int(t) >= 13:
                params = jax.tree.map(lambda p: p * jnp.nan, params)
            return step(params, opt_state, bad_step, t, *rest)

        return poisoned

    monkeypatch.setattr(train_lib, "make_train_step", make_poisoned)
    with pytest.raises(train_lib.NonFiniteLossError, match=r"step 13 .*checkpoint is step 10"):
        train_lib.train_and_evaluate(config, tmp_path, progress=False)
    steps = sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir() if p.name.isdigit())
    assert steps == [10]
    assert train_lib.read_log(tmp_path)[-1]["step"] == 12


@pytest.mark.slow
def test_cli_run_killed_after_first_checkpoint_resumes_exactly(tmp_path):
    """The issue's check, for real: SIGKILL the CLI after its first checkpoint, rerun."""
    import os
    import signal
    import subprocess
    import sys
    import time

    args = [sys.executable, "-m", "experiments.cli", "train", "configs/qlae_dsprites.py",
            "train.steps=40", "train.checkpoint_every=20", "train.log_every=1", "--no-progress"]
    subprocess.run([*args, "--workdir", str(tmp_path / "full")], check=True)
    proc = subprocess.Popen([*args, "--workdir", str(tmp_path / "killed")])
    ckpt = tmp_path / "killed" / "checkpoints" / "20"
    while not ckpt.exists() and proc.poll() is None:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    subprocess.run([*args, "--workdir", str(tmp_path / "killed")], check=True)
    full, resumed = (train_lib.read_log(tmp_path / d) for d in ("full", "killed"))
    assert [r["step"] for r in resumed] == list(range(1, 41))
    assert [r["loss"] for r in resumed] == [r["loss"] for r in full]


def test_seeds_and_swept_values_share_one_program(make_config):
    """The seed and a vmapped hyperparameter are arguments of the train step, not constants
    of its program: two seeds (and two beta grids) lower to the same StableHLO, which the
    compilation cache can then compile once; the seed still decides the step's data."""
    from disentangle.methods import Update

    def step_of(**overrides):
        s = train_lib.setup(make_config("beta_vae", steps=2, **overrides))
        step = train_lib.make_train_step(s, (Update(),))
        args = (s.params, s.opt_state, jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32),
                jnp.asarray(1, jnp.int32))
        return step.lower(*args).as_text(), float(step(*args)[3]["loss"])

    (text0, loss0), (text1, loss1) = step_of(**{"train.seed": 0}), step_of(**{"train.seed": 1})
    assert text0 == text1 and loss0 != loss1

    def members_text(values):
        config = make_config("beta_vae", steps=2, **{"train.vmap_key": "model.beta",
                                                     "train.vmap_values": values})
        setups = [train_lib.setup(c) for c in train_lib.member_configs(config).values()]
        params, opt_state, bad = train_lib.members_state(setups)
        step = train_lib.make_members_step(setups, (Update(),), "beta")
        return step.lower(params, opt_state, bad, jnp.asarray(1, jnp.int32)).as_text()

    assert members_text([1.0, 6.0]) == members_text([2.0, 4.0])
