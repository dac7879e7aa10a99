"""The potential-flow study on the harness: figures, settings and verdicts (fast), and the
study end to end on a tiny budget (slow: trains two backbones, their flows and a predictor
through the trainer)."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest

from experiments import harness, potential_flows

TINY = {"backbone_steps": 20, "flow_steps": 4, "predictor_steps": 20, "num_codes": 200,
        "num_images": 2, "horizon": 4, "num_steps": 5, "num_potentials": 2,
        "flow_batch_size": 4}


def _scores(purity, active):
    return {"mean_purity": purity, "num_active": active}


def test_method_figures_name_purity_chance_and_mean_speed():
    info = {"traversal_length": 2.5, "classifier_accuracy": 0.75,
            "speeds": [0.5, 1.0, 1.5, 3.0]}
    figs = potential_flows.method_figures(
        "qlae", "flow", info, {"tv": _scores(0.4, 3), "expected": _scores(0.0, 0)})
    assert figs == pytest.approx({
        "qlae/flow/traversal_length": 2.5, "qlae/flow/num_active": 3.0,
        "qlae/flow/purity_tv": 0.4, "qlae/flow/purity_expected": math.nan,
        "qlae/flow/classifier_accuracy": 0.75, "qlae/flow/chance": 0.25,  # K = 4
        "qlae/flow/speed_mean": 1.5}, nan_ok=True)
    linear = potential_flows.method_figures(
        "beta_vae", "linear", {"traversal_length": 4.0},
        {"tv": _scores(0.3, 6), "expected": _scores(0.35, 5)})
    assert set(linear) == {"beta_vae/linear/traversal_length", "beta_vae/linear/num_active",
                           "beta_vae/linear/purity_tv", "beta_vae/linear/purity_expected"}
    assert linear["beta_vae/linear/num_active"] == 6.0  # counted under tv


def test_predictor_figures_prefer_symmetry_aware_accuracy():
    acc = {"exact": {"shape": 0.9, "orientation": 0.3}, "within_1": {"shape": 0.9},
           "exact_symmetric": {"orientation": 0.6}}
    assert potential_flows.predictor_figures(acc) == {"predictor/shape": 0.9,
                                                      "predictor/orientation": 0.6}


def test_claims_pair_flow_with_linear_per_backbone_and_accuracy_with_chance():
    figs = {"beta_vae/flow/purity_tv": [0.5, 0.6, 0.55],
            "beta_vae/linear/purity_tv": [0.3, 0.35, 0.32],
            # Unpaired the samples overlap; paired, flows are lower at every seed.
            "qlae/flow/purity_tv": [0.30, 0.50, 0.40],
            "qlae/linear/purity_tv": [0.31, 0.52, 0.42],
            "beta_vae/flow/classifier_accuracy": [0.2, 0.9, 0.5],
            "beta_vae/flow/chance": [0.125] * 3,
            "qlae/flow/classifier_accuracy": [0.6, 0.65, 0.62], "qlae/flow/chance": [0.5] * 3}
    verdicts = {c.name: c.judge(figs).verdict for c in potential_flows.STUDY.claims}
    assert verdicts == {
        "beta_vae_flows_purer_tv": harness.HOLDS, "qlae_flows_purer_tv": harness.FAILS,
        "beta_vae_flows_purer_expected": harness.INCONCLUSIVE,  # not measured
        "qlae_flows_purer_expected": harness.INCONCLUSIVE,
        "beta_vae_classifier_above_chance": harness.INCONCLUSIVE,  # wide interval
        "qlae_classifier_above_chance": harness.HOLDS}
    assert all(c.paper for c in potential_flows.STUDY.claims)


def test_modes_share_settings_and_seed_counts_follow_the_rules():
    modes = potential_flows.MODES
    assert {frozenset(m) for m in modes.values()} == {frozenset(modes["quick"])}
    assert len(modes["quick"]["seeds"]) >= 1
    assert len(modes["cpu"]["seeds"]) >= 3 and len(modes["full"]["seeds"]) >= 3
    for mode in modes.values():  # matched lengths: H + 1 flow frames = linear steps
        assert mode["horizon"] + 1 == mode["num_steps"]


def test_backbone_overrides_set_the_seed_and_keep_the_configs_own_values_for_none():
    from disentangle.config import load_config

    path = potential_flows.REPO_ROOT / potential_flows.BACKBONES["beta_vae"]
    default = load_config(path)
    full = load_config(path, potential_flows.backbone_overrides(potential_flows.MODES["full"], 3))
    assert full.train.seed == 3
    assert (full.model.network, full.train.steps, full.train.learning_rate) == (
        default.model.network, default.train.steps, default.train.learning_rate)
    quick = load_config(path, potential_flows.backbone_overrides(potential_flows.MODES["quick"],
                                                                 1))
    assert (quick.train.seed, quick.model.network, quick.train.steps,
            quick.train.learning_rate) == (1, "mlp_small", 1500, 1e-3)
    options = potential_flows.traverse_options({**potential_flows.MODES["quick"],
                                                "cache_dir": "/c"}, 2)
    flow = dict(options.flow_overrides)
    assert (options.data_seed, options.cache_dir, options.match_lengths) == (2, "/c", True)
    assert (flow["train.seed"], flow["model.num_potentials"], flow["model.num_steps"]) == (2, 8,
                                                                                            10)


@pytest.mark.slow
def test_tiny_study_writes_every_figure_and_claim_and_reuses_the_predictor(tmp_path):
    study = dataclasses.replace(potential_flows.STUDY, modes={"tiny": {
        **potential_flows.MODES["quick"], **TINY, "cache_dir": str(tmp_path / "cache")}})
    res = harness.run(study, "tiny", tmp_path / "out", seeds=[0, 1])
    figs = res["figures"]
    for backbone in potential_flows.BACKBONES:
        for method in potential_flows.METHODS:
            for key in ("purity_tv", "purity_expected"):
                values = figs[f"{backbone}/{method}/{key}"]["values"]
                assert all(0.0 < v <= 1.0 for v in values), (backbone, method, key)
            assert figs[f"{backbone}/{method}/traversal_length"]["n"] == 2
        assert figs[f"{backbone}/flow/chance"]["values"] == [0.5, 0.5]  # K = 2
        assert all(0.0 <= v <= 1.0 for v in figs[f"{backbone}/flow/classifier_accuracy"]
                   ["values"])
        assert 0 <= figs[f"{backbone}/flow/num_active"]["mean"] <= 2
        scores = json.loads((tmp_path / "out" / "seed1" / backbone / "traversal.json")
                            .read_text())
        assert set(scores) == {"linear", "flow"} and scores["flow"]["flow_steps"] == 4
    # One predictor for both seeds: the same held-out accuracy at each.
    assert all(len(set(iv["values"])) == 1 for k, iv in figs.items() if k.startswith("pred"))
    assert [d.name for d in (tmp_path / "cache").iterdir()] == ["factor_predictor_dsprites"]
    assert {c["name"] for c in res["claims"]} == {c.name for c in potential_flows.STUDY.claims}
    assert "How to read the figures" in (tmp_path / "out" / "report.md").read_text()
