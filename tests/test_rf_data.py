"""The ZigBee RF-fingerprint simulator: each impairment is recovered from its output."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import pytest
from scipy.optimize import curve_fit

from disentangle.data import get_dataset, rf
from disentangle.errors import DataError

FS = 10e6


def one_device(**fields) -> rf.DeviceImpairments:
    """A single ideal device (linear PA, no impairments) with some fields overridden."""
    base = rf.DeviceImpairments(
        iq_gain_db=np.zeros(1), iq_phase_rad=np.zeros(1), cfo_hz=np.zeros(1),
        pn_linewidth_hz=np.zeros(1), dc_offset=np.zeros(1, complex), pa_model="linear",
        pa_params=np.zeros((1, 0)))
    return dataclasses.replace(base, **fields)


def complex_gaussian(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


def test_preamble_is_the_standard_chip_sequence_with_half_sine_pulses():
    s = rf.oqpsk_preamble(n_symbols=8, samples_per_chip=5)
    assert s.shape == (1280,)
    # Constant envelope (MSK) once both rails carry pulses, i.e. after the first chip.
    np.testing.assert_allclose(np.abs(s[5:]), 1.0, atol=1e-12)
    # Pulse peaks: I at (2k + 1) Tc carries chip 2k, Q at (2k + 2) Tc carries chip 2k + 1.
    spc, chips = 5, np.tile(rf.SYMBOL0_CHIPS, 8)
    i_peaks = s.real[spc * (2 * np.arange(128) + 1)]
    q_peaks = s.imag[spc * (2 * np.arange(127) + 2)]
    np.testing.assert_array_equal(i_peaks > 0, chips[0::2] == 1)
    np.testing.assert_array_equal(q_peaks > 0, chips[1:-1:2] == 1)
    np.testing.assert_allclose(np.abs(i_peaks), 1.0, atol=1e-12)


def test_cfo_recovered_from_phase_slope():
    rng = np.random.default_rng(0)
    s = rf.oqpsk_preamble()
    y = rf.transmit(s, one_device(cfo_hz=np.array([12345.0])), FS, rng)[0]
    slope = np.polyfit(np.arange(s.size), np.unwrap(np.angle(y * np.conj(s))), 1)[0]
    assert slope * FS / (2 * np.pi) == pytest.approx(12345.0, abs=0.5)


def test_cfo_recovered_through_the_whole_chain():
    """All impairments on, line of sight at 30 dB: the mean phase slope is the device's CFO."""
    sim = rf.ZigbeeSimulator(3, rf.ZigbeeConfig(snr_db=(30.0, 30.0)), seed=3)
    rng = np.random.default_rng(1)
    for d in range(3):
        y, _ = sim.capture(np.full(40, d), np.zeros(40, int), rng, sync=False)
        phase = np.unwrap(np.angle(y * np.conj(sim.preamble)), axis=1)
        slope = np.polyfit(np.arange(y.shape[1]), phase.T, 1)[0].mean()
        assert slope * sim.sample_rate / (2 * np.pi) == pytest.approx(sim.devices.cfo_hz[d],
                                                                    abs=300.0)


def test_iq_imbalance_recovered_from_power_ratio_and_correlation():
    rng = np.random.default_rng(0)
    s = complex_gaussian(rng, 200_000)
    dev = one_device(iq_gain_db=np.array([0.7]), iq_phase_rad=np.array([np.deg2rad(-4.0)]))
    y = rf.transmit(s, dev, FS, rng)[0]
    gain_db = 10 * np.log10(np.mean(y.imag**2) / np.mean(y.real**2))  # E[Q'^2]/E[I'^2] = g^2
    corr = np.mean(y.real * y.imag) / np.sqrt(np.mean(y.real**2) * np.mean(y.imag**2))
    assert gain_db == pytest.approx(0.7, abs=0.03)
    assert np.rad2deg(np.arcsin(-corr)) == pytest.approx(-4.0, abs=0.3)  # corr = -sin(phi)


