"""RF fingerprints: simulated IEEE 802.15.4 (ZigBee) transmitters and channels, real captures.

Data for DR-RFF (Xie et al., IEEE TCOM 2023: disentangled RF fingerprints under unknown
channels; see shared/PAPERS.md). Every device transmits the same ZigBee preamble; what tells devices
apart is only the hardware each one carries, drawn once per device:

    s[n]                      O-QPSK preamble, half-sine pulses, 2 Mchip/s
    IQ imbalance              I' = I,  Q' = g (Q cos(phi) - I sin(phi)),  g = 10^(gain_db/20)
    DC offset (LO leakage)    u = I' + j Q' + d
    power amplifier           Rapp:  A(r) = r / (1 + (r / A_sat)^(2p))^(1/(2p)),  no AM/PM
                              Saleh: A(r) = a_a r / (1 + b_a r^2),  Phi(r) = a_p r^2 / (1 + b_p r^2)
    LO (CFO + Wiener PN)      x[n] = PA(u)[n] exp(j (2 pi f_cfo n Ts + phi_pn[n])),
                              phi_pn[n] = phi_pn[n-1] + N(0, 2 pi beta Ts)   (beta: linewidth)

The CFO of a capture is the device's CFO plus a small per-capture jitter (oscillator drift).
Channels: ``los`` (channel 0) is a flat channel with a random carrier phase plus AWGN
(optionally a weak Rician channel, ``ZigbeeConfig.los_k_factor``);
``multipath`` (channel 1) is a tapped delay line with sample-spaced taps and an exponential
power delay profile ``P_l ~ r^l``, with r chosen so that the discrete profile's RMS delay
``Ts sqrt(r) / (1 - r)`` equals the requested delay (10-300 ns); the first tap is Rician with
K-factor K (K = 0: Rayleigh), the others Rayleigh, ``E sum_l |h_l|^2 = 1``. AWGN is added at a
random SNR, defined on the received (post-channel) signal power. The receiver then removes the
common carrier phase against the known preamble (data-aided phase sync: multiply by
``conj(c) / |c|`` with ``c = <y, s>``) and scales each capture to unit RMS; frame timing is
assumed known. Observations are float32 ``[T, 2]`` (I, Q) with unit RMS (not in [0, 1]).

Signal sizes: the paper's preamble is 8 symbols of 32 chips (256 chips, 128 us); sampled at
5 samples per chip (10 MS/s) it is 1,280 complex samples (``ZigbeeConfig()``). The quick
study uses 2 symbols at 4 samples per chip (8 MS/s): 256 samples, 32 us.

Splits (as in the paper): training captures come from known devices over line-of-sight
channels only; tests cover known/unseen devices x line-of-sight/multipath
(:func:`make_split`). ``get_dataset("rf_zigbee", split="train", ...)`` is the fixed
training split as :class:`ArrayData` (factors device, channel), the set DR-RFF trains on.
Line of sight is AWGN only unless ``los_k_factor`` gives it a short Rician channel
(channel diversity in training: docs/rf.md).

Real captures: ``load_npz_captures`` (arrays ``iq`` complex [n, T] or real [n, T, 2], and
``device`` labels) and ``load_sigmf`` (a SigMF recording whose annotations label devices;
needs the optional ``sigmf`` package). Both give :class:`RFCaptures`; the dataset names
``rf_npz:PATH`` and ``rf_sigmf:PATH`` wrap them as :class:`ArrayData`.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np

from disentangle.data import register_dataset
from disentangle.data.base import ArrayData, GroundTruthData
from disentangle.errors import DataError

# IEEE 802.15.4-2006, 2.4 GHz O-QPSK PHY, Table 73: chips c0..c31 of data symbol 0.
SYMBOL0_CHIPS = np.array([1, 1, 0, 1, 1, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1,
                          0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 1, 1, 1, 0], np.int8)
CHIP_RATE = 2.0e6  # chips per second
CHANNELS = ("los", "multipath")
LOS, MULTIPATH = 0, 1


# --------------------------------------------------------------------------- waveform
def oqpsk_preamble(n_symbols: int = 8, samples_per_chip: int = 5) -> np.ndarray:
    """The ZigBee preamble (symbol 0 repeated ``n_symbols`` times), complex128 [T].

    Even chips c_2k drive I, odd chips c_2k+1 drive Q delayed by one chip period Tc, each a
    half-sine pulse ``p(t) = sin(pi t / (2 Tc))`` on ``[0, 2 Tc)`` with amplitude 2c - 1:
    ``I(t) = sum_k a_2k p(t - 2k Tc)``, ``Q(t) = sum_k a_2k+1 p(t - (2k+1) Tc)``.
    ``T = 32 n_symbols samples_per_chip``; sample rate ``2e6 * samples_per_chip``.
    """
    a = 2.0 * np.tile(SYMBOL0_CHIPS, n_symbols).astype(np.float64) - 1.0  # chips as +-1
    n_chips = a.size
    t = np.arange(n_chips * samples_per_chip) / samples_per_chip  # time in chip periods
    k_i = np.floor(t / 2).astype(int)
    i_part = a[2 * k_i] * np.sin(np.pi * (t - 2 * k_i) / 2)
    tq = t - 1.0
    k_q = np.clip(np.floor(tq / 2).astype(int), 0, n_chips // 2 - 1)
    q_part = np.where(tq >= 0, a[2 * k_q + 1] * np.sin(np.pi * (tq - 2 * k_q) / 2), 0.0)
    return i_part + 1j * q_part


# --------------------------------------------------------------------------- devices
@dataclasses.dataclass(frozen=True)
class ImpairmentRanges:
    """Ranges the per-device hardware impairments are drawn from (uniformly)."""

    iq_gain_db: tuple[float, float] = (-1.0, 1.0)
    iq_phase_deg: tuple[float, float] = (-5.0, 5.0)
    cfo_hz: tuple[float, float] = (-15e3, 15e3)
    cfo_jitter_hz: float = 300.0  # per-capture std of the CFO around the device's value
    pn_linewidth_hz: tuple[float, float] = (10.0, 200.0)
    dc_magnitude: tuple[float, float] = (0.0, 0.05)
    rapp_saturation: tuple[float, float] = (0.9, 1.6)  # A_sat relative to unit drive
    rapp_smoothness: tuple[float, float] = (1.5, 3.5)  # p
    saleh_spread: float = 0.1  # each Saleh coefficient is its nominal value x U(1 +- spread)
    saleh_drive: float = 0.5  # input back-off: the PA sees drive * u


# Saleh (1981) TWT coefficients (a_a, b_a, a_p, b_p).
SALEH_NOMINAL = (2.1587, 1.1517, 4.0033, 9.1040)


@dataclasses.dataclass(frozen=True)
class DeviceImpairments:
    """Hardware impairments of D devices, each field an array [D]."""

    iq_gain_db: np.ndarray
    iq_phase_rad: np.ndarray
    cfo_hz: np.ndarray
    pn_linewidth_hz: np.ndarray
    dc_offset: np.ndarray  # complex
    pa_model: str  # "rapp", "saleh" or "linear"
    pa_params: np.ndarray  # [D, 2] (A_sat, p) for Rapp, [D, 4] (a_a, b_a, a_p, b_p) for Saleh
    pa_drive: float = 1.0
    cfo_jitter_hz: float = 0.0

    def __len__(self) -> int:
        return len(self.cfo_hz)

    def take(self, index: np.ndarray) -> DeviceImpairments:
        """Impairments of the devices ``index`` (one row per capture)."""
        index = np.asarray(index)
        return dataclasses.replace(
            self, iq_gain_db=self.iq_gain_db[index], iq_phase_rad=self.iq_phase_rad[index],
            cfo_hz=self.cfo_hz[index], pn_linewidth_hz=self.pn_linewidth_hz[index],
            dc_offset=self.dc_offset[index], pa_params=self.pa_params[index])


def draw_devices(n_devices: int, rng: np.random.Generator, ranges: ImpairmentRanges = None,
                 pa_model: str = "rapp") -> DeviceImpairments:
    """Draw ``n_devices`` transmitters' impairments uniformly from ``ranges``."""
    r = ranges or ImpairmentRanges()
    u = lambda lo_hi: rng.uniform(lo_hi[0], lo_hi[1], n_devices)
    gain, phase = u(r.iq_gain_db), np.deg2rad(u(r.iq_phase_deg))
    cfo, linewidth = u(r.cfo_hz), u(r.pn_linewidth_hz)
    dc = u(r.dc_magnitude) * np.exp(2j * np.pi * rng.random(n_devices))
    if pa_model == "rapp":
        params, drive = np.stack([u(r.rapp_saturation), u(r.rapp_smoothness)], 1), 1.0
    elif pa_model == "saleh":
        spread = rng.uniform(1 - r.saleh_spread, 1 + r.saleh_spread, (n_devices, 4))
        params, drive = np.asarray(SALEH_NOMINAL)[None] * spread, r.saleh_drive
    elif pa_model == "linear":
        params, drive = np.zeros((n_devices, 0)), 1.0
    else:
        raise DataError(f"pa_model={pa_model!r} is not known; accepted: 'rapp', 'saleh', "
                        f"'linear'")
    return DeviceImpairments(gain, phase, cfo, linewidth, dc, pa_model, params, drive,
                             r.cfo_jitter_hz)


