"""Sweeps cannot write outside their directory, refuse bad members before writing, and
stop their worker processes on SIGTERM / Ctrl-C (issue 21)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from disentangle import sweep as sweep_lib
from disentangle.errors import ConfigError
from experiments.cli import main

REPO = Path(__file__).resolve().parents[1]
AE = str(REPO / "configs/ae_dsprites.py")


def write_sweep(path: Path, members: list[dict]) -> Path:
    path.write_text(f"def get_sweep():\n    return {members!r}\n")
    return path


# ----------------------------------------------------------------------------- member names
BAD_NAMES = ["../x", "a/b", "/tmp/abs", "..", ".hidden", "a b", "", "a\\b", "x;rm", "café",
             "sweep.json", "Report.HTML", 3, "x" * 201]


@pytest.mark.parametrize("name", BAD_NAMES, ids=repr)
def test_unsafe_member_name_is_refused_before_anything_is_written(tmp_path, name):
    sweep = write_sweep(tmp_path / "s.py", [{"config": AE, "name": name}])
    work = tmp_path / "sweeps" / "w"
    with pytest.raises(ConfigError, match=r"member 0: name .* is not accepted: member names "
                                          r"are directory names made of A-Z a-z 0-9 \. _ \+ -"):
        sweep_lib.run_sweep(sweep, work, log=lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.py"]  # nothing inside or beside


def test_path_traversal_through_the_cli_is_one_line_and_writes_nothing(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "s.py", [{"config": AE, "name": "../escaped"},
                                            {"config": AE, "name": "a/b", "train.seed": 1}])
    work = tmp_path / "w"
    code = main(["sweep", str(sweep), "--workdir", str(work)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: sweep ")
    assert "name '../escaped' is not accepted" in err[0]
    assert not work.exists() and not (tmp_path / "escaped").exists()


def test_safe_names_pass_and_generated_names_are_slugged(tmp_path):
    weird = tmp_path / "my config (v2).py"
    weird.write_text(Path(AE).read_text())
    sweep = write_sweep(tmp_path / "s.py", [
        {"config": AE, "name": "ok-1.2_x+y"}, {"config": str(weird), "train.seed": 3}])
    names = [m.name for m in sweep_lib.load_sweep(sweep)]
    assert names == ["ok-1.2_x+y", "my_config_v2-seed3"]


def test_names_equal_ignoring_case_are_refused(tmp_path):
    sweep = write_sweep(tmp_path / "s.py", [{"config": AE, "name": "Run"},
                                            {"config": AE, "name": "run", "train.seed": 1}])
    with pytest.raises(ConfigError, match="members 0 and 1 have the same name 'run' "
                                          r"\(ignoring case\)"):
        sweep_lib.load_sweep(sweep)


# ----------------------------------------------------------------------------- sweep files
def test_get_sweep_that_raises_names_file_and_line(tmp_path):
    path = tmp_path / "s.py"
    path.write_text("def get_sweep():\n    seeds = [0, 1]\n    return [seeds[5]]\n")
    with pytest.raises(ConfigError, match=rf"{path}, line 3: IndexError: list index out of "
                                          r"range \(while running get_sweep\(\)\)"):
        sweep_lib.load_sweep(path)


def test_entry_that_is_not_a_dict_is_refused(tmp_path):
    path = tmp_path / "s.py"
    path.write_text("def get_sweep():\n    return ['train.seed=1']\n")
    with pytest.raises(ConfigError, match="member 0 is a str; expected a dict"):
        sweep_lib.load_sweep(path)


def test_member_config_is_validated_before_anything_is_written(tmp_path):
    sweep = write_sweep(tmp_path / "s.py", [{"config": AE, "name": "good"},
                                            {"config": AE, "name": "bad",
                                             "train.batch_size": -4}])
    work = tmp_path / "w"
    with pytest.raises(ConfigError, match=r"train.batch_size=-4; accepted: an integer >= 1 "
                                          r"\(from sweep member 'bad'\)"):
        sweep_lib.run_sweep(sweep, work, log=lambda s: None)
    with pytest.raises(ConfigError, match=r"train.steps=0; .*\(from the command line\)"):
        sweep_lib.run_sweep(sweep, work, ["train.steps=0"], log=lambda s: None)
    assert not work.exists()


def test_workers_below_one_is_refused(tmp_path):
    sweep = write_sweep(tmp_path / "s.py", [{"config": AE}])
    with pytest.raises(ConfigError, match="--workers 0: accepted: an integer >= 1"):
        sweep_lib.run_sweep(sweep, tmp_path / "w", workers=0, log=lambda s: None)
    assert not (tmp_path / "w").exists()


# ----------------------------------------------------------------------------- interrupts
def test_interrupted_member_is_recorded_and_resumable(tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("disentangle.train.train_and_evaluate", interrupted)
    member = sweep_lib.load_sweep(write_sweep(tmp_path / "s.py", [{"config": AE}]))[0]
    with pytest.raises(KeyboardInterrupt):
        sweep_lib.run_member(member, tmp_path / "w", progress=False)
    status = sweep_lib.read_status(tmp_path / "w" / member.name)
    assert status["status"] == "interrupted" and status["stage"] == "train"
    assert not sweep_lib.is_done(tmp_path / "w" / member.name)  # a rerun resumes it


def test_interrupt_stops_the_running_workers(tmp_path, monkeypatch):
    """Ctrl-C in the parent (here: raised by its log) terminates every started worker."""
    started = []
    real_popen = subprocess.Popen

    def sleeper(cmd, **kwargs):  # a worker that would run for a minute
        proc = real_popen([sys.executable, "-c", "import time; time.sleep(60)"], **kwargs)
        started.append(proc)
        return proc

    def log(line):
        if line.startswith("started") and len(started) == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(sweep_lib.subprocess, "Popen", sleeper)
    members = sweep_lib.load_sweep(write_sweep(tmp_path / "s.py", [
        {"config": AE, "train.seed": s} for s in range(3)]))
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        sweep_lib._run_parallel(tmp_path / "s.py", members, tmp_path / "w", [], 2, log)
    assert len(started) == 2 and time.monotonic() - t0 < 30
    assert [p.returncode for p in started] == [-signal.SIGTERM] * 2


def test_stop_workers_kills_a_worker_that_ignores_sigterm():
    code = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "print('ready', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    sweep_lib.stop_workers([proc], grace=0.5)
    assert proc.returncode == -signal.SIGKILL


def _children(pid: int) -> list[int]:
    """Pids whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGINT", "SIGKILL"])