def test_dc_offset_is_the_mean_shift():
    rng = np.random.default_rng(0)
    s = rf.oqpsk_preamble()
    y = rf.transmit(s, one_device(dc_offset=np.array([0.03 - 0.02j])), FS, rng)[0]
    assert np.mean(y) - np.mean(s) == pytest.approx(0.03 - 0.02j, abs=1e-12)


def test_wiener_phase_noise_increment_variance_gives_linewidth():
    rng = np.random.default_rng(0)
    s = np.ones((200, 1280), complex)
    dev = one_device(pn_linewidth_hz=np.array([2000.0])).take(np.zeros(200, int))
    y = rf.transmit(s, dev, FS, rng)
    increments = np.diff(np.unwrap(np.angle(y), axis=1), axis=1)
    linewidth = increments.var() / (2 * np.pi / FS)  # var = 2 pi beta Ts
    assert linewidth == pytest.approx(2000.0, rel=0.02)


def test_rapp_compression_recovered_from_amplitude_in_out():
    rng = np.random.default_rng(0)
    r = np.linspace(0.01, 2.5, 400)
    dev = one_device(pa_model="rapp", pa_params=np.array([[1.3, 2.2]]))
    y = rf.transmit(r * np.exp(1j * 0.3), dev, FS, rng)[0]
    np.testing.assert_allclose(np.angle(y), 0.3, atol=1e-12)  # Rapp: no AM/PM
    model = lambda r, a_sat, p: r / (1 + (r / a_sat) ** (2 * p)) ** (1 / (2 * p))
    (a_sat, p), _ = curve_fit(model, r, np.abs(y), p0=(1.0, 1.0))
    assert (a_sat, p) == pytest.approx((1.3, 2.2), rel=1e-3)
    assert np.abs(y).max() < 1.3  # the output never exceeds A_sat


def test_saleh_am_am_and_am_pm_recovered():
    rng = np.random.default_rng(0)
    r = np.linspace(0.01, 2.0, 300)
    params = np.array([[2.0, 1.0, 4.0, 9.0]])
    dev = dataclasses.replace(one_device(pa_model="saleh", pa_params=params), pa_drive=0.5)
    y = rf.transmit(r.astype(complex), dev, FS, rng)[0]
    u = 0.5 * r
    (a_a, b_a), _ = curve_fit(lambda u, a, b: a * u / (1 + b * u**2), u, np.abs(y), p0=(1, 1))
    (a_p, b_p), _ = curve_fit(lambda u, a, b: a * u**2 / (1 + b * u**2), u, np.angle(y),
                              p0=(1, 1))
    assert (a_a, b_a, a_p, b_p) == pytest.approx((2.0, 1.0, 4.0, 9.0), rel=1e-3)


@pytest.mark.parametrize("tau_ns", [30.0, 100.0, 300.0])
def test_channel_pdp_is_exponential_with_requested_rms_delay(tau_ns):
    rng = np.random.default_rng(0)
    n = 20_000
    h = rf.multipath_taps(np.full(n, tau_ns * 1e-9), np.zeros(n), FS, rng)
    pdp = np.mean(np.abs(h) ** 2, axis=0)
    expected = rf.exponential_pdp(tau_ns * 1e-9, FS)
    np.testing.assert_allclose(pdp, expected, atol=0.02)
    assert pdp.sum() == pytest.approx(1.0, abs=0.02)
    # Exponential: successive taps decay by the same ratio r.
    assert pdp[1] / pdp[0] == pytest.approx(expected[1] / expected[0], rel=0.05)
    assert rf.rms_delay(pdp, FS) == pytest.approx(tau_ns * 1e-9, rel=0.05)


