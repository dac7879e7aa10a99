"""The study harness: modes, seeds, 95 % intervals, verdicts, results.json and report.md.

A study module keeps only its science: a :class:`Study` with its modes, a function that
runs one seed and returns its figures, and its claims. ``harness.main(STUDY)`` does the
rest, the same way for every study::

    python -m experiments.NAME --quick|--cpu|--full [--out DIR] [--seeds 0,1,2] [key=value ...]
    python -m experiments.NAME --rejudge --out DIR

- ``--quick``: minutes, to see that it works; ``--cpu``: at most an hour on 2 cores and
  large enough to test the claims (its results are committed under ``results/NAME/``);
  ``--full``: the paper's scale.
- ``key=value`` arguments replace the mode's settings (values parsed as Python literals,
  else kept as strings), e.g. ``steps=500``; the command is recorded in results.json.
- Each seed's figures are written to ``OUT/seeds/SEED.json`` when that seed finishes, so a
  killed study resumes at the first unfinished seed (and the trainer resumes the runs of
  that seed from their checkpoints).
- Every figure is reported as the mean over seeds with a two-sided 95 % Student-t
  interval, ``mean +- t_{0.975, n-1} s / sqrt(n)`` (s: sample std, ddof 1).
- Every claim is judged **holds**, **does not hold** or **inconclusive** from intervals
  (see :func:`greater` and :func:`at_least`), next to the paper's own figure. A verdict
  whose interval has a bound within :data:`AT_MARGIN` of its width from the threshold is
  marked *at the margin* (it can flip with a change in the third decimal, e.g. another
  CPU's kernels).
- A seed whose training diverges (:class:`disentangle.train.NonFiniteLossError`) is
  recorded as failed in its seed file, with the trainer's message, and the study goes on;
  its figures are missing from every interval (each shows its ``n``) and the report names
  it. The divergence is deterministic, so a rerun does not try it again; delete
  ``OUT/seeds/SEED.json`` to retry it after a fix.
- The process is set up as the CLI's (:func:`disentangle.xla_options.prepare_process`):
  XLA's process flags (bit-identical losses, checked on conv64 and hsu_style) and JAX's
  persistent compilation cache, so the seeds' train steps are one program, compiled once.
- ``--rejudge`` judges the claims again from ``OUT/results.json``'s per-seed figures with
  the study's current claims and rewrites results.json and report.md, training nothing.
  A results.json assembled by hand (e.g. seeds joined from two runs) says how in its
  ``provenance`` paragraphs, which the report shows under the command.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import math
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from disentangle.backend import describe_machine, machine
from disentangle.sweep import REPO_ROOT

CONFIGS = REPO_ROOT / "configs"  # the config files the studies' runs start from
MODES = ("quick", "cpu", "full")
HOLDS, FAILS, INCONCLUSIVE = "holds", "does not hold", "inconclusive"
AT_MARGIN = 0.05  # a bound within this share of the interval's width from the threshold


# ----------------------------------------------------------------------------- statistics
def interval(values: Sequence[float], level: float = 0.95) -> dict[str, Any]:
    """Mean and two-sided Student-t interval of ``values`` (NaN bounds for n < 2)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    n = len(v)
    if n == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0, "values": []}
    mean = float(v.mean())
    if n < 2:
        low = high = math.nan
    else:
        half = float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))
        low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": n, "values": v.tolist()}


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A claim's verdict with the interval it was decided from; ``at_margin``: see
    :func:`at_margin`."""

    verdict: str
    evidence: str
    interval: dict[str, Any]
    at_margin: bool = False


def _decide(iv: dict[str, Any], threshold: float, what: str) -> Verdict:
    if iv["n"] >= 2 and iv["low"] > threshold:
        verdict = HOLDS
    elif iv["n"] >= 2 and iv["high"] < threshold:
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    return Verdict(verdict, f"{what}: {fmt_interval(iv)} (n={iv['n']}) vs {threshold:g}", iv,
                   at_margin(iv, threshold))


def at_margin(iv: Mapping[str, Any], threshold: float) -> bool:
    """The interval's nearer bound lies within :data:`AT_MARGIN` x (high - low) of
    ``threshold``: a small shift of the interval would change the verdict."""
    if iv["n"] < 2 or not np.isfinite(iv["low"]):
        return False
    gap = min(abs(iv["low"] - threshold), abs(iv["high"] - threshold))
    return gap <= AT_MARGIN * (iv["high"] - iv["low"])


def greater(figures: Mapping[str, Sequence[float]], a: str, b: str, margin: float = 0.0,
            paired: bool = True) -> Verdict:
    """Claim ``a > b + margin``: holds if the 95 % interval of the difference lies above
    ``margin``, does not hold if it lies below, else inconclusive. ``paired``: the
    difference is taken seed by seed (both figures from the same seeds), else the two
    samples' means are compared with Welch's interval."""
    if a not in figures or b not in figures:
        return Verdict(INCONCLUSIVE, f"{a} or {b}: not measured", interval([]))
    xa, xb = np.asarray(figures[a], float), np.asarray(figures[b], float)
    if paired:
        iv = interval((xa - xb).tolist())
    else:
        iv = _welch(xa, xb)
    return _decide(iv, margin, f"{a} - {b}")


def at_least(figures: Mapping[str, Sequence[float]], a: str, threshold: float) -> Verdict:
    """Claim ``a >= threshold`` (e.g. an AUC the paper reports), decided from a's interval."""
    if a not in figures:
        return Verdict(INCONCLUSIVE, f"{a}: not measured", interval([]))
    return _decide(interval(figures[a]), threshold, a)


