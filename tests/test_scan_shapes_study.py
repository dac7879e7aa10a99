"""The beta-VAE + SCAN shapes study on the harness: figures, claims, errors, and (slow) the
study end to end on a tiny budget."""

from __future__ import annotations

import json

import numpy as np
import pytest

from disentangle.errors import UserError
from experiments import harness, scan_shapes


def _nested_result() -> dict:
    """An evaluate_scan-shaped result with hand-picked values."""
    scores = lambda acc, div: {"accuracy": acc, "diversity": div}  # noqa: E731
    return {
        "classifier_accuracy": {"shape": 0.9, "pos_x": 1.0},
        "image_to_symbol": {"scan": {"shape": 0.4, "pos_x": 0.8},
                            "logistic_readout_full_labels": {"shape": 0.5, "pos_x": 0.9},
                            "chance": {"shape": 0.35, "pos_x": 0.25}},
        "symbol_to_image": scores({"shape": 0.3, "pos_x": float("nan")},
                                  {"shape": 0.6, "pos_x": 0.8}),
        "prior_reference": scores({"shape": float("nan"), "pos_x": float("nan")},
                                  {"shape": 0.7, "pos_x": 0.9}),
        "prior_accuracy": {"shape": 0.2, "pos_x": 0.3},
        "recombination": {"AND": {"recombined": scores({"shape": 0.5, "pos_x": 0.7},
                                                       {"shape": 0.1, "pos_x": 0.3}),
                                  "direct_target_symbol": scores({"shape": 0.6, "pos_x": 0.6},
                                                                 {"shape": 0.2, "pos_x": 0.2})}},
        "test_values": np.zeros((3, 2), int),
    }


def test_flat_figures_are_the_nested_values_and_their_means():
    f = scan_shapes.flat_figures(_nested_result())
    assert f["image_to_symbol/scan/shape"] == 0.4
    assert f["image_to_symbol/scan_mean"] == pytest.approx(0.6)
    assert f["image_to_symbol/readout_mean"] == pytest.approx(0.7)
    assert f["image_to_symbol/chance_mean"] == pytest.approx(0.3)
    # NaN (a factor never named) is left out of the mean, not counted as 0.
    assert f["symbol_to_image/accuracy_mean"] == pytest.approx(0.3)
    assert f["symbol_to_image/diversity_mean"] == pytest.approx(0.7)
    assert f["symbol_to_image/chance_mean"] == pytest.approx(0.25)
    assert f["symbol_to_image/prior_diversity_mean"] == pytest.approx(0.8)
    assert f["symbol_to_image/judge_accuracy_mean"] == pytest.approx(0.95)
    assert f["recombination/AND/recombined_accuracy"] == pytest.approx(0.6)
    assert f["recombination/AND/target_accuracy"] == pytest.approx(0.6)
    assert f["recombination/AND/recombined_diversity"] == pytest.approx(0.2)
    assert all(isinstance(v, float) for v in f.values())


def _judge(name: str, figures: dict) -> str:
    claim = next(c for c in scan_shapes.STUDY.claims if c.name == name)
    return claim.judge(figures).verdict


def test_claims_use_their_margins():
    i2s = "dsprites/image_to_symbol"
    # SCAN 0.01 below the read-out on every seed: within the -0.02 margin -> holds.
    figs = {f"{i2s}/scan_mean": [0.70, 0.72, 0.69], f"{i2s}/readout_mean": [0.71, 0.73, 0.70]}
    assert _judge("dsprites_image_to_symbol", figs) == harness.HOLDS
    # 0.1 below: does not hold.
    figs[f"{i2s}/readout_mean"] = [0.80, 0.82, 0.79]
    assert _judge("dsprites_image_to_symbol", figs) == harness.FAILS
    rec = "dsprites/recombination/IGNORE"
    figs = {f"{rec}/recombined_accuracy": [0.50, 0.52, 0.51],
            f"{rec}/target_accuracy": [0.53, 0.55, 0.54]}  # 0.03 below, margin 0.05
    assert _judge("dsprites_recombination_IGNORE", figs) == harness.HOLDS
    figs[f"{rec}/target_accuracy"] = [0.60, 0.62, 0.61]
    assert _judge("dsprites_recombination_IGNORE", figs) == harness.FAILS
    s2i = "colour_shapes/symbol_to_image"
    figs = {f"{s2i}/accuracy_mean": [0.5, 0.55, 0.52], f"{s2i}/chance_mean": [0.3, 0.31, 0.3]}
    assert _judge("colour_shapes_symbol_to_image", figs) == harness.HOLDS
    assert _judge("dsprites_symbol_to_image", figs) == harness.INCONCLUSIVE  # not measured
    assert {c.name for c in scan_shapes.STUDY.claims} >= {
        f"{d}_recombination_{op}" for d in scan_shapes.SCAN_CONFIGS
        for op in scan_shapes.OPERATORS}


def test_configs_follow_the_seed_and_unknown_datasets_are_refused(tmp_path):
    m = scan_shapes.MODES["quick"]
    assert scan_shapes.visual_config("dsprites", m, 3).train.seed == 3
    assert scan_shapes.scan_config("dsprites", tmp_path, m, 4).train.seed == 4
    with pytest.raises(UserError, match="'mnist'.*accepted: dsprites, colour_shapes"):
        scan_shapes.run_seed({**m, "datasets": ("mnist",)}, 0, tmp_path)
    for mode in ("quick", "cpu", "full"):
        assert len(scan_shapes.MODES[mode]["seeds"]) >= (1 if mode == "quick" else 3)


TINY = {"datasets": ("dsprites",), "vae_steps": 4, "scan_steps": 2, "rec_steps": 2,
        "predictor_steps": 4, "readout_images": 64, "test": 40, "symbols": 16, "samples": 2,
        "batch": 8}


@pytest.mark.slow
def test_study_end_to_end_on_a_tiny_budget(tmp_path):
    out = tmp_path / "out"
    results = harness.run(scan_shapes.STUDY, "quick", out, seeds=[0, 1],
                          overrides={**TINY, "cache_dir": str(tmp_path / "cache")})
    saved = json.loads((out / "results.json").read_text())
    assert saved["seeds"] == [0, 1] and saved["settings"]["vae_steps"] == 4
    assert {c["name"] for c in saved["claims"]} == {c.name for c in scan_shapes.STUDY.claims}
    measured = {c["name"]: c for c in saved["claims"] if c["name"].startswith("dsprites")}
    assert all("not measured" not in c["evidence"] for c in measured.values())
    figs = results["figures"]
    for key in ("image_to_symbol/scan_mean", "image_to_symbol/readout_mean",
                "symbol_to_image/accuracy_mean", "symbol_to_image/chance_mean",
                "recombination/AND/recombined_accuracy",
                "train/recombination_loss"):
        assert figs[f"dsprites/{key}"]["n"] == 2, key
    for seed in ("0", "1"):
        per = results["per_seed"][seed]
        scan = [v for k, v in per.items() if k.startswith("dsprites/image_to_symbol/scan/")]
        assert per["dsprites/image_to_symbol/scan_mean"] == pytest.approx(np.mean(scan))
        assert all(0.0 <= v <= 1.0 for k, v in per.items()
                   if "accuracy" in k or "image_to_symbol" in k)
    # The factor predictor is trained once and cached; both seeds' runs are kept.
    assert (tmp_path / "cache").is_dir()
    assert (out / "seed1" / "runs" / "dsprites_scan").is_dir()
    assert results["plots"] == ["seed0/figures/dsprites_symbol_to_image.png"]
    assert "Summary per dataset" in (out / "report.md").read_text()