def test_rician_first_tap_k_factor_from_moments():
    rng = np.random.default_rng(0)
    n = 40_000
    h0 = rf.multipath_taps(np.full(n, 50e-9), np.full(n, 5.0), FS, rng)[:, 0]
    p = np.abs(h0) ** 2
    gamma = p.var() / p.mean() ** 2  # = (1 + 2K) / (1 + K)^2
    k_hat = np.sqrt(1 - gamma) / (1 - np.sqrt(1 - gamma))
    assert k_hat == pytest.approx(5.0, rel=0.1)
    # K = 0 is Rayleigh: |h0|^2 exponential, so var / mean^2 = 1.
    p0 = np.abs(rf.multipath_taps(np.full(n, 50e-9), np.zeros(n), FS, rng)[:, 0]) ** 2
    assert p0.var() / p0.mean() ** 2 == pytest.approx(1.0, abs=0.05)


def test_apply_channel_is_causal_convolution():
    x = np.arange(1, 6, dtype=complex)[None]
    y = rf.apply_channel(x, np.array([[1.0, 0.5j]]))
    np.testing.assert_allclose(y[0], [1, 2 + 0.5j, 3 + 1j, 4 + 1.5j, 5 + 2j])


def test_awgn_has_requested_snr():
    rng = np.random.default_rng(0)
    x = rf.oqpsk_preamble()[None].repeat(50, 0) * 0.3
    snr = np.linspace(0, 20, 50)
    noise = rf.add_awgn(x, snr, rng) - x
    measured = 10 * np.log10(np.mean(np.abs(x) ** 2, 1) / np.mean(np.abs(noise) ** 2, 1))
    np.testing.assert_allclose(measured, snr, atol=0.35)  # 1280 samples: ~0.12 dB std
    assert np.mean(measured - snr) == pytest.approx(0.0, abs=0.05)


def test_simulator_splits_and_receiver_normalisation():
    cfg = rf.ZigbeeConfig(n_symbols=2, samples_per_chip=4)
    sim = rf.ZigbeeSimulator(5, cfg, seed=0)
    assert sim.sample_rate == 8e6 and sim.preamble.size == cfg.length == 256
    splits = rf.make_splits(sim, n_known=3, n_train_per_device=4, n_test_per_device=2)
    assert set(splits) == {"train", *rf.SPLITS}
    assert set(splits["train"].device) == {0, 1, 2} and set(splits["unseen_los"].device) == {3, 4}
    assert (splits["known_multipath"].channel == 1).all() and (splits["train"].channel == 0).all()
    x = splits["unseen_multipath"].x
    assert x.shape == (4, 256, 2) and x.dtype == np.float32
    np.testing.assert_allclose(np.mean(x**2, axis=(1, 2)) * 2, 1.0, rtol=1e-5)  # unit RMS
    # Phase sync: correlation with the preamble is real and positive.
    c = np.sum((x[..., 0] + 1j * x[..., 1]) * np.conj(sim.preamble), axis=1)
    np.testing.assert_allclose(np.angle(c), 0.0, atol=1e-5)
    _, info = sim.capture(np.zeros(200, int), np.ones(200, int), np.random.default_rng(0))
    assert 10 <= info["rms_delay_ns"].min() and info["rms_delay_ns"].max() <= 300
    assert 0 <= info["k_factor"].min() and info["k_factor"].max() <= 10
    assert 10 <= info["snr_db"].min() and info["snr_db"].max() <= 30


def test_optional_weak_multipath_on_line_of_sight():
    cfg = rf.ZigbeeConfig(n_symbols=1, samples_per_chip=2, los_k_factor=(10.0, 20.0))
    sim = rf.ZigbeeSimulator(2, cfg, seed=0)
    _, info = sim.capture(np.zeros(100, int), np.zeros(100, int), np.random.default_rng(0))
    assert 10 <= info["k_factor"].min() and info["k_factor"].max() <= 20
    assert 10 <= info["rms_delay_ns"].min() and info["rms_delay_ns"].max() <= 50
    # Default: line of sight has no multipath draws.
    plain = rf.ZigbeeSimulator(2, rf.ZigbeeConfig(n_symbols=1, samples_per_chip=2), seed=0)
    _, info = plain.capture(np.zeros(5, int), np.zeros(5, int), np.random.default_rng(0))
    assert np.all(info["rms_delay_ns"] == 0) and np.all(np.isinf(info["k_factor"]))