def greater_than_all(figures: Mapping[str, Sequence[float]], a: str, others: Sequence[str],
                     paired: bool = True) -> Verdict:
    """Claim ``a > b`` for every ``b`` in ``others``: holds if it holds against each, does
    not hold if it fails against any, else inconclusive; at the margin if any comparison
    is."""
    verdicts = [greater(figures, a, b, paired=paired) for b in others if b in figures]
    if not verdicts or a not in figures:
        return Verdict(INCONCLUSIVE, f"{a}: no figures to compare", interval([]))
    worst = min(verdicts, key=lambda v: v.interval["low"] if v.interval["n"] >= 2
                else -math.inf)
    if all(v.verdict == HOLDS for v in verdicts):
        verdict = HOLDS
    elif any(v.verdict == FAILS for v in verdicts):
        verdict = FAILS
    else:
        verdict = INCONCLUSIVE
    return Verdict(verdict, "; ".join(v.evidence for v in verdicts), worst.interval,
                   any(v.at_margin for v in verdicts))


def _welch(xa: np.ndarray, xb: np.ndarray, level: float = 0.95) -> dict[str, Any]:
    xa, xb = xa[np.isfinite(xa)], xb[np.isfinite(xb)]
    na, nb = len(xa), len(xb)
    mean = float(xa.mean() - xb.mean())
    if na < 2 or nb < 2:
        return {"mean": mean, "low": math.nan, "high": math.nan, "n": min(na, nb), "values": []}
    va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1)) if se > 0 else na + nb - 2
    half = float(stats.t.ppf(0.5 + level / 2, df) * se)
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": min(na, nb),
            "values": []}


def fmt_interval(iv: Mapping[str, Any], digits: int = 3) -> str:
    if iv["n"] == 0:
        return "n/a"
    if not np.isfinite(iv["low"]):
        return f"{iv['mean']:.{digits}f}"
    return f"{iv['mean']:.{digits}f} [{iv['low']:.{digits}f}, {iv['high']:.{digits}f}]"


def figure(results: Mapping[str, Any], key: str) -> dict[str, Any]:
    """The interval of figure ``key`` in ``results``; an empty one (n = 0) if it is absent."""
    return results["figures"].get(key) or interval([])


def fmt_figure(results: Mapping[str, Any], key: str, digits: int = 3) -> str:
    """:func:`fmt_interval` of :func:`figure` (``n/a`` when absent)."""
    return fmt_interval(figure(results, key), digits)


