"""The tutorial notebook (docs/notebook.ipynb) runs end to end, and the notebook API's
pieces return what they say."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def test_tutorial_notebook_executes(monkeypatch):
    """Every code cell, in order, in one namespace (as a kernel would run them)."""
    monkeypatch.chdir(ROOT)
    nb = json.loads((ROOT / "docs" / "notebook.ipynb").read_text())
    namespace: dict = {}
    for i, cell in enumerate(c for c in nb["cells"] if c["cell_type"] == "code"):
        exec(compile("".join(cell["source"]), f"notebook cell {i}", "exec"), namespace)
    run, table = namespace["run"], namespace["table"]
    # The API's numbers are the model's: the reconstruction is decode(encode(x).mean).
    images = namespace["images"]
    np.testing.assert_allclose(run.reconstruct(images), run.decode(run.encode(images)["mean"]))
    assert list(table["seed"]) == [0, 1] and set(table["method"]) == {"beta_vae"}
    ev = json.loads((Path(table["path"][0]) / "eval.json").read_text())
    assert table["infom"][0] == ev["representations"]["mean"]["infom"]
    assert table["train/loss"][0] == run.log()[-1]["loss"]
    assert os.path.exists(Path(table["path"][1]) / "eval_log.jsonl")
