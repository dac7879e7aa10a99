"""End-to-end DR-RFF study on a tiny budget (slow: compiles three training programs)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from experiments import rf_fingerprint


@pytest.mark.slow
def test_tiny_study_writes_results_report_and_roc(tmp_path):
    quick = rf_fingerprint.QUICK
    settings = dataclasses.replace(
        quick, n_devices=5, n_known=3, train_per_device=20, test_per_device=6,
        model=dataclasses.replace(quick.model, steps=8, warmup_steps=4))
    rf_fingerprint.run(settings, str(tmp_path), seeds=(0,))
    results = json.loads((tmp_path / "results.json").read_text())
    for method in ("dr_rff", "ml_rff", "ml_rff_awgn"):
        for split in ("known_los", "known_multipath", "unseen_los", "unseen_multipath"):
            entry = results[method][split]
            assert 0.0 <= entry["auc"] <= 1.0 and 0.0 <= entry["eer"] <= 1.0
            assert 0.0 <= entry["accuracy"] <= 1.0 and len(entry["auc_per_seed"]) == 1
    report = (tmp_path / "report.md").read_text()
    assert "![ROC curves (first seed)](roc.png)" in report and "known_multipath" in report
    assert (tmp_path / "roc.png").stat().st_size > 10_000
