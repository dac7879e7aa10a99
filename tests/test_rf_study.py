"""End-to-end DR-RFF study on a tiny budget (slow: trains three methods via the trainer)."""

from __future__ import annotations

import dataclasses
import json

import pytest

from experiments import rf_fingerprint

TINY = ("data.options.n_devices=5", "data.options.n_known=3", "data.options.n_symbols=1",
        "data.options.samples_per_chip=2", "data.options.n_per_device=20",
        "model.embed_dim=8", "model.channels=[4,4]", "train.steps=6", "train.batch_size=8",
        "train.log_every=2", "train.checkpoint_every=6")


@pytest.mark.slow
def test_tiny_study_writes_results_report_and_roc(tmp_path):
    settings = dataclasses.replace(
        rf_fingerprint.QUICK, common=TINY, test_per_device=6,
        per_method={"dr_rff": ("model.q_width=4", "model.q_bottleneck=2", "model.g_width=4",
                               "model.warmup_steps=3")})
    rf_fingerprint.run(settings, tmp_path, seeds=(0,))
    results = json.loads((tmp_path / "results.json").read_text())
    for method in ("dr_rff", "ml_rff", "ml_rff_awgn"):
        assert (tmp_path / "seed0" / method / "config.json").exists()
        assert [r["step"] for r in results[method]["history"][0]] == [2, 4, 6]
        for split in ("known_los", "known_multipath", "unseen_los", "unseen_multipath"):
            entry = results[method][split]
            assert 0.0 <= entry["auc"] <= 1.0 and 0.0 <= entry["eer"] <= 1.0
            assert 0.0 <= entry["accuracy"] <= 1.0 and len(entry["auc_per_seed"]) == 1
    # DR-RFF alternates after its warm-up: QG terms are logged from step 4 on only.
    history = results["dr_rff"]["history"][0]
    assert "qg_loss" not in history[0] and "qg_loss" in history[1]
    report = (tmp_path / "report.md").read_text()
    assert "![ROC curves (first seed)](roc.png)" in report and "known_multipath" in report
    assert (tmp_path / "roc.png").stat().st_size > 10_000
