"""The simulated ERP cohort shows the documented clinical effects; user ERP files load."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import curve_fit

from disentangle.data import get_dataset
from disentangle.data.eeg import (
    COMPONENTS,
    EFFECTS,
    NOISE_RMS_UV,
    TIMES_MS,
    load_erp_npz,
    pink_noise,
)
from disentangle.errors import DataError

FZ, PZ = 0, 2


def _model(t, *p):
    """Sum of five Gaussian components plus an offset: p = (A, L, W) x 5 + (c,)."""
    out = np.full_like(t, p[-1])
    for k in range(5):
        a, lat, w = p[3 * k: 3 * k + 3]
        out = out + a * np.exp(-0.5 * ((t - lat) / w) ** 2)
    return out


def _fit(wave: np.ndarray, condition: int, channel: int) -> np.ndarray:
    """Fitted (amplitude, latency, width) [5, 3] of the components in an averaged ERP."""
    p0 = []
    for c in COMPONENTS:
        p0 += [c.amplitude[condition] * c.topography[channel], c.latency,
               np.hypot(c.width, c.jitter)]
    p, _ = curve_fit(_model, TIMES_MS, wave, p0=[*p0, 0.0], maxfev=20000)
    return np.asarray(p[:-1]).reshape(5, 3)


def _amplitudes_at(wave: np.ndarray, shape_fit: np.ndarray) -> np.ndarray:
    """Component amplitudes [5] in another channel, with the latencies and widths of
    ``shape_fit`` (components share their time course across channels): least squares."""
    basis = np.stack([np.exp(-0.5 * ((TIMES_MS - lat) / w) ** 2) for _, lat, w in shape_fit]
                     + [np.ones_like(TIMES_MS)], axis=1)
    return np.linalg.lstsq(basis, wave, rcond=None)[0][:5]


@pytest.fixture(scope="module")
def cell_averages():
    """Grand-average ERPs of four clinical cells (baseline and one factor switched on)."""
    ds = get_dataset("eeg_erp", num_participants=800, seed=3)
    rng = np.random.default_rng(0)
    cells = {"base": (0, 0, 0), "age_group": (1, 0, 0), "depression": (0, 1, 0),
             "anxiety": (0, 0, 1)}
    out = {}
    for name, clin in cells.items():
        members = np.flatnonzero(np.all(ds.cohort.clinical == clin, axis=1))  # 100 each
        assert len(members) == 100
        who = np.repeat(members, 20)
        out[name] = {c: ds.trials(who, np.full(len(who), c), rng).mean(0) for c in (0, 1)}
    return out


def test_age_delays_and_reduces_p3(cell_averages):
    base = _fit(cell_averages["base"][1][:, PZ], 1, PZ)
    old = _fit(cell_averages["age_group"][1][:, PZ], 1, PZ)
    e = EFFECTS["age_group"]
    assert abs((old[3, 1] - base[3, 1]) - e["P3_latency_ms"]) < 8.0, (old[3], base[3])
    assert abs(old[3, 0] / base[3, 0] - e["P3_amplitude_ratio"]) < 0.08
    # Anterior shift: the P3 at Fz relative to Pz grows from 0.45 to 0.75.
    fz_base = _amplitudes_at(cell_averages["base"][1][:, FZ], base)
    fz_old = _amplitudes_at(cell_averages["age_group"][1][:, FZ], old)
    assert abs(fz_base[3] / base[3, 0] - 0.45) < 0.08
    assert abs(fz_old[3] / old[3, 0] - e["P3_fz_weight"]) < 0.08


def test_depression_reduces_p3_and_emotional_lpp(cell_averages):
    e = EFFECTS["depression"]
    base1 = _fit(cell_averages["base"][1][:, PZ], 1, PZ)
    dep1 = _fit(cell_averages["depression"][1][:, PZ], 1, PZ)
    assert abs(dep1[3, 0] / base1[3, 0] - e["P3_amplitude_ratio"]) < 0.08
    assert abs(dep1[4, 0] / base1[4, 0] - e["LPP_emotional_ratio"]) < 0.1
    assert abs((dep1[3, 1] - base1[3, 1]) - e["P3_latency_ms"]) < 8.0
    # The neutral-condition LPP is unchanged (mean amplitude 500-770 ms at Pz).
    win = (TIMES_MS >= 500) & (TIMES_MS <= 770)
    lpp0 = [cell_averages[k][0][win, PZ].mean() for k in ("base", "depression")]
    assert abs(lpp0[1] - lpp0[0]) < 0.4


def test_anxiety_enhances_n1_and_emotional_lpp(cell_averages):
    e = EFFECTS["anxiety"]
    base_pz = _fit(cell_averages["base"][1][:, PZ], 1, PZ)
    anx_pz = _fit(cell_averages["anxiety"][1][:, PZ], 1, PZ)
    base = _amplitudes_at(cell_averages["base"][1][:, FZ], base_pz)
    anx = _amplitudes_at(cell_averages["anxiety"][1][:, FZ], anx_pz)
    assert abs(anx[1] / base[1] - e["N1_amplitude_ratio"]) < 0.12
    assert abs(anx_pz[4, 0] / base_pz[4, 0] - e["LPP_emotional_ratio"]) < 0.12
    # Condition effect: the emotional P3 is 10/4 times the neutral one.
    p3_neutral = _fit(cell_averages["base"][0][:, PZ], 0, PZ)[3, 0]
    assert abs(base_pz[3, 0] / p3_neutral - 2.5) < 0.4


def test_background_is_pink_and_at_documented_level():
    rng = np.random.default_rng(0)
    x = pink_noise((400, 256), rng)
    power = (np.abs(np.fft.rfft(x, axis=-1)) ** 2).mean(0)
    f = np.fft.rfftfreq(256)[2:100]
    slope = np.polyfit(np.log(f), np.log(power[2:100]), 1)[0]
    assert abs(slope + 1.0) < 0.15
    ds = get_dataset("eeg_erp", num_participants=16, noise=1.0)
    trials = ds.trials(np.zeros(300, int), np.zeros(300, int), rng)
    clean = ds.trials(np.zeros(300, int), np.zeros(300, int), rng, clean=True)
    resid = trials - trials.mean(0)
    rms = np.sqrt((resid[:, TIMES_MS < 0] ** 2).mean())
    assert 0.8 * NOISE_RMS_UV < rms < 1.25 * NOISE_RMS_UV
    assert np.abs(clean[:, TIMES_MS < -100]).max() < 0.5  # no signal before the stimulus
    assert trials.shape == (300, 256, 3) and trials.dtype == np.float32
    # Adjacent channels share background (correlation ~0.6), Fz-Pz less.
    c = np.corrcoef(resid[:, :, 0].ravel(), resid[:, :, 1].ravel())[0, 1]
    c_far = np.corrcoef(resid[:, :, 0].ravel(), resid[:, :, 2].ravel())[0, 1]
    assert 0.45 < c < 0.75 and c_far < c


def test_dataset_contract_and_splits():
    train = get_dataset("eeg_erp", num_participants=48, seed=1, split="train")
    test = get_dataset("eeg_erp", num_participants=48, seed=1, split="test")
    assert set(train.participants).isdisjoint(test.participants)
    assert len(train.participants) + len(test.participants) == 48
    rng = np.random.default_rng(0)
    factors, x = train.sample(64, rng)
    assert factors.shape == (64, 4) and x.shape == (64, 256, 3)
    who = train.sample_participants(factors, rng)
    np.testing.assert_array_equal(train.cohort.clinical[who], factors[:, :3])
    assert np.isin(who, train.participants).all()
    with pytest.raises(DataError, match="split"):
        get_dataset("eeg_erp", split="validation")


def test_participant_factor_names_whose_trial_it_is():
    ds = get_dataset("eeg_erp", num_participants=32, seed=1, split="train",
                     participant_factor=True)
    assert ds.factor_names[-1] == "participant" and ds.factor_sizes[-1] == 32
    rng = np.random.default_rng(0)
    factors = ds.sample_factors(200, rng)
    assert factors.shape == (200, 5) and np.isin(factors[:, 4], ds.participants).all()
    np.testing.assert_array_equal(ds.cohort.clinical[factors[:, 4]], factors[:, :3])
    # The trial is that participant's: the same rng draws give the same signal.
    x = ds.sample_observations_from_factors(factors[:3], np.random.default_rng(7))
    np.testing.assert_array_equal(
        x, ds.trials(factors[:3, 4], factors[:3, 3], np.random.default_rng(7)))
    bad = factors[:1].copy()
    bad[0, 0] = 1 - bad[0, 0]
    with pytest.raises(DataError, match=f"participant {bad[0, 4]}"):
        ds.sample_observations_from_factors(bad, rng)


def test_study_visual_beta_comes_from_its_config(tmp_path, monkeypatch):
    """Issue 17: the EEG study's beta-VAE takes beta from configs/beta_vae_eeg.py, which
    defaults to a disentangling beta > 1 (SCAN's premise)."""
    from disentangle.config import load_config
    from experiments import scan_eeg

    m = scan_eeg.MODES["quick"]
    file_beta = load_config(scan_eeg.VISUAL_CONFIG).model.beta
    assert file_beta > 1 and scan_eeg.visual_config(m, 0).model.beta == file_beta
    edited = tmp_path / "beta_vae_eeg.py"
    edited.write_text(scan_eeg.VISUAL_CONFIG.read_text().replace(
        f'"beta": {file_beta}', '"beta": 2.5'))
    monkeypatch.setattr(scan_eeg, "VISUAL_CONFIG", edited)
    config = scan_eeg.visual_config(m, 3)
    assert config.model.beta == 2.5 and config.data.options.seed == 3
    assert config.data.options.split == "train"


@pytest.mark.slow
def test_scan_eeg_study_end_to_end(tmp_path):
    """The study on the harness at toy scale, two seeds: both runs through the one trainer
    (the SCAN run over the beta-VAE run, whose beta is the config file's), every method
    judged by accuracy and AUC, the claims judged and the report written."""
    import json

    from disentangle.runs import load_run
    from experiments import harness, scan_eeg

    tiny = {"participants": 32, "trials": 2, "vae_steps": 2, "scan_steps": 2,
            "label_fraction": 1.0}
    results = harness.run(scan_eeg.STUDY, "quick", tmp_path, seeds=[0, 1], overrides=tiny)
    assert json.loads((tmp_path / "results.json").read_text())["seeds"] == [0, 1]
    figs = results["figures"]
    assert figs["visual_beta"]["values"] == [4.0, 4.0]
    visual = tmp_path / "seed1" / "runs" / "vae_seed1"
    assert load_run(visual).config.model.beta == 4.0
    assert load_run(tmp_path / "seed1" / "runs" / "scan_seed1").config.model.visual_run == \
        str(visual.absolute())
    for fname in ("age_group", "depression", "anxiety"):
        for meth in scan_eeg.METHODS:
            for key in ("accuracy", "auc"):
                assert all(0 <= v <= 1 for v in figs[f"{fname}/{meth}/{key}"]["values"])
        # label_fraction 1: every training participant (two thirds of 32) is labelled.
        assert figs[f"{fname}/labelled_train_participants"]["values"] == [24.0, 24.0]
    # The mean over factors is the mean of the per-factor figures, seed by seed.
    per_seed = results["per_seed"]["1"]
    assert per_seed["mean/scan/auc"] == pytest.approx(np.mean(
        [per_seed[f"{f}/scan/auc"] for f in ("age_group", "depression", "anxiety")]))
    # Denoising: the participant average of 2 trials is closer to the clean ERP than one
    # (and so is the grand average of all training trials).
    for better in ("participant_average", "grand_average"):
        assert all(c > s for c, s in zip(figs[f"denoising/corr/{better}"]["values"],
                                         figs["denoising/corr/single_trial"]["values"]))
    claims = {c["name"]: c for c in results["claims"]}
    assert set(claims) == {"scan_auc_above_components",
                           "denoised_correlation_above_single_trial",
                           "denoised_rmse_below_single_trial",
                           "denoised_correlation_above_grand_average"}
    assert "log/vae/reconstruction" in figs and "log/vae/time" not in figs
    diff = np.subtract(figs["mean/scan/auc"]["values"],
                       figs["mean/component_baseline/auc"]["values"])
    assert claims["scan_auc_above_components"]["interval"]["mean"] == pytest.approx(diff.mean())
    report = (tmp_path / "report.md").read_text()
    assert "Denoising held-out single trials" in report and "denoised_trials.png" in report


def test_load_erp_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "erp.npz"
    trials = rng.normal(size=(10, 256, 3)).astype(np.float32)
    labels = np.stack([np.arange(10) % 5, np.arange(10) // 5], axis=1)  # unique rows
    np.savez(path, trials=trials, labels=labels, sampling_rate=250.0,
             label_names=np.array(["depression", "condition"]), tmin=-0.25)
    ds = get_dataset(f"erp_npz:{path}")
    assert ds.factor_names == ("depression", "condition") and len(ds) == 10
    np.testing.assert_allclose(ds.meta["times_ms"][[0, -1]], [-250.0, 770.0])
    np.testing.assert_array_equal(ds.sample_observations_from_factors(labels[3:4], rng),
                                  trials[3:4])
    np.savez(path, trials=trials, labels=labels[:5], sampling_rate=250.0)
    with pytest.raises(DataError, match="labels"):
        load_erp_npz(path)
    bad = trials.copy()
    bad[3, 7, 1] = np.nan
    np.savez(path, trials=bad, labels=labels, sampling_rate=250.0)
    with pytest.raises(DataError, match=r"non-finite value at \[3, 7, 1\]"):
        load_erp_npz(path)
    np.savez(path, trials=trials, labels=labels, sampling_rate=-1.0)
    with pytest.raises(DataError, match="sampling_rate"):
        load_erp_npz(path)
    np.savez(path, trials=trials, labels=labels)
    with pytest.raises(DataError, match="lacks sampling_rate"):
        load_erp_npz(path)


def test_conv1d_network_and_gaussian_linear_loss():
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from disentangle.nn import build_decoder, build_encoder, reconstruction_loss
    from disentangle.nn.conv1d import gaussian_linear

    def forward():
        enc = build_encoder("conv1d", (256, 3), 20, nnx.Rngs(0))
        dec = build_decoder("conv1d", 10, (256, 3), nnx.Rngs(0))
        return enc(jnp.ones((2, 256, 3))), dec(jnp.zeros((2, 10)))

    code, signal = jax.eval_shape(forward)  # shapes only: no parameter initialisation
    assert code.shape == (2, 20) and signal.shape == (2, 256, 3)
    out, target = jnp.full((2, 4, 3), 1.5), jnp.zeros((2, 4, 3))
    # 0.5 * sum (1.5 - 0)^2 over 12 values = 13.5 per example.
    np.testing.assert_allclose(np.asarray(reconstruction_loss("gaussian_linear", out, target)),
                               [13.5, 13.5])
    np.testing.assert_allclose(np.asarray(gaussian_linear(out, target)), [13.5, 13.5])
    with pytest.raises(ValueError, match="divisible by 16"):
        build_encoder("conv1d", (250, 3), 20, nnx.Rngs(0))


def test_component_features_are_window_means():
    from disentangle.data.eeg import COMPONENT_WINDOWS
    from disentangle.methods.scan.eeg import component_features, participant_means

    erp = np.zeros((2, 2, 256, 3))
    lo, hi = COMPONENT_WINDOWS["P3"]
    win = (TIMES_MS >= lo) & (TIMES_MS <= hi)
    erp[1, 1, win, 2] = 7.0  # participant 1, condition 1, P3 window at Pz
    feats, names = component_features(erp)
    assert feats.shape == (2, 2 * len(COMPONENT_WINDOWS) * 3)
    j = names.index("cond1_P3_Pz")
    assert feats[1, j] == 7.0 and feats[0, j] == 0.0
    assert np.count_nonzero(feats) == 1
    vals = np.arange(6.0)
    np.testing.assert_array_equal(participant_means(vals, np.array([0, 0, 1, 1, 2, 2]),
                                                    np.array([2, 0])), [4.5, 0.5])