def test_registered_dataset_follows_the_ground_truth_contract():
    ds = get_dataset("rf_zigbee", n_devices=6, n_known=4, n_symbols=1, samples_per_chip=2)
    assert ds.factor_names == ("device", "channel") and ds.factor_sizes == (6, 2)
    assert ds.observation_shape == (64, 2)
    factors, x = ds.sample(7, np.random.default_rng(0))
    assert factors.shape == (7, 2) and x.shape == (7, 64, 2) and x.dtype == np.float32
    with pytest.raises(ValueError, match="device"):
        ds.sample_observations_from_factors(np.array([[6, 0]]), np.random.default_rng(0))
    with pytest.raises(DataError, match="n_known=7"):
        get_dataset("rf_zigbee", n_devices=6, n_known=7)
    # The devices are fixed by the seed.
    again = get_dataset("rf_zigbee", n_devices=6, n_known=4, n_symbols=1, samples_per_chip=2)
    np.testing.assert_array_equal(again.simulator.devices.cfo_hz, ds.simulator.devices.cfo_hz)


def test_npz_captures_load_with_checks(tmp_path):
    rng = np.random.default_rng(0)
    iq = complex_gaussian(rng, (6, 32)).astype(np.complex64)
    path = tmp_path / "caps.npz"
    np.savez(path, iq=iq, device=np.array(["b", "a", "b", "c", "a", "c"]))
    caps = rf.load_npz_captures(path)
    assert caps.device_names == ["a", "b", "c"]
    np.testing.assert_array_equal(caps.device, [1, 0, 1, 2, 0, 2])
    np.testing.assert_array_equal(caps.iq, iq)
    real_path = tmp_path / "real.npz"
    np.savez(real_path, iq=rf.iq_to_real(iq), device=np.arange(6) % 2)
    np.testing.assert_allclose(rf.load_npz_captures(real_path).iq, iq, atol=1e-6)
    ds = get_dataset(f"rf_npz:{real_path}")
    assert ds.factor_sizes == (2, 1) and ds.observation_shape == (32, 2)
    bad = tmp_path / "bad.npz"
    np.savez(bad, iq=iq)
    with pytest.raises(DataError, match="lacks array.*'device'"):
        rf.load_npz_captures(bad)
    np.savez(bad, iq=iq, device=np.arange(5))
    with pytest.raises(DataError, match=r"shape \(6,\)"):
        rf.load_npz_captures(bad)
    np.savez(bad, iq=np.zeros((6, 32, 3)), device=np.arange(6))
    with pytest.raises(DataError, match="complex"):
        rf.load_npz_captures(bad)
    with pytest.raises(DataError, match="does not exist"):
        rf.load_npz_captures(tmp_path / "missing.npz")


def test_sigmf_recording_annotations_label_devices(tmp_path):
    sigmf = pytest.importorskip("sigmf")
    rng = np.random.default_rng(0)
    samples = complex_gaussian(rng, 1000).astype(np.complex64)
    data_path = tmp_path / "rec.sigmf-data"
    samples.tofile(data_path)
    meta = sigmf.SigMFFile(data_file=str(data_path), global_info={
        sigmf.SigMFFile.DATATYPE_KEY: "cf32_le", sigmf.SigMFFile.SAMPLE_RATE_KEY: 8e6})
    meta.add_capture(0, metadata={sigmf.SigMFFile.FREQUENCY_KEY: 2.405e9})
    meta.add_annotation(0, 300, metadata={sigmf.SigMFFile.LABEL_KEY: "mote_a"})
    meta.add_annotation(400, 250, metadata={sigmf.SigMFFile.LABEL_KEY: "mote_b"})
    meta.add_annotation(700, 50, metadata={sigmf.SigMFFile.COMMENT_KEY: "no label"})
    meta.tofile(tmp_path / "rec.sigmf-meta")
    caps = rf.load_sigmf(tmp_path / "rec", length=100)
    assert caps.device_names == ["mote_a", "mote_b"] and caps.sample_rate == 8e6
    np.testing.assert_array_equal(caps.device, [0, 0, 0, 1, 1])
    np.testing.assert_array_equal(caps.iq[3], samples[400:500])
    ds = get_dataset(f"rf_sigmf:{tmp_path / 'rec'}", length=100)
    assert ds.factor_sizes == (2, 1) and ds.observation_shape == (100, 2) and len(ds) == 5
    with pytest.raises(DataError, match="spans 400 samples"):
        rf.load_sigmf(tmp_path / "rec.sigmf-meta", length=400)


