"""Sweeps: many runs from one base config, as plain data.

A sweep file defines ``get_sweep() -> list[dict]``; each dict is one member: dotted
overrides on top of a base config named by its ``"config"`` entry (or the file's
``BASE_CONFIG``), and optionally a ``"name"``. Every member gets its own run directory
``WORKDIR/NAME`` with a stable name derived from its config and overrides, so a rerun
finds the same directories: finished members are skipped, unfinished ones resume, and a
failing member is recorded in its ``status.json`` while the others go on. Each member
is trained, then evaluated (``eval.json``), then traversed (``figures/``).

Member names are directory names, so they are checked (:func:`check_member_name`): the
characters ``A-Z a-z 0-9 . _ + -``, not starting with ``.``, unique ignoring case. Every
member's config is validated before any directory is written. SIGTERM or Ctrl-C stops
the worker processes of a parallel sweep (on Linux they also stop when it is killed with
SIGKILL); a rerun resumes the interrupted members.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from disentangle import config as config_lib
from disentangle.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Member:
    index: int
    name: str
    config_path: Path
    overrides: tuple[tuple[str, Any], ...]

    def config(self, extra: Sequence[str] = ()):
        """The member's validated config: base file, member overrides, then command-line
        overrides."""
        cfg = config_lib.load_config(self.config_path)
        where = f"sweep member {self.name!r}"
        config_lib.apply_overrides(cfg, self.overrides, source=where)
        config_lib.apply_overrides(cfg, extra, source="the command line")
        origins = {**config_lib.override_origins(self.overrides, where),
                   **config_lib.override_origins(extra, "the command line")}
        return config_lib.validate(cfg, str(self.config_path), origins)

    def describe(self) -> str:
        ov = " ".join(f"{k}={v}" for k, v in self.overrides)
        return f"[{self.index}] {self.name}: {self.config_path.name} {ov}".rstrip()


def resolve_config_path(path: str | Path, sweep_path: Path) -> Path:
    """A config path as given, or relative to the sweep file, or to the repository."""
    for candidate in (Path(path), sweep_path.parent / path, REPO_ROOT / path):
        if candidate.is_file():
            return candidate.resolve()
    raise ConfigError(f"sweep {sweep_path}: config {str(path)!r} not found (looked in the "
                      f"current directory, {sweep_path.parent} and {REPO_ROOT})")


def _slug(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "_", text).strip("_")


def member_name(config_path: Path, overrides: Sequence[tuple[str, Any]]) -> str:
    """``<config stem>-<leaf><value>-...``, e.g. ``qlae_dsprites-seed1``."""
    parts = [_slug(config_path.stem)] + [f"{k.rsplit('.', 1)[-1]}{_slug(v)}"
                                         for k, v in overrides]
    return "-".join(parts)


MEMBER_NAME = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,199}")
# Files a sweep directory holds beside the member directories.
RESERVED_NAMES = ("sweep.json", "report.html", "report.md")


def check_member_name(name: Any, where: str) -> str:
    """``name`` if it is a safe directory name (:data:`MEMBER_NAME`, not reserved)."""
    if not isinstance(name, str) or not MEMBER_NAME.fullmatch(name) or (
            name.lower() in RESERVED_NAMES):
        raise ConfigError(
            f"{where}: name {name!r} is not accepted: member names are directory names made "
            "of A-Z a-z 0-9 . _ + - (no '/', spaces or other characters), not starting "
            f"with '.', at most 200 characters and none of {', '.join(RESERVED_NAMES)}")
    return name


def load_sweep(path: str | Path) -> list[Member]:
    path = Path(path)
    if not path.is_file():
        cand = REPO_ROOT / "configs" / "sweeps" / f"{path.name.removesuffix('.py')}.py"
        if not cand.is_file():
            raise ConfigError(f"sweep file {str(path)!r} does not exist")
        path = cand
    module = config_lib.load_module(path)
    if not hasattr(module, "get_sweep"):
        raise ConfigError(f"sweep file {path} defines no get_sweep()")
    with config_lib.errors_in_file(path, "running get_sweep()"):
        entries = list(module.get_sweep())
    members, seen = [], {}
    for i, entry in enumerate(entries):
        where = f"sweep {path} member {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is a {type(entry).__name__}; expected a dict of dotted "
                              "overrides, with optional 'config' and 'name'")
        entry = dict(entry)
        base = entry.pop("config", getattr(module, "BASE_CONFIG", None))
        if base is None:
            raise ConfigError(f"{where} names no 'config' and the file has no BASE_CONFIG")
        name = entry.pop("name", None)
        cfg_path = resolve_config_path(base, path)
        overrides = tuple(entry.items())
        name = check_member_name(member_name(cfg_path, overrides) if name is None else name,
                                 where)
        if name.lower() in seen:
            raise ConfigError(f"sweep {path}: members {seen[name.lower()]} and {i} have the same "
                              f"name {name!r} (ignoring case); give one a different 'name'")
        seen[name.lower()] = i
        members.append(Member(i, name, cfg_path, overrides))
    return members


# ----------------------------------------------------------------------------- running
POST_STEPS: list[tuple[str, Callable[[Path], Any]]] = []


def post_step(name: str):
    """Register a step run on every finished member (evaluation, traversals, ...)."""

    def add(fn):
        POST_STEPS.append((name, fn))
        return fn

    return add


@post_step("evaluate")
def _evaluate(run_dir: Path):
    if not (run_dir / "eval.json").exists():
        from disentangle.evaluation import evaluate_run

        evaluate_run(run_dir, verbose=False)


@post_step("traverse")
def _traverse(run_dir: Path):
    """Linear traversal figures (scored traversals: ``disentangle traverse RUN``)."""
    if not (run_dir / "figures" / "traversal_linear.png").exists():
        from disentangle.traverse.runner import TraverseOptions, traverse_run

        traverse_run(run_dir, "linear", TraverseOptions(num_seeds=2, score=False, scale=2),
                     log=None)


def read_status(run_dir: Path) -> dict:
    path = run_dir / "status.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _write_status(run_dir: Path, **status) -> None:
    """Replace ``status.json`` atomically (an interrupt never leaves half a file)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp = run_dir / "status.json.tmp"
    tmp.write_text(json.dumps(status, indent=1))
    os.replace(tmp, run_dir / "status.json")


