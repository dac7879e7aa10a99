"""Shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
from collections.abc import Callable, Mapping
from pathlib import Path

from disentangle import xla_options


def write_json(path: str | None, result: dict) -> None:
    """Write a benchmark result as indented JSON (numpy scalars as floats), if asked."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2, default=float) + "\n")


def interleaved(runners: Mapping[str, Callable[[int], float]], repeats: int,
                work: Mapping[str, int], warmup: int = 2) -> dict[str, list[float]]:
    """Seconds that ``runners[name](work[name])`` takes, per repeat. Every runner is warmed
    up with ``warmup`` units, then each repeat runs all of them back to back in an order
    that alternates between repeats, so load from other users hits every variant alike."""
    names = list(runners)
    for name in names:
        runners[name](warmup)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            seconds[name].append(runners[name](work[name]))
    return seconds


def median_ratio(a: list[float], b: list[float]) -> float:
    """Median over repeats of ``a[r] / b[r]`` (rates measured in the same repeat)."""
    return statistics.median(x / y for x, y in zip(a, b))


def add_xla_process_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--xla-process-defaults", action="store_true",
                        help="leave XLA_FLAGS as they are (the CLI adds "
                             "disentangle.xla_options.PROCESS_FLAGS)")


def apply_xla_process_flags(args: argparse.Namespace) -> str:
    """Set the CLI's process-wide XLA flags unless ``--xla-process-defaults``; returns
    ``XLA_FLAGS`` as the run uses them (for the JSON). Call before any JAX computation."""
    if not args.xla_process_defaults:
        xla_options.set_process_flags()
    return os.environ.get("XLA_FLAGS", "")
