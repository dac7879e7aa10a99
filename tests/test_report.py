"""The report a person reads first: what was trained, who led, metrics over steps."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from disentangle import train as train_lib
from disentangle.evaluation import evaluate_run
from disentangle.report import write_report


def test_report_opens_with_what_was_trained_and_who_led(make_config, tmp_path):
    for name, method, seed in (("ae-seed0", "ae", 0), ("beta_vae-seed0", "beta_vae", 0),
                               ("beta_vae-seed1", "beta_vae", 1)):
        config = make_config(method, steps=4, **{"train.seed": seed, "eval.every": 2,
                                                 "eval.every_samples": 300})
        train_lib.train_and_evaluate(config, tmp_path / name, progress=False)
        evaluate_run(tmp_path / name, num_samples=300, names=["infomec", "mig"],
                     verbose=False)
    html_path, md_path = write_report(tmp_path)
    md = md_path.read_text()
    order = [md.index(h) for h in ("## What was trained", "## Which method led", "## Scores",
                                   "## Metrics during training", "## Members")]
    assert order == sorted(order)
    # The leader sentence names the group with the highest mean over seeds, and that mean.
    infom = {name: json.loads((tmp_path / name / "eval.json").read_text())
             ["representations"]["mean"]["infom"]
             for name in ("ae-seed0", "beta_vae-seed0", "beta_vae-seed1")}
    means = {"ae": infom["ae-seed0"],
             "beta_vae": (infom["beta_vae-seed0"] + infom["beta_vae-seed1"]) / 2}
    best = max(means, key=means.get)
    lead = re.search(r"- InfoM: (\w+) leads with ([0-9.]+)", md)
    assert lead is not None and lead.group(1) == best
    assert float(lead.group(2)) == pytest.approx(means[best], abs=5e-4)
    assert (tmp_path / "metrics_over_steps.png").exists()
    assert "metrics_over_steps.png" in md and "## beta_vae: traversals and NMI" in md
    assert "NMI between each factor" in md  # captions say what a figure shows
    page = html_path.read_text()
    assert '{"' not in page and "<pre>" not in page  # no raw JSON
    assert page.count("data:image/png;base64,") >= 4


def _fake_run(directory, name, nmi, infom):
    run = directory / name
    run.mkdir()
    (run / "eval.json").write_text(json.dumps({
        "primary": "codes", "reconstruction": 1.0,
        "representations": {"codes": {"nmi": nmi, "infom": infom}}}))
    return run


def test_captured_factors_count_rows_with_a_latent_at_half_their_entropy(tmp_path):
    """A factor is captured when max_j NMI_ij >= 0.5; the group shows its member with the
    most captured factors (then the highest InfoM), and the scores carry the count."""
    from disentangle.report import CAPTURED, captured_factors, representative, run_scores

    nmi = np.array([[0.5, 0.1], [0.49, 0.3], [0.0, 0.9]])
    assert captured_factors(nmi) == 2 and captured_factors(nmi, 0.95) == 0
    runs = [_fake_run(tmp_path, "m-seed0", [[0.6, 0.0], [0.1, 0.2]], 0.9),
            _fake_run(tmp_path, "m-seed1", [[0.6, 0.0], [0.1, 0.7]], 0.1),
            _fake_run(tmp_path, "m-seed2", [[0.6, 0.0], [0.8, 0.1]], 0.5)]
    assert [run_scores(r)[CAPTURED] for r in runs] == [1.0, 2.0, 2.0]
    assert representative(runs).name == "m-seed2"


def test_equal_means_are_reported_as_a_tie(tmp_path):
    from disentangle.report import leaders

    runs = [_fake_run(tmp_path, "b-seed0", [[0.6, 0.0], [0.1, 0.7]], 0.3),
            _fake_run(tmp_path, "a-seed0", [[0.9, 0.0], [0.0, 0.8]], 0.4),
            _fake_run(tmp_path, "c-seed0", [[0.1, 0.0], [0.0, 0.2]], 0.2)]
    lines = leaders(runs)
    assert "factors NMI≥0.5: a, b tie at 2.000." in lines
    assert any(x.startswith("InfoM: a leads with 0.400") for x in lines)
