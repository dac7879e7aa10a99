"""The QLAE-vs-VAE study: per-network claims, the InfoM-over-steps diagnostic, the runs'
overrides, and (slow) the study end to end on a tiny budget with both networks."""

from __future__ import annotations

import json

import pytest

from experiments import harness, qlae_vs_vae


def _judge(name: str, figures: dict) -> str:
    claim = next(c for c in qlae_vs_vae.STUDY.claims if c.name == name)
    return claim.judge(figures).verdict


def test_claims_are_judged_per_network():
    figs = {  # hsu_style: QLAE first on every seed; conv64: beta-VAE above QLAE
        "hsu_style/qlae/infom": [0.60, 0.62, 0.61], "hsu_style/beta_vae/infom": [0.40, 0.42, 0.41],
        "hsu_style/ae/infom": [0.30, 0.33, 0.31],
        "conv64/qlae/infom": [0.40, 0.41, 0.42], "conv64/beta_vae/infom": [0.50, 0.52, 0.51],
        "conv64/ae/infom": [0.30, 0.31, 0.30],
        # curve points share the prefix but are not scores of other methods
        "hsu_style/qlae/curve/infom/000100": [0.1, 0.1, 0.1],
    }
    assert _judge("qlae_infom_hsu_style", figs) == harness.HOLDS
    assert _judge("qlae_infom_conv64", figs) == harness.FAILS
    assert _judge("qlae_infoc_hsu_style", figs) == harness.INCONCLUSIVE  # not measured
    judged = qlae_vs_vae.STUDY.claims[0].judge(figs)
    assert "hsu_style/ae/infom" in judged.evidence and "conv64" not in judged.evidence
    assert {c.name for c in qlae_vs_vae.STUDY.claims} == {
        f"qlae_{m}_{n}" for m in ("infom", "infoc") for n in ("hsu_style", "conv64")}


def test_curves_are_read_back_in_step_order():
    results = {"settings": {"curve_samples": 1000}, "figures": {
        "conv64/qlae/curve/infom/001000": harness.interval([0.5, 0.7]),
        "conv64/qlae/curve/infom/000200": harness.interval([0.2, 0.4]),
        "conv64/qlae/infom": harness.interval([0.6, 0.8])}}
    curves = qlae_vs_vae.curves(results)
    assert list(curves) == ["conv64/qlae"]
    assert [(s, iv["mean"]) for s, iv in curves["conv64/qlae"]] == [(200, pytest.approx(0.3)),
                                                                    (1000, pytest.approx(0.6))]
    assert "| 1000 | 0.600" in qlae_vs_vae.notes(results)


def test_overrides_set_the_network_and_the_curve_only_for_curve_methods():
    settings = qlae_vs_vae.MODES["cpu"]
    for network in settings["networks"]:
        qlae = qlae_vs_vae.overrides(settings, network, "qlae", 2)
        vae = qlae_vs_vae.overrides(settings, network, "beta_vae", 2)
        steps = settings["steps"][network]
        assert qlae["model.network"] == vae["model.network"] == network
        assert qlae["train.steps"] == steps and qlae["train.seed"] == 2
        assert qlae["train.batch_size"] == settings["batch_size"][network]
        assert qlae["eval.every"] == steps // settings["curve_points"]
        assert "eval.every" not in vae and "train.learning_rate" not in qlae
    assert len(settings["seeds"]) >= 3


@pytest.mark.slow
def test_study_end_to_end_on_both_networks(tmp_path):
    tiny = {"steps": {"hsu_style": 2, "conv64": 2},
            "methods": {"hsu_style": ("qlae", "beta_vae"), "conv64": ("qlae", "beta_vae")},
            "batch_size": {"hsu_style": 8, "conv64": 8}, "eval_samples": 300,
            "curve_points": 2, "curve_samples": 200, "seeds": (0,)}
    res = harness.run(qlae_vs_vae.STUDY, "quick", tmp_path, overrides=tiny)
    figures = res["figures"]
    for network in ("hsu_style", "conv64"):
        for method in ("qlae", "beta_vae"):
            assert f"{network}/{method}/infom" in figures
            assert f"{network}/{method}/reconstruction" in figures
        # QLAE's InfoM at steps 1 and 2 (eval.every = 2 // 2), none for the beta-VAE
        assert {k for k in figures if "/curve/" in k and k.startswith(network)} == {
            f"{network}/qlae/curve/infom/000001", f"{network}/qlae/curve/infom/000002"}
    assert len(res["claims"]) == 4
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["settings"]["networks"] == ["hsu_style", "conv64"]
    assert (tmp_path / "infom_curve.png").exists()
    assert "Diagnostic: infom over training steps" in (tmp_path / "report.md").read_text()


def test_a_network_without_settings_is_a_clear_error(tmp_path):
    from disentangle.errors import UserError

    settings = {**qlae_vs_vae.MODES["quick"], "networks": ("hsu_style", "mlp")}
    with pytest.raises(UserError, match="no steps for 'mlp'"):
        qlae_vs_vae.run_seed(settings, 0, tmp_path)
