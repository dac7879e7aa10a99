"""Active / mixed / passive latents (Bonheme & Grzes, "Be More Active!").

Posteriors are constructed so that every label and score is known by construction.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from metrics.active_passive import classify, groups_of, label_latents, sampled_representation

N = 1000


def constructed_posterior(n: int = N, seed: int = 0):
    """Latents 0-1 active, 2-3 passive and correlated in mu, 4-5 mixed; 2 factors.

    - active: mu = factor value (5 classes) + noise, sigma^2 = 0.01 everywhere;
    - passive: sigma^2 = 1 (logvar = 0) everywhere, mu = 0.01 * (shared s + 0.05 noise):
      nearly constant and strongly correlated with each other;
    - latent 4: collapsed (sigma^2 = 1) for half of the inputs, informative (0.01) for the
      other half; latent 5: sigma^2 = 0.5 everywhere (between active and passive).
    """
    rng = np.random.default_rng(seed)
    factors = rng.integers(0, 5, size=(n, 2))
    mean = np.zeros((n, 6))
    logvar = np.zeros((n, 6))
    mean[:, :2] = factors + 0.1 * rng.standard_normal((n, 2))
    logvar[:, :2] = np.log(0.01)
    shared = rng.standard_normal(n)
    mean[:, 2:4] = 0.01 * (shared[:, None] + 0.05 * rng.standard_normal((n, 2)))
    half = np.arange(n) % 2 == 0
    logvar[:, 4] = np.where(half, 0.0, np.log(0.01))
    mean[:, 4] = rng.standard_normal(n)
    logvar[:, 5] = np.log(0.5)
    mean[:, 5] = rng.standard_normal(n)
    return mean, logvar, factors


def test_labels_known_by_construction():
    mean, logvar, _ = constructed_posterior()
    out = classify(mean, logvar)
    assert out["labels"].tolist() == ["active", "active", "passive", "passive",
                                      "mixed", "mixed"]
    m, v = out["posterior_variance_mean"], out["posterior_variance_var"]
    np.testing.assert_allclose(m, [0.01, 0.01, 1.0, 1.0, (1 + 0.01) / 2, 0.5], rtol=1e-12)
    # Two equally likely values a, b: variance ((a - b) / 2)^2; constants have variance 0.
    np.testing.assert_allclose(v, [0, 0, 0, 0, ((1 - 0.01) / 2) ** 2, 0], atol=1e-15)
    np.testing.assert_allclose(out["mean_variance"], mean.var(0))


@pytest.mark.parametrize("m, expected", [
    (0.0, "active"), (0.1, "active"), (0.1 + 1e-6, "mixed"),
    (0.9 - 1e-6, "mixed"), (0.9, "passive"), (1.0, "passive"), (1.1, "passive"),
    (1.1 + 1e-6, "mixed"), (0.5, "mixed"), (3.0, "mixed")])
def test_mean_boundaries_are_inclusive(m, expected):
    assert label_latents(np.array([m]), np.array([0.0])).tolist() == [expected]


@pytest.mark.parametrize("v, expected_active, expected_passive", [
    (0.0, "active", "passive"), (0.1 - 1e-6, "active", "passive"),
    (0.1, "mixed", "mixed"), (0.1 + 1e-6, "mixed", "mixed")])
def test_variance_boundary_is_strict(v, expected_active, expected_passive):
    labels = label_latents(np.array([0.05, 1.0]), np.array([v, v]))
    assert labels.tolist() == [expected_active, expected_passive]


@pytest.mark.parametrize("v, expected", [(0.099, "passive"), (0.101, "mixed")])
def test_variance_threshold_through_logvar(v, expected):
    """sigma^2 = 1 +- sqrt(v) on alternate inputs: m = 1 exactly, var = v."""
    n = 400
    variance = 1.0 + np.sqrt(v) * np.where(np.arange(n) % 2 == 0, 1.0, -1.0)
    logvar = np.log(variance)[:, None]
    out = classify(np.zeros_like(logvar), logvar)
    np.testing.assert_allclose(out["posterior_variance_var"], [v], rtol=1e-9)
    assert out["labels"].tolist() == [expected]
    # A looser threshold turns the same latent passive.
    assert classify(np.zeros_like(logvar), logvar, var_threshold=0.2)["labels"][0] == "passive"


def test_mean_tolerance_option():
    logvar = np.full((10, 1), np.log(0.15))
    assert classify(np.zeros_like(logvar), logvar)["labels"][0] == "mixed"
    assert classify(np.zeros_like(logvar), logvar, mean_tolerance=0.2)["labels"][0] == "active"


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same shape"):
        classify(np.zeros((5, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="finite"):
        classify(np.zeros((5, 1)), np.full((5, 1), np.nan))


def test_sampled_representation_has_posterior_noise():
    mean, logvar, _ = constructed_posterior()
    z = sampled_representation(mean, logvar, np.random.default_rng(1))
    noise_sd = (z - mean).std(0)
    np.testing.assert_allclose(noise_sd[[0, 1, 2, 3, 5]],
                               np.sqrt([0.01, 0.01, 1, 1, 0.5]), rtol=0.1)


def test_groups_of_splits_indices():
    g = groups_of(["mixed", "active", "passive", "active"])
    assert g["all"].tolist() == [0, 1, 2, 3]
    assert g["active"].tolist() == [1, 3]
    assert g["mixed"].tolist() == [0]
    assert g["passive"].tolist() == [2]
    assert g["non_passive"].tolist() == [0, 1, 3]


# ----------------------------------------------------------------------------- study
# InfoMEC is left out of the fast tests: it has its own tests, and its L-BFGS fit compiles
# once per group width (tens of seconds on a busy CPU). The slow test runs every score.
FAST_SCORES = ("total_correlation", "pairwise_mi", "mig", "classifiers")


@pytest.fixture(scope="module")
def study_result():
    from metrics.active_passive import study

    mean, logvar, factors = constructed_posterior()
    return study(mean, logvar, factors, np.random.default_rng(0), factor_names=["a", "b"],
                 scores=FAST_SCORES)


def test_study_groups_and_counts(study_result):
    r = study_result
    assert r["counts"] == {"active": 2, "mixed": 2, "passive": 2}
    groups = ("all", "active", "mixed", "passive", "non_passive")
    assert [r["groups"][g]["latents"] for g in groups] == [
        [0, 1, 2, 3, 4, 5], [0, 1], [4, 5], [2, 3], [0, 1, 4, 5]]
    for entry in r["groups"].values():
        assert entry["size"] == len(entry["latents"]) and not entry["empty"]
        for rep in ("mean", "sampled"):
            assert len(entry[rep]["logistic_accuracy"]) == 2
    json.dumps(r, allow_nan=False)  # JSON-ready, no NaN anywhere


def test_passive_correlated_in_mean_not_in_sampled(study_result):
    passive = study_result["groups"]["passive"]
    # Two latents with correlation rho: TC = -0.5 log(1 - rho^2). Here rho = 1/(1 + 0.05^2)
    # in mu (TC ~ 3.0 nats), and ~0 in mu + eps with eps ~ N(0, 1) >> mu.
    rho = 1 / (1 + 0.05**2)
    tc_mean = passive["mean"]["gaussian_total_correlation"]
    assert tc_mean == pytest.approx(-0.5 * np.log(1 - rho**2), rel=0.15)
    assert abs(passive["sampled"]["gaussian_total_correlation"]) < 0.02
    assert passive["mean"]["mean_pairwise_mi"] > 5 * passive["sampled"]["mean_pairwise_mi"]
    assert passive["gap"]["gaussian_total_correlation"] > 2.5


def test_active_alike_in_mean_and_sampled(study_result):
    active = study_result["groups"]["active"]
    # Independent factors, noise sd 0.1 in mu and in eps: scores barely move.
    for key in ("gaussian_total_correlation",):
        assert abs(active["gap"][key]) < 0.01
    for rep in ("mean", "sampled"):
        assert min(active[rep]["logistic_accuracy"]) > 0.95
    assert abs(active["gap"]["logistic_accuracy_mean"]) < 0.05
    assert abs(active["gap"]["mig"]) < 0.1


def test_empty_group_is_reported_without_scores():
    from metrics.active_passive import study

    mean, logvar, factors = constructed_posterior()
    logvar[:, 4:] = 0.0  # the two mixed latents collapse: passive (same shapes, same jit)
    r = study(mean, logvar, factors, np.random.default_rng(0), scores=FAST_SCORES)
    assert r["groups"]["mixed"] == {"latents": [], "size": 0, "empty": True}
    assert r["counts"] == {"active": 2, "mixed": 0, "passive": 4}
    assert r["groups"]["passive"]["latents"] == [2, 3, 4, 5]
    json.dumps(r, allow_nan=False)


@pytest.mark.slow
def test_study_with_every_score():
    from metrics.active_passive import study

    mean, logvar, factors = constructed_posterior()
    r = study(mean, logvar, factors, np.random.default_rng(0))
    active, passive = r["groups"]["active"], r["groups"]["passive"]
    # Each active latent copies one factor: modular and compact in both representations.
    for rep in ("mean", "sampled"):
        assert active[rep]["infom"] > 0.8 and active[rep]["infoc"] > 0.8
    assert abs(active["gap"]["infom"]) < 0.05
    # Passive latents carry no factor information in either representation.
    for rep in ("mean", "sampled"):
        assert passive[rep]["infoe"] < 0.05
    json.dumps(r, allow_nan=False)


# ----------------------------------------------------------------------------- command
def fake_run(monkeypatch, tmp_path, model_name: str, with_logvar: bool):
    """A run whose encoder returns the constructed posterior (no training needed)."""
    import ml_collections

    from disentangle import represent as represent_lib
    from disentangle import runs as runs_lib
    from disentangle.represent import Encoded

    config = ml_collections.ConfigDict({
        "model": {"name": model_name, "latent_dim": 6, "beta": 8.0},
        "data": {"name": "constructed"}, "eval": {"num_samples": 400, "seed": 0}})

    class Dataset:
        factor_names = ("a", "b")

    run = runs_lib.Run(tmp_path, config, Dataset(), model=None, step=7)
    mean, logvar, factors = constructed_posterior(400)
    enc = Encoded(factors=factors, mean=mean, logvar=logvar if with_logvar else None)
    if with_logvar:
        enc.sampled = sampled_representation(mean, logvar, np.random.default_rng(3))
    monkeypatch.setattr(runs_lib, "load_run", lambda path: run)
    monkeypatch.setattr(represent_lib, "represent", lambda model, ds, n, seed: enc)
    return run


def cheap_scores(monkeypatch):
    """The command's plumbing only: per-group scores are tested above, skip their cost."""
    from metrics import active_passive

    monkeypatch.setattr(active_passive, "score_representation",
                        lambda codes, *a, **k: dict.fromkeys(active_passive.SCALAR_SCORES,
                                                             float(codes.shape[1])))