def is_done(run_dir: Path) -> bool:
    return read_status(run_dir).get("status") == "done"


def run_member(member: Member, workdir: Path, extra: Sequence[str] = (),
               progress: bool = True) -> dict:
    """Train, evaluate and traverse one member; never raises for the member's own errors."""
    from disentangle.train import train_and_evaluate

    run_dir = workdir / member.name
    if is_done(run_dir):
        return read_status(run_dir)
    start = time.time()
    stage = "config"
    try:
        config = member.config(extra)
        stage = "train"
        _write_status(run_dir, status="running", stage=stage, index=member.index)
        train_and_evaluate(config, run_dir, progress=progress)
        for stage, fn in POST_STEPS:
            _write_status(run_dir, status="running", stage=stage, index=member.index)
            fn(run_dir)
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (experiments.cli): resumable
        _write_status(run_dir, status="interrupted", stage=stage, index=member.index,
                      seconds=time.time() - start)
        raise
    except Exception as err:  # a failing member is recorded; the sweep goes on
        status = {"status": "failed", "stage": stage, "index": member.index,
                  "error": f"{type(err).__name__}: {err}",
                  "traceback": traceback.format_exc()[-4000:], "seconds": time.time() - start}
        _write_status(run_dir, **status)
        return status
    status = {"status": "done", "index": member.index, "seconds": time.time() - start}
    _write_status(run_dir, **status)
    return status