# ----------------------------------------------------------------------------- studies
@dataclasses.dataclass(frozen=True)
class Claim:
    """One of the paper's claims: how to judge it from the seeds' figures.

    ``judge(figures)`` gets ``figure name -> list of per-seed values`` and returns a
    :class:`Verdict` (use :func:`greater` / :func:`at_least`).
    """

    name: str
    statement: str
    paper: str  # the paper's own figure or wording
    judge: Callable[[Mapping[str, Sequence[float]]], Verdict]


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: its modes (each a settings dict with at least ``seeds``), the run of one
    seed ``run_seed(settings, seed, workdir) -> {figure: float}``, its claims and
    optional ``notes(results) -> markdown`` (diagnostics, extra tables) and
    ``plots(results, out) -> paths`` (small figures, linked from the report)."""

    name: str
    title: str
    paper: str
    modes: Mapping[str, Mapping[str, Any]]
    run_seed: Callable[[Mapping[str, Any], int, Path], Mapping[str, float]]
    claims: Sequence[Claim] = ()
    notes: Callable[[dict], str] | None = None
    plots: Callable[[dict, Path], Sequence[Path]] | None = None  # (results, out) -> files
    runtime: Mapping[str, str] = dataclasses.field(default_factory=dict)  # mode -> text


def run(study: Study, mode: str, out: Path, seeds: Sequence[int] | None = None,
        command: str = "", overrides: Mapping[str, Any] | None = None) -> dict:
    """Run (or resume) ``study`` in ``mode`` into ``out`` with the mode's settings updated by
    ``overrides``; writes and returns the results."""
    if mode not in study.modes:
        from disentangle.errors import UserError

        raise UserError(f"study {study.name!r} has no mode {mode!r}; accepted: "
                        f"{', '.join(study.modes)}")
    settings = dict(study.modes[mode])
    unknown = sorted(set(overrides or ()) - set(settings))
    if unknown:
        from disentangle.errors import UserError

        raise UserError(f"study {study.name!r} mode {mode!r} has no setting {unknown[0]!r}; "
                        f"accepted: {', '.join(sorted(settings))}")
    settings.update(overrides or {})
    seeds = list(settings["seeds"] if seeds is None else seeds)
    out.mkdir(parents=True, exist_ok=True)
    (out / "seeds").mkdir(exist_ok=True)
    from disentangle.train import NonFiniteLossError

    per_seed: dict[int, dict[str, float]] = {}
    machines: dict[str, dict | None] = {}  # per seed: a study may be resumed elsewhere
    failed: dict[str, str] = {}  # seed -> the trainer's message
    started = time.time()
    for seed in seeds:
        path = out / "seeds" / f"{seed}.json"
        if path.exists():
            saved = json.loads(path.read_text())
            per_seed[seed], machines[str(seed)] = saved["figures"], saved.get("machine")
            if "failed" in saved:
                failed[str(seed)] = saved["failed"]
            print(f"[{study.name}] seed {seed}: {'failed' if 'failed' in saved else 'done'} "
                  f"earlier ({path})", flush=True)
            continue
        t0 = time.time()
        print(f"[{study.name}] seed {seed} ({mode})", flush=True)
        record: dict[str, Any] = {}
        try:
            figures = {k: float(v) for k, v in
                       study.run_seed(settings, seed, out / f"seed{seed}").items()}
        except NonFiniteLossError as err:
            figures = {}
            record["failed"] = failed[str(seed)] = str(err)
            print(f"[{study.name}] seed {seed} failed, left out of the intervals: {err}",
                  flush=True)
        machines[str(seed)] = machine()
        path.write_text(json.dumps({"seed": seed, "seconds": time.time() - t0,
                                    "machine": machines[str(seed)], "figures": figures,
                                    **record}, indent=1))
        per_seed[seed] = figures
    by_seed = {str(s): per_seed[s] for s in seeds}
    figures = seed_aligned(by_seed)
    results = {"study": study.name, "title": study.title, "paper": study.paper, "mode": mode,
               "command": command, "seeds": seeds, "settings": _jsonable(settings),
               "seconds_this_call": time.time() - started,
               "figures": {k: interval(v) for k, v in figures.items()},
               "per_seed": by_seed, "machines": machines,
               "claims": judge(study, figures)}
    if failed:
        results["failed_seeds"] = failed
    if study.plots is not None:
        results["plots"] = [str(Path(p).relative_to(out)) for p in study.plots(results, out)]
    write(study, results, out)
    return results


def seed_aligned(per_seed: Mapping[str, Mapping[str, float]]) -> dict[str, list[float]]:
    """Figure name -> its value on each seed of ``per_seed`` (in order), NaN where a seed has
    no such figure, so that paired differences pair the same seeds; intervals drop NaNs."""
    names = sorted({k for f in per_seed.values() for k in f})
    return {k: [f.get(k, math.nan) for f in per_seed.values()] for k in names}


def judge(study: Study, figures: Mapping[str, Sequence[float]]) -> list[dict[str, Any]]:
    """The records of ``study``'s claims judged on ``figures`` (name -> per-seed values)."""
    claims = []
    for claim in study.claims:
        v = claim.judge(figures)
        claims.append({"name": claim.name, "statement": claim.statement, "paper": claim.paper,
                       "verdict": v.verdict, "evidence": v.evidence, "interval": v.interval,
                       "at_margin": v.at_margin})
    return claims


def rejudge(study: Study, out: Path) -> dict:
    """Judge ``study``'s current claims again on ``out/results.json``'s per-seed figures and
    rewrite its results.json and report.md (nothing is trained; plots are kept)."""
    path = out / "results.json"
    if not path.exists():
        from disentangle.errors import UserError

        raise UserError(f"--rejudge: {path} does not exist; run the study into {out} first")
    results = json.loads(path.read_text())
    per_seed = {str(s): results["per_seed"][str(s)] for s in results["seeds"]}
    results["claims"] = judge(study, seed_aligned(per_seed))
    write(study, results, out)
    return results