def test_analyze_writes_json_and_figures(monkeypatch, tmp_path):
    from experiments.commands.analyze import analyze_run

    fake_run(monkeypatch, tmp_path, "beta_vae", with_logvar=True)
    cheap_scores(monkeypatch)
    result = analyze_run(tmp_path)
    saved = json.loads((tmp_path / "active_passive.json").read_text())
    assert saved["latents"]["labels"] == ["active", "active", "passive", "passive",
                                          "mixed", "mixed"]
    assert saved["run"]["beta"] == 8.0 and saved["run"]["step"] == 7
    assert saved["settings"]["factor_names"] == ["a", "b"]
    assert result["counts"] == saved["counts"]
    assert saved["groups"]["passive"]["mean"]["mig"] == 2.0  # scored on the 2 passive latents
    for name in ("active_passive_scatter.png", "active_passive_correlation.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000


def test_analyze_refuses_models_without_logvar(monkeypatch, tmp_path):
    from disentangle.errors import UserError
    from experiments.commands.analyze import analyze_run

    fake_run(monkeypatch, tmp_path, "ae", with_logvar=False)
    with pytest.raises(UserError, match="'ae' has no posterior variances"):
        analyze_run(tmp_path)
    assert not (tmp_path / "active_passive.json").exists()


@pytest.mark.slow
def test_analyze_on_trained_beta_vae(make_config, tmp_path):
    """End to end: train a tiny beta-VAE, analyse it from the command line."""
    from disentangle import train as train_lib
    from experiments.cli import main

    config = make_config("beta_vae", steps=200, **{"model.beta": 32.0})
    train_lib.train_and_evaluate(config, tmp_path, progress=False)
    assert main(["analyze", str(tmp_path), "--num-samples", "500"]) == 0
    saved = json.loads((tmp_path / "active_passive.json").read_text())
    assert len(saved["latents"]["labels"]) == 6 and sum(saved["counts"].values()) == 6
    # m_i is a mean of exp(logvar): positive; the figures exist.
    assert min(saved["latents"]["posterior_variance_mean"]) > 0
    assert (tmp_path / "figures" / "active_passive_scatter.png").exists()