def run_sweep(sweep: str | Path, workdir: str | Path, extra: Sequence[str] = (),
              workers: int = 1, index: int | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, dict]:
    """Run all members (or one, ``index``); returns name -> status, and writes sweep.json."""
    members = load_sweep(sweep)
    if workers < 1:
        raise ConfigError(f"--workers {workers}: accepted: an integer >= 1")
    for m in members:  # fail on config mistakes before anything is written
        m.config(extra)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    if index is not None:
        if not 0 <= index < len(members):
            raise ConfigError(f"--index {index}: the sweep has members 0..{len(members) - 1}")
        members = [members[index]]
        _stop_with_parent()
    results: dict[str, dict] = {}
    todo = [m for m in members if not is_done(workdir / m.name)]
    for m in members:
        if m not in todo:
            results[m.name] = read_status(workdir / m.name)
            log(f"{m.describe()}: done already, skipped")
    if workers <= 1 or len(todo) <= 1:
        for n, m in enumerate(todo, 1):
            log(f"({n}/{len(todo)}) {m.describe()}")
            results[m.name] = run_member(m, workdir, extra, progress)
            _log_status(log, m, results[m.name])
    else:
        results.update(_run_parallel(sweep, todo, workdir, extra, workers, log))
    summary = {m.name: read_status(workdir / m.name) | {"index": m.index} for m in
               load_sweep(sweep)}
    (workdir / "sweep.json").write_text(json.dumps(
        {"sweep": str(sweep), "overrides": list(extra), "members": summary}, indent=1))
    return results


def _log_status(log, m: Member, status: dict) -> None:
    if status.get("status") == "done":
        log(f"    {m.name}: done in {status.get('seconds', 0):.0f} s")
    else:
        log(f"    {m.name}: FAILED at {status.get('stage')}: {status.get('error')}")


def _run_parallel(sweep, todo: list[Member], workdir: Path, extra, workers: int, log):
    """One subprocess per member (``--index``), at most ``workers`` at a time; on any
    exit (including Ctrl-C or SIGTERM) the workers still running are stopped."""
    pending = list(todo)
    running: dict[Member, tuple[subprocess.Popen, Any]] = {}
    results = {}
    total = len(todo)
    try:
        while pending or running:
            while pending and len(running) < workers:
                m = pending.pop(0)
                (workdir / m.name).mkdir(parents=True, exist_ok=True)
                out = open(workdir / m.name / "sweep.log", "a")
                cmd = [sys.executable, "-m", "experiments.cli", "sweep", str(sweep), *extra,
                       "--workdir", str(workdir), "--index", str(m.index), "--no-progress"]
                env = {**os.environ, PARENT_ENV: str(os.getpid())}
                running[m] = (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                               env=env), out)
                log(f"started {m.describe()} (log: {workdir / m.name / 'sweep.log'})")
            time.sleep(0.5)
            for m, (proc, out) in list(running.items()):
                if proc.poll() is None:
                    continue
                out.close()
                del running[m]
                status = read_status(workdir / m.name)
                if proc.returncode != 0 and status.get("status") != "failed":
                    status = {"status": "failed", "stage": status.get("stage", "process"),
                              "error": f"process exited with {proc.returncode}; see sweep.log"}
                    _write_status(workdir / m.name, **status, index=m.index)
                results[m.name] = status
                log(f"({len(results)}/{total}) finished {m.name}")
                _log_status(log, m, status)
    finally:
        stop_workers([proc for proc, _ in running.values()])
        for _, out in running.values():
            out.close()
    return results


PARENT_ENV = "DISENTANGLE_SWEEP_PARENT"  # pid of the sweep that started this worker


def _stop_with_parent() -> None:
    """In a worker of a parallel sweep on Linux: receive SIGTERM when the sweep process
    dies, even by SIGKILL (``prctl(PR_SET_PDEATHSIG)``), so no worker outlives it."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(parent):  # the sweep died before the call
        os.kill(os.getpid(), signal.SIGTERM)


def stop_workers(procs: Sequence[subprocess.Popen], grace: float = 10.0) -> None:
    """SIGTERM every process still running (each records its member as interrupted), then
    SIGKILL those still alive after ``grace`` seconds; returns when all have exited."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
