"""Shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import json
from pathlib import Path


def write_json(path: str | None, result: dict) -> None:
    """Write a benchmark result as indented JSON (numpy scalars as floats), if asked."""
    if not path:
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(result, indent=2, default=float) + "\n")