def write(study: Study, results: dict, out: Path) -> None:
    """Write ``results`` to ``out/results.json`` and its report to ``out/report.md``."""
    (out / "results.json").write_text(json.dumps(results, indent=1, default=_json_default))
    (out / "report.md").write_text(report_md(study, results))


def report_md(study: Study, results: dict) -> str:
    """The study's report: what was run, the claims' verdicts, then every figure."""
    lines = [f"# {study.title} ({results['mode']})", "", f"Paper: {study.paper}", "",
             f"Command: `{results['command']}`" if results["command"] else ""]
    for paragraph in results.get("provenance", ()):  # how joined or moved seeds were made
        lines += ["", paragraph]
    if results.get("provenance"):
        lines.append("")
    lines += [f"Seeds: {', '.join(map(str, results['seeds']))}. Figures are means over "
              "seeds with 95 % Student-t intervals.", ""]
    failed = results.get("failed_seeds", {})
    if failed:
        lines += ["Failed seeds, left out of every interval (each figure gives its n): "
                  + "; ".join(f"seed {s}: {msg}" for s, msg in failed.items()), ""]
    by_machine: dict[str, list[str]] = {}
    for seed, info in results.get("machines", {}).items():
        by_machine.setdefault(describe_machine(info) if info else "not recorded", []).append(seed)
    if by_machine:  # training is not bit-reproducible across CPUs (XLA's kernels differ)
        lines += ["Machines: " + "; ".join(f"{m} (seeds {', '.join(s)})"
                                          for m, s in by_machine.items()) + ".", ""]
    if results["claims"]:
        lines += ["## Claims", "", "| claim | verdict | ours | paper |", "|---|---|---|---|"]
        for c in results["claims"]:
            margin = " (at the margin)" if c.get("at_margin") else ""
            lines.append(f"| {c['statement']} | **{c['verdict']}**{margin} | {c['evidence']} | "
                         f"{c['paper']} |")
        lines.append("")
        if any(c.get("at_margin") for c in results["claims"]):
            lines += [f"At the margin: a bound of the interval lies within "
                      f"{AT_MARGIN * 100:g} % of the interval's width from the threshold, so a "
                      "small shift (another CPU, another seed) can change the verdict.", ""]
    lines += ["## Figures", "", "| figure | mean [95 % interval] | per seed |", "|---|---|---|"]
    for name, iv in results["figures"].items():
        per = ", ".join(f"{x:.3g}" for x in iv["values"])
        lines.append(f"| {name} | {fmt_interval(iv)} | {per} |")
    if study.notes is not None:
        lines += ["", study.notes(results)]
    for path in results.get("plots", ()):
        lines += ["", f"![{path}]({path})"]
    return "\n".join(lines) + "\n"


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_json_default))


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def main(study: Study, argv: Sequence[str] | None = None) -> int:
    """The command line of every study (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog=f"python -m experiments.{study.name}",
                                     description=study.title)
    group = parser.add_mutually_exclusive_group(required=True)
    for mode in study.modes:
        group.add_argument(f"--{mode}", dest="mode", action="store_const", const=mode,
                           help=study.runtime.get(mode, ""))
    group.add_argument("--rejudge", dest="mode", action="store_const", const="rejudge",
                       help="judge the claims again on --out's results.json (no training)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output directory (default runs/NAME_MODE)")
    parser.add_argument("--seeds", default=None,
                        help="comma-separated seeds instead of the mode's own")
    parser.add_argument("settings", nargs="*", metavar="key=value",
                        help="replace a setting of the mode (e.g. steps=500)")
    args = parser.parse_args(argv)
    overrides = {}
    for item in args.settings:
        key, sep, text = item.partition("=")
        if not sep:
            parser.error(f"{item!r} is not of the form key=value")
        try:
            overrides[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            overrides[key] = text
    if args.mode == "rejudge" and (args.out is None or args.seeds or overrides):
        parser.error("--rejudge takes --out DIR only (the directory of a results.json)")
    out = args.out or Path("runs") / f"{study.name}_{args.mode}"
    seeds = None if args.seeds is None else [int(s) for s in args.seeds.split(",") if s]
    command = shlex.join(["python", "-m", f"experiments.{study.name}", *argv])
    if args.mode == "rejudge":
        results = rejudge(study, out)
    else:
        from disentangle.xla_options import prepare_process

        prepare_process()  # as the CLI: XLA's process flags; the seeds' steps compiled once
        results = run(study, args.mode, out, seeds, command, overrides)
    for c in results["claims"]:
        margin = ", at the margin" if c.get("at_margin") else ""
        print(f"{c['name']}: {c['verdict']}{margin} ({c['evidence']})")
    print(f"wrote {out / 'results.json'} and {out / 'report.md'}")
    return 0