def test_signal_to_the_sweep_stops_its_workers(tmp_path, signum):
    """`disentangle sweep --workers 2`, signalled while both members train: no orphans.
    SIGKILL cannot be handled by the sweep; its workers stop by PR_SET_PDEATHSIG."""
    sweep = write_sweep(tmp_path / "s.py", [
        {"config": AE, "name": f"m{s}", "train.seed": s} for s in range(2)])
    work = tmp_path / "w"
    cmd = [sys.executable, "-m", "experiments.cli", "sweep", str(sweep), "train.steps=100000",
           "train.batch_size=8", "model.network=mlp_small", "model.latent_dim=4",
           "train.log_every=50", "train.checkpoint_every=100000", "--workers", "2",
           "--workdir", str(work), "--no-progress"]
    parent = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    workers: list[int] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # both workers in their member's training
            states = [sweep_lib.read_status(work / f"m{s}").get("stage") for s in range(2)]
            if states == ["train", "train"] and all(
                    (work / f"m{s}" / "metrics.jsonl").exists() for s in range(2)):
                break
            assert parent.poll() is None, parent.stderr.read()
            time.sleep(0.5)
        else:
            pytest.fail("the workers did not start training within 240 s")
        workers = _children(parent.pid)
        assert len(workers) == 2
        parent.send_signal(signum)
        if signum == signal.SIGKILL:
            assert parent.wait(timeout=60) == -signal.SIGKILL
            deadline = time.monotonic() + 30  # the orphaned workers stop by themselves
            while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
                time.sleep(0.2)
        else:
            assert parent.wait(timeout=60) == 128 + signum
            assert "interrupted; rerun the same command to resume" in parent.stderr.read()
        assert not any(_alive(pid) for pid in workers)
        for s in range(2):
            status = json.loads((work / f"m{s}" / "status.json").read_text())
            log = (work / f"m{s}" / "sweep.log").read_text()
            assert status["status"] == "interrupted", (status, log)
    finally:
        for pid in [*workers, parent.pid]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.wait()