# --------------------------------------------------------------------------- transmitter
def iq_imbalance(x: np.ndarray, gain_db, phase_rad) -> np.ndarray:
    """I' = I, Q' = g (Q cos(phi) - I sin(phi)); x complex [n, T], gain/phase [n] or scalar.

    For uncorrelated I, Q of equal power: E[Q'^2] / E[I'^2] = g^2 and corr(I', Q') = -sin(phi).
    """
    g = 10.0 ** (np.asarray(gain_db, np.float64) / 20.0)[..., None]
    phi = np.asarray(phase_rad, np.float64)[..., None]
    i, q = x.real, x.imag
    return i + 1j * g * (q * np.cos(phi) - i * np.sin(phi))


def rapp(r: np.ndarray, a_sat, p) -> np.ndarray:
    """Rapp AM/AM ``A(r) = r / (1 + (r / A_sat)^(2p))^(1/(2p))`` (unit small-signal gain)."""
    a_sat, p = np.asarray(a_sat)[..., None], np.asarray(p)[..., None]
    return r / (1.0 + (r / a_sat) ** (2 * p)) ** (1.0 / (2 * p))


def saleh(r: np.ndarray, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Saleh AM/AM ``a_a r / (1 + b_a r^2)``, AM/PM ``a_p r^2 / (1 + b_p r^2)``; params [n, 4]."""
    a_a, b_a, a_p, b_p = (params[:, i, None] for i in range(4))
    return a_a * r / (1 + b_a * r**2), a_p * r**2 / (1 + b_p * r**2)


def power_amplifier(u: np.ndarray, dev: DeviceImpairments) -> np.ndarray:
    """Memoryless PA on complex baseband [n, T] (rows match ``dev`` rows)."""
    u = dev.pa_drive * u
    r, theta = np.abs(u), np.angle(u)
    if dev.pa_model == "rapp":
        return rapp(r, dev.pa_params[:, 0], dev.pa_params[:, 1]) * np.exp(1j * theta)
    if dev.pa_model == "saleh":
        amp, pm = saleh(r, dev.pa_params)
        return amp * np.exp(1j * (theta + pm))
    return u


def transmit(s: np.ndarray, dev: DeviceImpairments, sample_rate: float,
             rng: np.random.Generator) -> np.ndarray:
    """Baseband s [n, T] (or [T]) through each row's transmitter: complex128 [n, T].

    IQ imbalance -> DC offset -> PA -> LO with CFO (+ per-capture jitter) and Wiener phase
    noise; ``dev`` has one row per capture (``DeviceImpairments.take``).
    """
    n = len(dev)
    s = np.broadcast_to(s, (n, s.shape[-1]))
    t_len = s.shape[-1]
    ts = 1.0 / sample_rate
    u = iq_imbalance(s, dev.iq_gain_db, dev.iq_phase_rad) + dev.dc_offset[:, None]
    x = power_amplifier(u, dev)
    cfo = dev.cfo_hz + dev.cfo_jitter_hz * rng.standard_normal(n)
    steps = rng.standard_normal((n, t_len)) * np.sqrt(2 * np.pi * dev.pn_linewidth_hz * ts)[:, None]
    steps[:, 0] = 0.0
    phase = 2 * np.pi * cfo[:, None] * ts * np.arange(t_len) + np.cumsum(steps, axis=1)
    return x * np.exp(1j * phase)


# --------------------------------------------------------------------------- channels
def exponential_pdp(rms_delay_s: float, sample_rate: float, floor: float = 1e-4) -> np.ndarray:
    """Sample-spaced exponential power delay profile P_l = (1 - r) r^l / (1 - r^L), sum 1.

    r solves ``Ts sqrt(r) / (1 - r) = tau_rms`` (the RMS delay of the infinite geometric
    profile): with a = tau_rms / Ts and u = sqrt(r), ``a u^2 + u - a = 0``. Taps stop when
    r^l < ``floor``.
    """
    a = rms_delay_s * sample_rate
    u = (-1.0 + np.sqrt(1.0 + 4.0 * a * a)) / (2.0 * a)
    r = u * u
    n_taps = max(1, int(np.ceil(np.log(floor) / np.log(r)))) if r > 0 else 1
    p = r ** np.arange(n_taps)
    return p / p.sum()


def rms_delay(pdp: np.ndarray, sample_rate: float) -> float:
    """RMS delay spread of a (sample-spaced) power delay profile, seconds."""
    p = np.asarray(pdp, np.float64) / np.sum(pdp)
    tau = np.arange(p.size) / sample_rate
    mean = np.sum(p * tau)
    return float(np.sqrt(np.sum(p * tau**2) - mean**2))


def multipath_taps(rms_delay_s: np.ndarray, k_factor: np.ndarray, sample_rate: float,
                   rng: np.random.Generator) -> np.ndarray:
    """Random tap vectors, complex [n, L] (zero-padded to the longest profile).

    h_l = sqrt(P_l) w_l with w_l ~ CN(0, 1) for l > 0; the first tap is Rician:
    ``h_0 = sqrt(P_0) (sqrt(K / (K + 1)) e^{j theta} + sqrt(1 / (K + 1)) w_0)``.
    """
    pdps = [exponential_pdp(t, sample_rate) for t in np.atleast_1d(rms_delay_s)]
    n, n_taps = len(pdps), max(p.size for p in pdps)
    pdp = np.zeros((n, n_taps))
    for i, p in enumerate(pdps):
        pdp[i, : p.size] = p
    w = (rng.standard_normal((n, n_taps)) + 1j * rng.standard_normal((n, n_taps))) / np.sqrt(2)
    k = np.asarray(k_factor, np.float64)
    los = np.sqrt(k / (k + 1)) * np.exp(2j * np.pi * rng.random(n))
    w[:, 0] = los + np.sqrt(1 / (k + 1)) * w[:, 0]
    return np.sqrt(pdp) * w


def apply_channel(x: np.ndarray, taps: np.ndarray) -> np.ndarray:
    """y[n, t] = sum_l h[n, l] x[n, t - l], truncated to the first T samples."""
    y = np.zeros_like(x, dtype=np.complex128)
    for lag in range(taps.shape[1]):
        y[:, lag:] += taps[:, lag, None] * x[:, : x.shape[1] - lag]
    return y


def add_awgn(x: np.ndarray, snr_db: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """x + CN(0, sigma^2) with sigma^2 = mean_t |x|^2 / 10^(snr/10), per row."""
    power = np.mean(np.abs(x) ** 2, axis=-1, keepdims=True)
    sigma2 = power / 10.0 ** (np.asarray(snr_db, np.float64)[..., None] / 10.0)
    noise = rng.standard_normal(x.shape) + 1j * rng.standard_normal(x.shape)
    return x + np.sqrt(sigma2 / 2) * noise


def phase_sync(y: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Data-aided phase sync and power normalisation: y conj(c) / |c| / rms(y), c = <y, s>."""
    c = np.sum(y * np.conj(reference), axis=-1, keepdims=True)
    y = y * np.conj(c) / np.maximum(np.abs(c), 1e-12)
    return y / np.sqrt(np.mean(np.abs(y) ** 2, axis=-1, keepdims=True))


def iq_to_real(x: np.ndarray) -> np.ndarray:
    """complex [..., T] -> float32 [..., T, 2] (I, Q)."""
    return np.stack([x.real, x.imag], axis=-1).astype(np.float32)


# --------------------------------------------------------------------------- simulator
@dataclasses.dataclass(frozen=True)
class ZigbeeConfig:
    """Size of the preamble and the ranges of the random channel parameters."""

    n_symbols: int = 8  # preamble symbols (8 in the standard: 1,280 samples at 5 samples/chip)
    samples_per_chip: int = 5  # sample rate = 2 MHz * samples_per_chip
    snr_db: tuple[float, float] = (10.0, 30.0)
    rms_delay_ns: tuple[float, float] = (10.0, 300.0)
    k_factor: tuple[float, float] = (0.0, 10.0)
    # None: line of sight is AWGN only (the default). A range: line-of-sight captures get a
    # short Rician channel (K drawn in this range, RMS delay in ``los_rms_delay_ns``), as
    # indoor line-of-sight captures have; configs/*rff_zigbee.py use K in [2, 20].
    los_k_factor: tuple[float, float] | None = None
    los_rms_delay_ns: tuple[float, float] = (10.0, 50.0)
    pa_model: str = "rapp"
    ranges: ImpairmentRanges = ImpairmentRanges()

    @property
    def sample_rate(self) -> float:
        return CHIP_RATE * self.samples_per_chip

    @property
    def length(self) -> int:
        return 32 * self.n_symbols * self.samples_per_chip


class ZigbeeSimulator:
    """Fixed devices (drawn from ``seed``) that transmit the ZigBee preamble over channels."""

    def __init__(self, n_devices: int, config: ZigbeeConfig = ZigbeeConfig(), seed: int = 0):
        self.config = config
        self.sample_rate = config.sample_rate
        self.preamble = oqpsk_preamble(config.n_symbols, config.samples_per_chip)
        self.devices = draw_devices(n_devices, np.random.default_rng(seed), config.ranges,
                                    config.pa_model)

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    def capture(self, device: np.ndarray, channel: np.ndarray, rng: np.random.Generator,
                sync: bool = True) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Received captures complex128 [n, T] and their channel draws (dict of arrays [n]).

        ``device`` int [n] in [0, n_devices), ``channel`` int [n]: 0 = los, 1 = multipath.
        """
        device = np.asarray(device, np.int64)
        channel = np.broadcast_to(np.asarray(channel, np.int64), device.shape)
        n, cfg = device.size, self.config
        if device.size and (device.min() < 0 or device.max() >= self.n_devices):
            raise DataError(f"device ids must be in 0..{self.n_devices - 1}, got "
                            f"{device.min()}..{device.max()}")
        x = transmit(self.preamble, self.devices.take(device), self.sample_rate, rng)
        info = {"snr_db": rng.uniform(*cfg.snr_db, n), "rms_delay_ns": np.zeros(n),
                "k_factor": np.full(n, np.inf)}
        y = x * np.exp(2j * np.pi * rng.random(n))[:, None]  # line of sight: random phase
        draws = [(MULTIPATH, cfg.rms_delay_ns, cfg.k_factor)]
        if cfg.los_k_factor is not None:
            draws.append((LOS, cfg.los_rms_delay_ns, cfg.los_k_factor))
        for kind, delay_ns, k_factor in draws:
            rows = np.flatnonzero(channel == kind)
            if rows.size:
                info["rms_delay_ns"][rows] = rng.uniform(*delay_ns, rows.size)
                info["k_factor"][rows] = rng.uniform(*k_factor, rows.size)
                taps = multipath_taps(info["rms_delay_ns"][rows] * 1e-9, info["k_factor"][rows],
                                      self.sample_rate, rng)
                y[rows] = apply_channel(x[rows], taps)
        y = add_awgn(y, info["snr_db"], rng)
        return (phase_sync(y, self.preamble) if sync else y), info

    def observations(self, device, channel, rng) -> np.ndarray:
        """Synchronised, unit-RMS captures as float32 [n, T, 2]."""
        return iq_to_real(self.capture(device, channel, rng)[0])


@dataclasses.dataclass
class RFSplit:
    """Captures of one split: x float32 [n, T, 2], device int [n], channel int [n]."""

    x: np.ndarray
    device: np.ndarray
    channel: np.ndarray

    def __len__(self) -> int:
        return len(self.device)

    def to_dataset(self, name: str, n_device_classes: int) -> ArrayData:
        """The fixed set as :class:`ArrayData`: observations x, factors (device, channel)
        with sizes (``n_device_classes``, 2)."""
        factors = np.stack([self.device, self.channel], 1)
        return ArrayData(name, self.x, factors, ("device", "channel"),
                         (n_device_classes, len(CHANNELS)))


SPLITS = ("known_los", "known_multipath", "unseen_los", "unseen_multipath")
# (known devices?, channel) of every split; ``train`` is the line-of-sight training set.
SPLIT_KINDS = {"train": (True, LOS), "known_los": (True, LOS),
               "known_multipath": (True, MULTIPATH), "unseen_los": (False, LOS),
               "unseen_multipath": (False, MULTIPATH)}


def make_split(sim: ZigbeeSimulator, name: str, n_known: int, n_per_device: int,
               seed: int = 1) -> RFSplit:
    """One split of :data:`SPLIT_KINDS`: ``n_per_device`` captures of each of its devices.

    Devices 0..n_known-1 are known (seen in training), the rest unseen. Split ``name``
    draws from ``default_rng([seed, i])`` (i its position in :data:`SPLIT_KINDS`), so a
    split is the same whether it is made alone or with the others.
    """
    if not 0 < n_known < sim.n_devices:
        raise DataError(f"n_known={n_known} must be in 1..{sim.n_devices - 1} "
                        f"(the simulator has {sim.n_devices} devices)")
    if name not in SPLIT_KINDS:
        raise DataError(f"split {name!r} is not known; accepted: {', '.join(SPLIT_KINDS)}")
    known, channel = SPLIT_KINDS[name]
    rng = np.random.default_rng([seed, list(SPLIT_KINDS).index(name)])
    devices = np.arange(n_known) if known else np.arange(n_known, sim.n_devices)
    device = np.repeat(devices, n_per_device)
    ch = np.full(device.size, channel)
    return RFSplit(sim.observations(device, ch, rng), device, ch)


def make_splits(sim: ZigbeeSimulator, n_known: int, n_train_per_device: int,
                n_test_per_device: int, seed: int = 1) -> dict[str, RFSplit]:
    """``train`` (known devices, line of sight) and the four test splits of :data:`SPLITS`."""
    return {name: make_split(sim, name, n_known,
                             n_train_per_device if name == "train" else n_test_per_device, seed)
            for name in SPLIT_KINDS}


def zigbee_config(n_symbols: int = 8, samples_per_chip: int = 5, pa_model: str = "rapp",
                  los_k_factor=(), los_rms_delay_ns=(10.0, 50.0)) -> ZigbeeConfig:
    """:class:`ZigbeeConfig` from dataset options; ``los_k_factor`` () or None: line of
    sight is AWGN only, a range (lo, hi): line-of-sight captures get a Rician channel."""
    los_k = tuple(los_k_factor) if los_k_factor else None
    for key, value in (("los_k_factor", los_k), ("los_rms_delay_ns", tuple(los_rms_delay_ns))):
        if value is not None and (len(value) != 2 or not 0 <= value[0] <= value[1]):
            raise DataError(f"rf_zigbee: {key}={list(value)}; accepted: a range [lo, hi] with "
                            "0 <= lo <= hi (los_k_factor=[] for AWGN-only line of sight)")
    return ZigbeeConfig(n_symbols=n_symbols, samples_per_chip=samples_per_chip,
                        pa_model=pa_model, los_k_factor=los_k,
                        los_rms_delay_ns=tuple(los_rms_delay_ns))


class ZigbeeRF(GroundTruthData):
    """Simulated ZigBee RF fingerprints as ground-truth data.

    Factors: ``device`` (n_devices; the first ``n_known`` are the known devices) and
    ``channel`` (0 = line of sight, 1 = multipath). Each call draws fresh captures (noise,
    SNR, channel taps, phase noise); the devices are fixed by ``seed``.
    Observations: float32 [T, 2] (I, Q), unit RMS.
    """

    factor_names = ("device", "channel")

    def __init__(self, n_devices: int = 16, n_known: int = 12, n_symbols: int = 8,
                 samples_per_chip: int = 5, pa_model: str = "rapp", seed: int = 0,
                 los_k_factor=(), los_rms_delay_ns=(10.0, 50.0)):
        if not 0 < n_known <= n_devices:
            raise DataError(f"rf_zigbee: n_known={n_known} must be in 1..n_devices={n_devices}")
        config = zigbee_config(n_symbols, samples_per_chip, pa_model, los_k_factor,
                               los_rms_delay_ns)
        self.simulator = ZigbeeSimulator(n_devices, config, seed)
        self.n_known = n_known
        self.factor_sizes = (n_devices, len(CHANNELS))
        self.observation_shape = (config.length, 2)

    def sample_observations_from_factors(self, factors, rng):
        factors = np.asarray(factors, np.int64)
        self.check_factors(factors)
        return self.simulator.observations(factors[:, 0], factors[:, 1], rng)


@register_dataset("rf_zigbee")
def rf_zigbee(split: str = "", n_per_device: int = 500, split_seed: int = 1,
              **options) -> GroundTruthData:
    """``rf_zigbee`` with fresh draws (:class:`ZigbeeRF`, ``split=""``), or one fixed split
    of :func:`make_split` as :class:`ArrayData` (``split=train``: the line-of-sight
    training captures of the known devices, the set DR-RFF trains on).

    A split's device factor has ``n_known`` values for ``train`` and ``known_*`` splits,
    ``n_devices`` for ``unseen_*``; its channel factor 2. ``options`` are those of
    :class:`ZigbeeRF` (the devices come from ``seed``, the captures from ``split_seed``).
    """
    sim_data = ZigbeeRF(**options)
    if not split:
        return sim_data
    if split not in SPLIT_KINDS:
        raise DataError(f"rf_zigbee: split={split!r}; accepted: '' (fresh draws), "
                        + ", ".join(map(repr, SPLIT_KINDS)))
    if n_per_device < 1:
        raise DataError(f"rf_zigbee: n_per_device={n_per_device}; accepted: an integer >= 1")
    sim, n_known = sim_data.simulator, sim_data.n_known
    classes = n_known if SPLIT_KINDS[split][0] else sim.n_devices
    return make_split(sim, split, n_known, n_per_device, split_seed).to_dataset(
        f"rf_zigbee:{split}", classes)


# --------------------------------------------------------------------------- real captures
@dataclasses.dataclass
class RFCaptures:
    """Real captures: iq complex64 [n, T], device int [n] in 0..D-1, names of the D devices."""

    iq: np.ndarray
    device: np.ndarray
    device_names: list[str]
    channel: np.ndarray | None = None
    sample_rate: float | None = None

    def to_dataset(self, name: str = "rf_captures") -> ArrayData:
        """ArrayData with observations float32 [n, T, 2] and factors [device, channel]."""
        channel = np.zeros(len(self.device), np.int64) if self.channel is None else self.channel
        factors = np.stack([self.device, channel], 1)
        sizes = (len(self.device_names), int(channel.max()) + 1 if channel.size else 1)
        return ArrayData(name, iq_to_real(self.iq), factors, ("device", "channel"), sizes)


def _labels_to_ids(labels: np.ndarray, where: str) -> tuple[np.ndarray, list[str]]:
    labels = np.asarray(labels)
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
            raise DataError(f"{where}: device labels must be integers or strings, got "
                            f"non-integer floats such as {labels.ravel()[:3].tolist()}")
        labels = labels.astype(np.int64)
    if labels.dtype.kind not in "iuUSO":
        raise DataError(f"{where}: device labels must be integers or strings, got dtype "
                        f"{labels.dtype}")
    names, ids = np.unique(labels.astype(str) if labels.dtype.kind in "USO" else labels,
                           return_inverse=True)
    return ids.astype(np.int64), [str(v) for v in names]


def load_npz_captures(path: str | os.PathLike) -> RFCaptures:
    """Load ``iq`` (complex [n, T] or real [n, T, 2]) and ``device`` [n] from an .npz file.

    Optional arrays: ``channel`` (int [n]) and ``sample_rate`` (scalar).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise DataError(f"RF capture file {path!r} does not exist; expected an .npz with arrays "
                        f"'iq' (complex [n, T] or real [n, T, 2]) and 'device' ([n] labels)")
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise DataError(f"{path!r} is not a readable .npz file: {err}") from err
    missing = [k for k in ("iq", "device") if k not in data.files]
    if missing:
        raise DataError(f"{path!r} lacks array(s) {missing}; it has {sorted(data.files)}. "
                        f"Expected 'iq' (complex [n, T] or real [n, T, 2]) and 'device' [n]")
    iq = data["iq"]
    if np.iscomplexobj(iq):
        if iq.ndim != 2:
            raise DataError(f"{path!r}: complex 'iq' must be [n, T], got shape {iq.shape}")
    elif iq.ndim == 3 and iq.shape[-1] == 2 and iq.dtype.kind == "f":
        iq = iq[..., 0] + 1j * iq[..., 1]
    else:
        raise DataError(f"{path!r}: 'iq' must be complex [n, T] or float [n, T, 2], got "
                        f"{iq.dtype} {iq.shape}")
    if not np.all(np.isfinite(iq)):
        raise DataError(f"{path!r}: 'iq' holds NaN or infinite values")
    device = data["device"]
    if device.shape != (iq.shape[0],):
        raise DataError(f"{path!r}: 'device' must have shape ({iq.shape[0]},) to match 'iq' "
                        f"{iq.shape}, got {device.shape}")
    ids, names = _labels_to_ids(device, path)
    channel = None
    if "channel" in data.files:
        channel = np.asarray(data["channel"], np.int64)
        if channel.shape != ids.shape or (channel.size and channel.min() < 0):
            raise DataError(f"{path!r}: 'channel' must be non-negative ints of shape "
                            f"{ids.shape}, got {channel.dtype} {channel.shape}")
    rate = float(data["sample_rate"]) if "sample_rate" in data.files else None
    return RFCaptures(iq.astype(np.complex64), ids, names, channel, rate)


def _import_sigmf():
    try:
        from sigmf import sigmffile
    except ImportError as err:
        raise DataError("reading SigMF recordings needs the optional 'sigmf' package: "
                        "pip install sigmf  (or: .venv/bin/pip install sigmf)") from err
    return sigmffile


def load_sigmf(path: str | os.PathLike, length: int, label_key: str = "core:label",
               hop: int | None = None) -> RFCaptures:
    """Captures from a SigMF recording (``PATH.sigmf-meta`` + ``PATH.sigmf-data``).

    Each annotation with a device label (``label_key``, default ``core:label``) marks a
    segment ``[core:sample_start, +core:sample_count)`` of one device; it is cut into
    windows of ``length`` samples every ``hop`` samples (default ``length``). Segments
    shorter than ``length`` are skipped. Complex recordings only.
    """
    sigmffile = _import_sigmf()
    base = os.fspath(path)
    for ext in (".sigmf-meta", ".sigmf-data"):
        base = base[: -len(ext)] if base.endswith(ext) else base
    meta_path = base + ".sigmf-meta"
    if not os.path.exists(meta_path):
        raise DataError(f"SigMF metadata {meta_path!r} does not exist (give the recording's "
                        f"path with or without the .sigmf-meta extension)")
    if length <= 0:
        raise DataError(f"length={length} must be a positive number of samples")
    hop = length if hop is None else hop
    try:
        rec = sigmffile.fromfile(meta_path)
        samples = np.asarray(rec.read_samples())
    except Exception as err:  # the package raises several error types for bad files
        raise DataError(f"{base!r}: cannot read the SigMF recording: {err}") from err
    if not np.iscomplexobj(samples):
        raise DataError(f"{base!r}: the recording is real-valued "
                        f"({rec.get_global_field('core:datatype')}); I/Q captures are needed")
    windows, labels = [], []
    annotations = rec.get_annotations()
    for ann in annotations:
        if label_key not in ann:
            continue
        start = int(ann.get("core:sample_start", 0))
        count = int(ann.get("core:sample_count", samples.size - start))
        for s in range(start, start + count - length + 1, hop):
            windows.append(samples[s : s + length])
            labels.append(str(ann[label_key]))
    if not windows:
        raise DataError(f"{base!r}: no annotation with a {label_key!r} device label spans "
                        f"{length} samples ({len(annotations)} annotations)")
    ids, names = _labels_to_ids(np.asarray(labels), base)
    rate = rec.get_global_field("core:sample_rate")
    return RFCaptures(np.stack(windows).astype(np.complex64), ids, names, None,
                      None if rate is None else float(rate))


@register_dataset("rf_npz:")
def _rf_npz(spec: str) -> ArrayData:
    return load_npz_captures(spec).to_dataset()


@register_dataset("rf_sigmf:")
def _rf_sigmf(spec: str, length: int = 1280, label_key: str = "core:label") -> ArrayData:
    return load_sigmf(spec, length, label_key).to_dataset()


__all__ = [
    "CHANNELS", "DeviceImpairments", "ImpairmentRanges", "RFCaptures", "RFSplit", "SPLITS",
    "SPLIT_KINDS", "ZigbeeConfig", "ZigbeeRF", "ZigbeeSimulator", "add_awgn", "apply_channel",
    "draw_devices", "exponential_pdp", "iq_imbalance", "iq_to_real", "load_npz_captures",
    "load_sigmf", "make_split", "make_splits", "multipath_taps", "oqpsk_preamble", "phase_sync",
    "power_amplifier", "rapp", "rf_zigbee", "rms_delay", "saleh", "transmit", "zigbee_config"]
