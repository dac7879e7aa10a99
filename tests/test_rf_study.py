"""The DR-RFF study on the harness: diagnostics' arithmetic and verdicts (fast), and the
study end to end on a tiny budget (slow: trains three methods through the trainer)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from experiments import harness, rf_fingerprint

TINY = {"seeds": (0, 1), "test_per_device": 6,
        "common": ("data.options.n_devices=5", "data.options.n_known=3",
                   "data.options.n_symbols=1", "data.options.samples_per_chip=2",
                   "data.options.n_per_device=20", "model.embed_dim=8", "model.channels=[4,4]",
                   "train.steps=6", "train.batch_size=8", "train.log_every=2",
                   "train.checkpoint_every=6"),
        "per_method": {"dr_rff": ("model.q_width=4", "model.q_bottleneck=2", "model.g_width=4",
                                  "model.warmup_steps=3")}}


def test_donor_shares_count_pairs_of_different_devices_only():
    y = np.array([0, 0, 1, 2])
    perm = np.array([1, 2, 3, 0])  # pairs (0,0) same device: left out; (0,1), (1,2), (2,0)
    assert rf_fingerprint.donor_shares(y, y, perm) == (1.0, 0.0)
    assert rf_fingerprint.donor_shares(y[perm], y, perm) == (0.0, 1.0)
    # Predictions 0, 0, 0, 0: right for the fingerprint donor of pair 1 (y=0) and the
    # channel donor of pair 3 (y_perm=0), among the 3 pairs of different devices.
    assert rf_fingerprint.donor_shares(np.zeros(4, int), y, perm) == (1 / 3, 1 / 3)
    assert all(math.isnan(v) for v in rf_fingerprint.donor_shares(y, np.zeros(4, int), perm))


def _results(acc_x_bar, fingerprint, channel, claim=harness.FAILS):
    figs = {"chance": [0.125] * 3, "f_accuracy_on_x_bar": acc_x_bar,
            "recombined_as_fingerprint_donor": fingerprint,
            "recombined_as_channel_donor": channel, "hinge_active_share": [0.0] * 3}
    return {"figures": {f"{rf_fingerprint.DIAG}/{k}": harness.interval(v)
                        for k, v in figs.items()},
            "claims": [{"verdict": claim}]}


def test_mechanism_verdict_separates_small_effect_from_failure():
    works = _results([0.12, 0.14, 0.13], [0.6, 0.62, 0.58], [0.2, 0.18, 0.21])
    assert rf_fingerprint.mechanism(works)[0] == "works"
    assert "works but the effect is small" in rf_fingerprint.notes(works)
    leaks = _results([0.7, 0.72, 0.69], [0.6, 0.62, 0.58], [0.2, 0.18, 0.21])
    assert rf_fingerprint.mechanism(leaks)[0] == "does not work"
    assert "x_bar keeps the device" in rf_fingerprint.notes(leaks)
    follows_channel = _results([0.12, 0.14, 0.13], [0.2, 0.18, 0.21], [0.6, 0.62, 0.58])
    assert "channel donor" in rf_fingerprint.mechanism(follows_channel)[1]
    neither = _results([0.12, 0.14, 0.13], [0.13, 0.12, 0.14], [0.12, 0.13, 0.12])
    assert "neither donor" in rf_fingerprint.mechanism(neither)[1]
    wide = _results([0.1, 0.5, 0.2], [0.6, 0.2, 0.5], [0.2, 0.3, 0.4])
    assert rf_fingerprint.mechanism(wide)[0] == "unclear"
    holds = _results([0.12, 0.14, 0.13], [0.6, 0.62, 0.58], [0.2, 0.18, 0.21], harness.HOLDS)
    assert "claims hold at this scale" in rf_fingerprint.notes(holds)


def test_claims_compare_dr_rff_with_each_baseline_on_unseen_multipath():
    figs = {f"{m}/unseen_multipath/{k}": v for m, k, v in [
        ("dr_rff", "auc", [0.95, 0.96, 0.94]), ("ml_rff", "auc", [0.80, 0.82, 0.81]),
        ("ml_rff_awgn", "auc", [0.99, 0.99, 0.975]), ("dr_rff", "eer", [0.05, 0.06, 0.04]),
        ("ml_rff", "eer", [0.2, 0.19, 0.21]), ("ml_rff_awgn", "eer", [0.02, 0.03, 0.01])]}
    verdicts = {c.name: c.judge(figs).verdict for c in rf_fingerprint.STUDY.claims}
    assert verdicts == {"auc_above_ml_rff": harness.HOLDS, "eer_below_ml_rff": harness.HOLDS,
                        "auc_above_ml_rff_awgn": harness.FAILS,
                        "eer_below_ml_rff_awgn": harness.FAILS}
    assert {c.paper for c in rf_fingerprint.STUDY.claims} >= {
        "AUC 0.99 (DR-RFF) vs 0.89 (ML)", "EER 0.04 (DR-RFF) vs 0.08 (ML + AWGN aug.)"}


@pytest.mark.slow
def test_tiny_study_writes_figures_claims_diagnostics_and_roc(tmp_path):
    study = dataclasses.replace(rf_fingerprint.STUDY, modes={"tiny": TINY})
    res = harness.run(study, "tiny", tmp_path)
    for method in rf_fingerprint.METHODS:
        log = [json.loads(line) for line in
               (tmp_path / "seed0" / method / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == [2, 4, 6]
        for split in ("known_los", "known_multipath", "unseen_los", "unseen_multipath"):
            for key in ("auc", "eer", "accuracy"):
                iv = res["figures"][f"{method}/{split}/{key}"]
                assert iv["n"] == 2 and all(0.0 <= v <= 1.0 for v in iv["values"])
    diag = {k.rsplit("/", 1)[1]: v["values"] for k, v in res["figures"].items()
            if k.startswith(rf_fingerprint.DIAG)}
    assert diag["chance"] == [1 / 3, 1 / 3]
    for key in ("f_accuracy_on_x_bar", "recombined_as_fingerprint_donor",
                "recombined_as_channel_donor", "hinge_active_share"):
        assert all(0.0 <= v <= 1.0 for v in diag[key]), key
    # The hinge is max(0, gap): the logged training values are never negative.
    assert all(v >= 0.0 for v in diag["hinge_train"]) and all(v > 0 for v in diag["recon_q"])
    assert {c["name"] for c in res["claims"]} == {c.name for c in rf_fingerprint.STUDY.claims}
    assert all(c["verdict"] in (harness.HOLDS, harness.FAILS, harness.INCONCLUSIVE)
               for c in res["claims"])
    report = (tmp_path / "report.md").read_text()
    assert "AUC 0.99 (DR-RFF) vs 0.89 (ML)" in report and "## Diagnostics" in report
    assert "![roc.png](roc.png)" in report and (tmp_path / "roc.png").stat().st_size > 10_000
