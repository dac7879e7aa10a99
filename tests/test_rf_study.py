"""The DR-RFF study on the harness: diagnostics' arithmetic and verdicts, the paper's-text
variants' configs, the claims per setting and the code-minus-text figures (fast), and the
study end to end on a tiny budget (slow: trains the three methods and two variants through
the trainer)."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pytest

from disentangle.errors import UserError
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
    return {"figures": {f"{rf_fingerprint.diag_prefix('dr_rff')}/{k}": harness.interval(v)
                        for k, v in figs.items()},
            "claims": [{"verdict": claim}]}


def test_mechanism_verdict_separates_small_effect_from_failure():
    works = _results([0.12, 0.14, 0.13], [0.6, 0.62, 0.58], [0.2, 0.18, 0.21],
                     harness.INCONCLUSIVE)
    assert rf_fingerprint.mechanism(works)[0] == "works"
    assert "works but the effect is small" in rf_fingerprint.notes(works)
    # Passing diagnostics with a claim that does not hold is not called a small effect.
    behind = _results([0.12, 0.14, 0.13], [0.6, 0.62, 0.58], [0.2, 0.18, 0.21])
    assert "not a small effect" in rf_fingerprint.notes(behind)
    assert "effect is small" not in rf_fingerprint.notes(behind)
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


def _unseen_multipath(values):
    return {f"{run}/unseen_multipath/{k}": v for (run, k), v in values.items()}


def test_claims_compare_dr_rff_with_each_baseline_on_unseen_multipath():
    figs = _unseen_multipath({
        ("dr_rff", "auc"): [0.95, 0.96, 0.94], ("ml_rff", "auc"): [0.80, 0.82, 0.81],
        ("ml_rff_awgn", "auc"): [0.99, 0.99, 0.975], ("dr_rff", "eer"): [0.05, 0.06, 0.04],
        ("ml_rff", "eer"): [0.2, 0.19, 0.21], ("ml_rff_awgn", "eer"): [0.02, 0.03, 0.01]})
    verdicts = {c.name: c.judge(figs).verdict for c in rf_fingerprint.STUDY.claims
                if rf_fingerprint.claim_setting(c.name) == "code"}
    assert verdicts == {"auc_above_ml_rff": harness.HOLDS, "eer_below_ml_rff": harness.HOLDS,
                        "auc_above_ml_rff_awgn": harness.FAILS,
                        "eer_below_ml_rff_awgn": harness.FAILS}
    assert {c.paper for c in rf_fingerprint.STUDY.claims} >= {
        "AUC 0.99 (DR-RFF) vs 0.89 (ML)", "EER 0.04 (DR-RFF) vs 0.08 (ML + AWGN aug.)"}


def test_variants_overrides_reach_their_configs_and_nothing_else():
    text = {k: rf_fingerprint.run_config(r, TINY, 3).model
            for k, r in rf_fingerprint.setting_runs("paper_text").items()}
    code = {m: rf_fingerprint.run_config(m, TINY, 3).model for m in rf_fingerprint.METHODS}
    assert (text["dr_rff"].shuffle_label, text["dr_rff"].g_loss_to_q,
            text["dr_rff"].fingerprint_distance, text["dr_rff"].q_noise_std) == (
        "fingerprint_donor", False, "unit_sq_distance", 0.1)
    assert (code["dr_rff"].shuffle_label, code["dr_rff"].g_loss_to_q,
            code["dr_rff"].fingerprint_distance, code["dr_rff"].q_noise_std) == (
        "channel_donor", True, "feature_mse", 1.0)
    assert tuple(text["ml_rff_awgn"].awgn_snr_db) == (0.0, 20.0)
    assert tuple(code["ml_rff_awgn"].awgn_snr_db) == (5.0, 30.0)
    assert rf_fingerprint.setting_runs("paper_text")["ml_rff"] == "ml_rff"
    # The mode's overrides (the method's per_method too) and the seed reach the variant.
    cfg = rf_fingerprint.run_config("dr_rff_paper_text", TINY, 3)
    assert (cfg.model.q_width, cfg.model.warmup_steps, cfg.train.seed,
            cfg.data.options.split_seed) == (4, 3, 3, 1003)
    # Only the choices differ between a method's two settings.
    for method, run in rf_fingerprint.setting_runs("paper_text").items():
        a = rf_fingerprint.run_config(method, TINY, 3).to_dict()
        b = rf_fingerprint.run_config(run, TINY, 3).to_dict()
        assert {k for k in a["model"] if a["model"][k] != b["model"][k]} == set(
            rf_fingerprint.CHOICES.get(method, ()))
        assert {k: v for k, v in a.items() if k != "model"} == {
            k: v for k, v in b.items() if k != "model"}
    with pytest.raises(UserError, match="unknown run 'dr_rff_text'.*dr_rff_paper_text"):
        rf_fingerprint.run_config("dr_rff_text", TINY, 0)


def test_claims_exist_per_setting_and_judge_that_settings_runs():
    names = {c.name for c in rf_fingerprint.STUDY.claims}
    base = {f"{k}_{m}" for k in ("auc_above", "eer_below") for m in ("ml_rff", "ml_rff_awgn")}
    assert names == base | {f"paper_text/{n}" for n in base}
    # Code: DR-RFF ahead of both baselines; text: its DR-RFF behind both (and ML + AWGN's
    # text run ahead of ML + AWGN's code run), so each verdict shows which runs it read.
    figs = _unseen_multipath({
        ("dr_rff", "auc"): [0.95, 0.96, 0.94], ("dr_rff", "eer"): [0.05, 0.06, 0.04],
        ("ml_rff", "auc"): [0.80, 0.82, 0.81], ("ml_rff", "eer"): [0.2, 0.19, 0.21],
        ("ml_rff_awgn", "auc"): [0.85, 0.86, 0.84], ("ml_rff_awgn", "eer"): [0.15, 0.14, 0.16],
        ("dr_rff_paper_text", "auc"): [0.70, 0.72, 0.71],
        ("dr_rff_paper_text", "eer"): [0.35, 0.33, 0.34],
        ("ml_rff_awgn_paper_text", "auc"): [0.97, 0.97, 0.96],
        ("ml_rff_awgn_paper_text", "eer"): [0.03, 0.04, 0.02]})
    verdicts = {c.name: c.judge(figs).verdict for c in rf_fingerprint.STUDY.claims}
    assert verdicts == {**dict.fromkeys(base, harness.HOLDS),
                        **{f"paper_text/{n}": harness.FAILS for n in base}}
    text = {c.name: c for c in rf_fingerprint.STUDY.claims}["paper_text/auc_above_ml_rff_awgn"]
    assert "dr_rff_paper_text/unseen_multipath/auc - ml_rff_awgn_paper_text" in text.judge(
        figs).evidence
    assert text.statement.startswith("Paper's text: ") and text.paper == (
        "AUC 0.99 (DR-RFF) vs 0.98 (ML + AWGN aug.)")


def test_code_minus_text_is_code_run_minus_its_text_variant_per_seed():
    figures = {}
    for split in ("known_los", "known_multipath", "unseen_los", "unseen_multipath"):
        figures |= {f"dr_rff/{split}/auc": 0.9, f"dr_rff_paper_text/{split}/auc": 0.7,
                    f"dr_rff/{split}/eer": 0.1, f"dr_rff_paper_text/{split}/eer": 0.3,
                    f"ml_rff_awgn/{split}/auc": 0.8, f"ml_rff_awgn_paper_text/{split}/auc": 0.85,
                    f"ml_rff_awgn/{split}/eer": 0.2, f"ml_rff_awgn_paper_text/{split}/eer": 0.15,
                    f"ml_rff/{split}/auc": 0.5, f"ml_rff/{split}/eer": 0.5}
    diff = rf_fingerprint.code_minus_text(figures)
    assert len(diff) == 2 * 4 * 2  # two methods with a variant, four splits, AUC and EER
    assert diff["code_minus_text/dr_rff/unseen_multipath/auc"] == pytest.approx(0.2)
    assert diff["code_minus_text/dr_rff/unseen_multipath/eer"] == pytest.approx(-0.2)
    assert diff["code_minus_text/ml_rff_awgn/known_los/auc"] == pytest.approx(-0.05)
    assert diff["code_minus_text/ml_rff_awgn/known_los/eer"] == pytest.approx(0.05)
    assert not any("ml_rff/" in k for k in diff)
    # A run that was not scored gives no difference rather than a wrong one.
    del figures["dr_rff_paper_text/unseen_multipath/auc"]
    assert "code_minus_text/dr_rff/unseen_multipath/auc" not in rf_fingerprint.code_minus_text(
        figures)


def test_notes_report_both_settings_and_the_paired_differences():
    per_seed = {"dr_rff/unseen_multipath/auc": [0.9, 0.91, 0.89],
                "dr_rff_paper_text/unseen_multipath/auc": [0.7, 0.75, 0.72],
                "code_minus_text/dr_rff/unseen_multipath/auc": [0.2, 0.16, 0.17],
                "code_minus_text/ml_rff_awgn/unseen_multipath/auc": [0.01, -0.02, 0.0]}
    results = {"figures": {k: harness.interval(v) for k, v in per_seed.items()},
               "claims": [], "settings": TINY}
    text = rf_fingerprint.notes(results)
    assert "| DR-RFF | `model.shuffle_label` | channel_donor | fingerprint_donor |" in text
    assert "| ML + AWGN aug. | `model.awgn_snr_db` | (5.0, 30.0) | (0.0, 20.0) |" in text
    assert "| 0.900 [0.875, 0.925] | 0.723 [0.661, 0.786] |" in text
    assert "| code_minus_text/dr_rff/unseen_multipath/auc | 0.177" in text
    assert "+0.200, +0.160, +0.170 | code > text |" in text
    assert "-0.020, +0.000 | not resolved (interval contains 0) |" in text


@pytest.mark.slow
def test_tiny_study_writes_figures_claims_diagnostics_and_roc(tmp_path):
    study = dataclasses.replace(rf_fingerprint.STUDY, modes={"tiny": TINY})
    res = harness.run(study, "tiny", tmp_path)
    for method in rf_fingerprint.RUNS:
        log = [json.loads(line) for line in
               (tmp_path / "seed0" / method / "metrics.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log] == [2, 4, 6]
        for split in ("known_los", "known_multipath", "unseen_los", "unseen_multipath"):
            for key in ("auc", "eer", "accuracy"):
                iv = res["figures"][f"{method}/{split}/{key}"]
                assert iv["n"] == 2 and all(0.0 <= v <= 1.0 for v in iv["values"])
    diag = {k.rsplit("/", 1)[1]: v["values"] for k, v in res["figures"].items()
            if k.startswith(rf_fingerprint.diag_prefix("dr_rff"))}
    assert diag["chance"] == [1 / 3, 1 / 3]
    for key in ("f_accuracy_on_x_bar", "recombined_as_fingerprint_donor",
                "recombined_as_channel_donor", "hinge_active_share"):
        assert all(0.0 <= v <= 1.0 for v in diag[key]), key
    # The hinge is max(0, gap): the logged training values are never negative.
    assert all(v >= 0.0 for v in diag["hinge_train"]) and all(v > 0 for v in diag["recon_q"])
    # The variants were trained with their settings' choices.
    model = json.loads((tmp_path / "seed1" / "dr_rff_paper_text" / "config.json").read_text())[
        "model"]
    assert (model["shuffle_label"], model["g_loss_to_q"], model["fingerprint_distance"],
            model["q_noise_std"]) == ("fingerprint_donor", False, "unit_sq_distance", 0.1)
    assert json.loads((tmp_path / "seed1" / "dr_rff" / "config.json").read_text())["model"][
        "shuffle_label"] == "channel_donor"
    assert json.loads((tmp_path / "seed1" / "ml_rff_awgn_paper_text" / "config.json")
                      .read_text())["model"]["awgn_snr_db"] == [0.0, 20.0]
    text_diag = res["figures"]["dr_rff_paper_text/diagnostics/chance"]["values"]
    assert text_diag == [1 / 3, 1 / 3]
    # code_minus_text: each seed's code figure minus its text figure.
    for seed, figs in res["per_seed"].items():
        for method in ("dr_rff", "ml_rff_awgn"):
            for key in ("unseen_multipath/auc", "known_los/eer"):
                assert figs[f"code_minus_text/{method}/{key}"] == pytest.approx(
                    figs[f"{method}/{key}"] - figs[f"{method}_paper_text/{key}"]), (seed, key)
    assert {c["name"] for c in res["claims"]} == {c.name for c in rf_fingerprint.STUDY.claims}
    assert all(c["verdict"] in (harness.HOLDS, harness.FAILS, harness.INCONCLUSIVE)
               for c in res["claims"])
    report = (tmp_path / "report.md").read_text()
    assert "AUC 0.99 (DR-RFF) vs 0.89 (ML)" in report and "## Diagnostics" in report
    assert "Paper's text: DR-RFF's AUC" in report
    assert "**Paper's text** (`dr_rff_paper_text`)" in report
    assert "## Authors' code minus paper's text" in report
    assert "![roc.png](roc.png)" in report and (tmp_path / "roc.png").stat().st_size > 10_000