def test_missing_sigmf_package_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "sigmf", None)  # makes ``import sigmf`` fail
    with pytest.raises(DataError, match="pip install sigmf"):
        rf.load_sigmf(tmp_path / "rec", length=10)


def test_training_split_dataset_is_the_fixed_line_of_sight_set():
    options = dict(n_devices=5, n_known=3, n_symbols=1, samples_per_chip=2, seed=4)
    ds = get_dataset("rf_zigbee", split="train", n_per_device=6, split_seed=9, **options)
    sim = rf.ZigbeeSimulator(5, rf.ZigbeeConfig(n_symbols=1, samples_per_chip=2), seed=4)
    train = rf.make_splits(sim, n_known=3, n_train_per_device=6, n_test_per_device=2,
                           seed=9)["train"]
    assert len(ds) == 18 and ds.observation_shape == (64, 2)
    np.testing.assert_array_equal(ds.images, train.x)
    np.testing.assert_array_equal(ds.factors, np.stack([train.device, train.channel], 1))
    assert ds.factor_names == ("device", "channel") and ds.factor_sizes == (3, 2)
    # The trainer's sampler draws stored rows with their factors.
    import jax

    factors, x = ds.device_sampler()(jax.random.key(0), 32)
    rows = [int(np.flatnonzero((train.x == xi).all(axis=(1, 2)))[0]) for xi in np.asarray(x)]
    np.testing.assert_array_equal(np.asarray(factors), ds.factors[rows])
    # A split is the same made alone or with the others; unseen splits count all devices.
    unseen = get_dataset("rf_zigbee", split="unseen_multipath", n_per_device=2, split_seed=9,
                         **options)
    np.testing.assert_array_equal(unseen.images, rf.make_splits(
        sim, 3, 6, 2, seed=9)["unseen_multipath"].x)
    assert unseen.factor_sizes == (5, 2) and set(unseen.factors[:, 1]) == {rf.MULTIPATH}
    with pytest.raises(DataError, match="split='test'.*'train'"):
        get_dataset("rf_zigbee", split="test", **options)


def test_line_of_sight_channel_option_reaches_the_simulator():
    ds = get_dataset("rf_zigbee", n_devices=3, n_known=2, n_symbols=1, samples_per_chip=2,
                     los_k_factor=[2.0, 20.0], los_rms_delay_ns=[10.0, 50.0])
    cfg = ds.simulator.config
    assert cfg.los_k_factor == (2.0, 20.0) and cfg.los_rms_delay_ns == (10.0, 50.0)
    _, info = ds.simulator.capture(np.zeros(200, int), np.zeros(200, int),
                                   np.random.default_rng(0))
    assert 2 <= info["k_factor"].min() and info["k_factor"].max() <= 20
    assert get_dataset("rf_zigbee", n_devices=3, n_known=2,
                       los_k_factor=[]).simulator.config.los_k_factor is None
    with pytest.raises(DataError, match="los_k_factor=\\[20.0, 2.0\\]"):
        get_dataset("rf_zigbee", n_devices=3, n_known=2, los_k_factor=[20.0, 2.0])
