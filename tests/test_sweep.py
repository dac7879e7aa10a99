"""Sweeps and reports: parallel members, skip on rerun, --index, failures, HTML report."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from disentangle import sweep as sweep_lib
from disentangle.report import write_report

TINY = ["train.steps=6", "train.batch_size=16", "train.log_every=2", "train.checkpoint_every=3",
        "eval.num_samples=400", "eval.metrics=('infomec','mig')", "model.network=mlp_small",
        "model.latent_dim=4"]

SWEEP = '''
def get_sweep():
    members = [{"config": "configs/ae_dsprites.py", "train.seed": s} for s in (0, 1)]
    members += [{"config": "configs/beta_vae_dsprites.py", "train.seed": s, "model.beta": 2.0}
                for s in (0, 1)]
    return members
'''


@pytest.fixture
def sweep_file(tmp_path):
    path = tmp_path / "tiny_sweep.py"
    path.write_text(SWEEP)
    return path


def test_members_have_stable_names(sweep_file):
    names = [m.name for m in sweep_lib.load_sweep(sweep_file)]
    assert names == ["ae_dsprites-seed0", "ae_dsprites-seed1", "beta_vae_dsprites-seed0-beta2",
                     "beta_vae_dsprites-seed1-beta2"]
    assert names == [m.name for m in sweep_lib.load_sweep(sweep_file)]


@pytest.mark.slow
def test_sweep_parallel_rerun_index_and_report(sweep_file, tmp_path, monkeypatch):
    work = tmp_path / "sweep"
    results = sweep_lib.run_sweep(sweep_file, work, TINY, workers=2, log=lambda s: None)
    assert all(s["status"] == "done" for s in results.values()), results
    members = sweep_lib.load_sweep(sweep_file)
    for m in members:
        run = work / m.name
        assert (run / "eval.json").exists() and (run / "metrics.jsonl").exists()
        assert json.loads((run / "config.json").read_text())["train"]["seed"] == int(
            dict(m.overrides)["train.seed"])

    # A rerun trains nothing: every member is done already.
    stamps = {m.name: (work / m.name / "metrics.jsonl").stat().st_mtime_ns for m in members}
    monkeypatch.setattr("disentangle.train.train_and_evaluate",
                        lambda *a, **k: pytest.fail("a finished member was trained again"))
    sweep_lib.run_sweep(sweep_file, work, TINY, workers=2, log=lambda s: None)
    assert stamps == {m.name: (work / m.name / "metrics.jsonl").stat().st_mtime_ns
                      for m in members}
    monkeypatch.undo()

    # The report shows every member's metrics and embeds images.
    html_path, md_path = write_report(work)
    page = html_path.read_text()
    for m in members:
        assert html.escape(m.name) in page
        ev = json.loads((work / m.name / "eval.json").read_text())
        infom = ev["representations"][ev["primary"]]["infom"]
        assert f"{infom:.3f}" in page
    assert "data:image/png;base64," in page and "<script" not in page
    assert "± " in md_path.read_text()  # two seeds per group: mean +- std

    # --index runs exactly one member.
    only = tmp_path / "only"
    sweep_lib.run_sweep(sweep_file, only, TINY, index=2, progress=False, log=lambda s: None)
    assert sorted(p.name for p in only.iterdir() if p.is_dir()) == [members[2].name]


def test_failing_member_is_recorded_and_others_go_on(tmp_path):
    path = tmp_path / "bad_sweep.py"
    path.write_text(
        "def get_sweep():\n"
        "    return [{'config': 'configs/ae_dsprites.py', 'data.name': 'npz:/no/such.npz'},\n"
        "            {'config': 'configs/ae_dsprites.py', 'train.seed': 3}]\n")
    work = tmp_path / "w"
    results = sweep_lib.run_sweep(path, work, TINY, progress=False, log=lambda s: None)
    statuses = {n: s["status"] for n, s in results.items()}
    assert sorted(statuses.values()) == ["done", "failed"]
    failed = next(n for n, s in results.items() if s["status"] == "failed")
    assert "no such file" in results[failed]["error"]
    summary = json.loads((work / "sweep.json").read_text())["members"]
    assert summary[failed]["status"] == "failed"
    assert "failed at" in write_report(work)[0].read_text()


def test_config_mistake_fails_before_any_member_runs(sweep_file, tmp_path):
    with pytest.raises(sweep_lib.ConfigError, match="not_a_key"):
        sweep_lib.run_sweep(sweep_file, tmp_path / "w", [*TINY, "model.not_a_key=1"])
    assert not any((tmp_path / "w").glob("*/config.json"))


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_console_errors(sweep_file, tmp_path):
    """Needs Debian's chromium (apt-get install chromium); part of `make test-slow`."""
    browser = _chromium()
    if browser is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    work = tmp_path / "sweep"
    sweep_lib.run_sweep(sweep_file, work, TINY, index=0, progress=False, log=lambda s: None)
    html_path, _ = write_report(work)
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0"]
    shot = tmp_path / "shot.png"
    proc = subprocess.run([browser, *flags, f"--screenshot={shot}", "--window-size=1200,2000",
                           html_path.as_uri()], capture_output=True, text=True, timeout=120)
    dom = subprocess.run([browser, *flags, "--dump-dom", html_path.as_uri()],
                         capture_output=True, text=True, timeout=120)
    console = [ln for ln in (proc.stderr + dom.stderr).splitlines() if "CONSOLE" in ln]
    assert not console, console
    assert shot.exists() and shot.stat().st_size > 10_000
    assert "ae_dsprites-seed0" in dom.stdout and "<img" in dom.stdout
    assert Path(html_path).read_text().count("data:image/png;base64,") >= 2
