"""Single-trial event-related potentials (ERPs) with known clinical structure, and user ERPs.

The setting of Honke et al. (ICLR 2021, "Representation learning for improved
interpretability and classification accuracy of clinical factors from EEG"): single-trial
ERPs of 3 midline electrodes (Fz, Cz, Pz), 256 samples from -250 to 770 ms around the
stimulus (250 Hz), two stimulus conditions, and participants described by clinical factors.

``eeg_erp`` (:class:`SyntheticERP`) simulates a cohort whose clinical factors shift the
latency and amplitude of the ERP components. Factors: ``age_group`` (0 young, 1 older),
``depression`` (0 control, 1 major depression), ``anxiety`` (0 low, 1 high trait anxiety),
``condition`` (0 neutral standard, 1 emotional target, an emotional oddball paradigm).
Observations: float32 [n, 256, 3] in microvolts (not [0, 1]; option ``units_uv`` rescales),
baseline-corrected on the pre-stimulus interval. ``sample_observations_from_factors`` draws
a random cohort member with the requested clinical factors and simulates one trial of the
requested condition.

Components (young, control, low-anxiety participant; Gaussian waveforms
``A * exp(-(t - latency)^2 / (2 width^2))`` times a topography over (Fz, Cz, Pz)):

=========  =========  ========  ======================  =====================  ===========
component  latency    width     amplitude cond0 / cond1  topography Fz/Cz/Pz   trial jitter
=========  =========  ========  ======================  =====================  ===========
P1         100 ms     15 ms     +2.5 / +2.5 uV           0.4 / 0.7 / 1.0        6 ms
N1         165 ms     20 ms     -4.0 / -4.0 uV           1.0 / 0.9 / 0.6        8 ms
P2         230 ms     25 ms     +3.0 / +3.0 uV           0.9 / 1.0 / 0.6        10 ms
P3 (P3b)   350 ms     55 ms     +4.0 / +10.0 uV          0.45 / 0.75 / 1.0      30 ms
LPP        600 ms     130 ms    +1.5 / +5.0 uV           0.5 / 0.8 / 1.0        40 ms
=========  =========  ========  ======================  =====================  ===========

Clinical effects (fixed group effects). The *directions* follow the cited literature; the
*sizes* are our choices, of the order the literature describes, not values copied from a
meta-analysis. ``tests/test_eeg.py`` measures them back from generated trials:

- Older age (about 65 vs 25 years): P3 latency +40 ms (about 1 ms/year: Polich, 1996,
  "Meta-analysis of P300 normative aging studies", Psychophysiology 33, 334-353); P3
  amplitude x0.70 at Pz with an anterior shift of its scalp distribution (Fz weight
  0.45 -> 0.75; Friedman, Kazmerski & Fabiani, 1997, EEG Clin. Neurophysiol. 104,
  498-513); N1 latency +8 ms; alpha peak frequency 10 -> 9 Hz (Klimesch, 1999, Brain Res.
  Rev. 29, 169-195).
- Major depression: P3 amplitude x0.75 (reduced P300 in depression, reviewed by Bruder,
  Kayser & Tenke, 2012, Oxford Handbook of ERP Components, as a moderate and not fully
  consistent effect), P3 latency +15 ms (a small, less consistent delay), and the
  late positive potential to emotional stimuli x0.60 (blunted LPP: Foti, Olino, Klein &
  Hajcak, 2010, Depress. Anxiety 27, 813-820; Weinberg, Perlman, Kotov & Hajcak, 2016,
  J. Abnorm. Psychol. 125, 26-39). The condition-0 LPP is unchanged.
- High anxiety: N1 amplitude x1.30 (enhanced early, attention-related components in
  anxious individuals; e.g. Bar-Haim, Lamy & Glickman, 2005, Brain Cogn. 59, 11-22, who
  report early ERP differences with threat stimuli; we apply it to both conditions for
  simplicity) and the emotional-condition LPP x1.30
  (enhanced LPP to aversive pictures: MacNamara & Hajcak, 2010, Depress. Anxiety 27,
  234-243).

Effects multiply (a depressed, anxious participant has LPP x0.60 x1.30 in condition 1).
The references were written from the authors' knowledge of the literature, without
access to the papers while writing; check a reference before citing it further.

Variability (what makes the problem realistic):

- participants: log-normal amplitude scaling per component (sd 0.20 in log units),
  latency offsets (sd 5 ms for P1/N1/P2, 15 ms for P3/LPP), alpha frequency sd 0.8 Hz;
- trials: latency jitter (table above), log-normal amplitude variability (sd 0.25);
- background EEG: 1/f ("pink", power ~ 1/f) noise, 9 uV RMS per channel, spatially
  correlated (correlation 0.6 between neighbouring and 0.36 between Fz and Pz electrodes;
  He, 2014, Trends Cogn. Sci. 18, 480-487, on scale-free brain activity); alpha bursts
  (probability 0.6 per trial, Gaussian envelope sd 150 ms at a random time, 6 uV peak,
  posterior topography 0.5 / 0.7 / 1.0).

At this noise level a single trial has an SNR of about 1 for the emotional P3 at Pz, so
single-trial structure is only partly visible, as in real recordings.

``erp_npz:PATH`` (:func:`load_erp_npz`) reads a user's ERP trials: arrays ``trials``
[n, T, C] (float, microvolts), ``labels`` [n, K] (non-negative integers), scalar
``sampling_rate`` (Hz); optional ``label_names`` [K], ``channel_names`` [C],
``participant`` [n] (int ids) and ``tmin`` (seconds of the first sample).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from disentangle.data import register_dataset
from disentangle.data.base import ArrayData, GroundTruthData
from disentangle.errors import DataError

NUM_SAMPLES = 256
SAMPLING_RATE = 250.0  # Hz: 256 samples at 4 ms
TMIN_MS = -250.0
TIMES_MS = TMIN_MS + 1000.0 / SAMPLING_RATE * np.arange(NUM_SAMPLES)  # -250 ... 770 ms
CHANNELS = ("Fz", "Cz", "Pz")
CLINICAL_FACTORS = ("age_group", "depression", "anxiety")

# Standard measurement windows (ms) of the components, used by the hand-engineered baseline
# and by the tests that measure the generator's effects.
COMPONENT_WINDOWS = {"P1": (80, 130), "N1": (140, 200), "P2": (200, 260),
                     "P3": (300, 500), "LPP": (500, 770)}


@dataclasses.dataclass(frozen=True)
class Component:
    """One ERP component of a young, control, low-anxiety participant."""

    name: str
    latency: float  # ms
    width: float  # ms (Gaussian sd)
    amplitude: tuple[float, float]  # uV at the topography's maximum, per condition
    topography: tuple[float, float, float]  # Fz, Cz, Pz weights
    jitter: float  # ms, trial-to-trial latency sd
    participant_latency_sd: float  # ms


COMPONENTS = (
    Component("P1", 100.0, 15.0, (2.5, 2.5), (0.4, 0.7, 1.0), 6.0, 5.0),
    Component("N1", 165.0, 20.0, (-4.0, -4.0), (1.0, 0.9, 0.6), 8.0, 5.0),
    Component("P2", 230.0, 25.0, (3.0, 3.0), (0.9, 1.0, 0.6), 10.0, 5.0),
    Component("P3", 350.0, 55.0, (4.0, 10.0), (0.45, 0.75, 1.0), 30.0, 15.0),
    Component("LPP", 600.0, 130.0, (1.5, 5.0), (0.5, 0.8, 1.0), 40.0, 15.0),
)

# The documented clinical effects (see the module docstring); tests read these numbers.
EFFECTS = {
    "age_group": {"P3_latency_ms": 40.0, "P3_amplitude_ratio": 0.70, "P3_fz_weight": 0.75,
                  "N1_latency_ms": 8.0, "alpha_hz": -1.0},
    "depression": {"P3_amplitude_ratio": 0.75, "P3_latency_ms": 15.0,
                   "LPP_emotional_ratio": 0.60},
    "anxiety": {"N1_amplitude_ratio": 1.30, "LPP_emotional_ratio": 1.30},
}

NOISE_RMS_UV = 9.0
ALPHA = {"probability": 0.6, "peak_uv": 6.0, "envelope_sd_ms": 150.0, "hz": 10.0,
         "topography": (0.5, 0.7, 1.0)}
PARTICIPANT_AMPLITUDE_SD = 0.20
TRIAL_AMPLITUDE_SD = 0.25


def component_parameters(clinical: np.ndarray) -> dict[str, np.ndarray]:
    """Group-level component parameters for clinical factor rows int [n, 3].

    Returns latency [n, 5] (ms), amplitude [n, 5, 2] (uV per condition) and topography
    [n, 5, 3], components in :data:`COMPONENTS` order.
    """
    clinical = np.asarray(clinical)
    n = len(clinical)
    age, dep, anx = (clinical[:, i].astype(bool) for i in range(3))
    lat = np.tile([c.latency for c in COMPONENTS], (n, 1)).astype(np.float64)
    amp = np.tile(np.array([c.amplitude for c in COMPONENTS])[None], (n, 1, 1))
    topo = np.tile(np.array([c.topography for c in COMPONENTS])[None], (n, 1, 1))
    p3, n1, lpp = 3, 1, 4
    e = EFFECTS["age_group"]
    lat[age, p3] += e["P3_latency_ms"]
    amp[age, p3] *= e["P3_amplitude_ratio"]
    topo[age, p3, 0] = e["P3_fz_weight"]
    lat[age, n1] += e["N1_latency_ms"]
    e = EFFECTS["depression"]
    amp[dep, p3] *= e["P3_amplitude_ratio"]
    lat[dep, p3] += e["P3_latency_ms"]
    amp[dep, lpp, 1] *= e["LPP_emotional_ratio"]
    e = EFFECTS["anxiety"]
    amp[anx, n1] *= e["N1_amplitude_ratio"]
    amp[anx, lpp, 1] *= e["LPP_emotional_ratio"]
    return {"latency": lat, "amplitude": amp, "topography": topo}


def pink_noise(shape: tuple[int, ...], rng: np.random.Generator, exponent: float = 1.0
               ) -> np.ndarray:
    """Unit-variance noise with power spectrum ~ 1/f^exponent along the last axis."""
    n = shape[-1]
    freqs = np.fft.rfftfreq(n)
    scale = np.zeros_like(freqs)
    scale[1:] = freqs[1:] ** (-exponent / 2.0)
    spec = (rng.normal(size=(*shape[:-1], len(freqs)))
            + 1j * rng.normal(size=(*shape[:-1], len(freqs)))) * scale
    x = np.fft.irfft(spec, n=n)
    return x / x.std(axis=-1, keepdims=True)


# Spatial mixing of the background: correlation 0.6 between neighbours (Fz-Cz, Cz-Pz) and
# 0.36 between Fz and Pz (an AR(1)-like spatial profile), via its Cholesky factor.
_SPATIAL_CORR = np.array([[1.0, 0.6, 0.36], [0.6, 1.0, 0.6], [0.36, 0.6, 1.0]])
_SPATIAL_MIX = np.linalg.cholesky(_SPATIAL_CORR)


@dataclasses.dataclass
class Cohort:
    """Simulated participants: clinical factors and individual random effects."""

    clinical: np.ndarray  # int [P, 3]
    latency: np.ndarray  # ms [P, 5] (group value + individual offset)
    amplitude: np.ndarray  # uV [P, 5, 2]
    topography: np.ndarray  # [P, 5, 3]
    alpha_hz: np.ndarray  # [P]

    @classmethod
    def simulate(cls, num_participants: int, rng: np.random.Generator) -> Cohort:
        """Balanced clinical cells (cycling through the 8 combinations), random effects."""
        cells = np.array([[a, d, x] for a in (0, 1) for d in (0, 1) for x in (0, 1)])
        clinical = cells[rng.permutation(np.arange(num_participants) % len(cells))]
        p = component_parameters(clinical)
        lat_sd = np.array([c.participant_latency_sd for c in COMPONENTS])
        latency = p["latency"] + rng.normal(size=p["latency"].shape) * lat_sd
        scale = np.exp(rng.normal(size=(num_participants, len(COMPONENTS)))
                       * PARTICIPANT_AMPLITUDE_SD)
        amplitude = p["amplitude"] * scale[:, :, None]
        alpha = (ALPHA["hz"] + EFFECTS["age_group"]["alpha_hz"] * clinical[:, 0]
                 + 0.8 * rng.normal(size=num_participants))
        return cls(clinical, latency, amplitude, p["topography"], alpha)

    def __len__(self) -> int:
        return len(self.clinical)


def simulate_trials(cohort: Cohort, participant: np.ndarray, condition: np.ndarray,
                    rng: np.random.Generator, noise: float = 1.0
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Single trials of the given participants and conditions.

    Args:
      participant: int [n] cohort indices; condition: int [n] in {0, 1}.
      noise: scale of the background EEG and alpha bursts (0 gives the clean signal).
    Returns:
      (trials, clean): float32 [n, 256, 3] in uV, baseline-corrected on -250..0 ms; ``clean``
      is the same trial's ERP signal without background EEG (with the trial's jitter and
      amplitude variability), also baseline-corrected.
    """
    participant, condition = np.asarray(participant), np.asarray(condition)
    n, t = len(participant), TIMES_MS
    jitter = np.array([c.jitter for c in COMPONENTS])
    width = np.array([c.width for c in COMPONENTS])
    lat = cohort.latency[participant] + rng.normal(size=(n, len(COMPONENTS))) * jitter
    amp = cohort.amplitude[participant, :, :][np.arange(n), :, condition]  # [n, 5]
    amp = amp * np.exp(rng.normal(size=amp.shape) * TRIAL_AMPLITUDE_SD)
    topo = cohort.topography[participant]  # [n, 5, 3]
    wave = np.exp(-0.5 * ((t[None, None, :] - lat[..., None]) / width[None, :, None]) ** 2)
    clean = np.einsum("nk,nkt,nkc->ntc", amp, wave, topo)
    background = pink_noise((n, 3, NUM_SAMPLES), rng)  # [n, 3, T]
    background = np.einsum("cd,ndt->ntc", _SPATIAL_MIX, background) * NOISE_RMS_UV
    burst = rng.random(n) < ALPHA["probability"]
    centre = rng.uniform(TIMES_MS[0], TIMES_MS[-1], n)
    envelope = np.exp(-0.5 * ((t[None] - centre[:, None]) / ALPHA["envelope_sd_ms"]) ** 2)
    phase = rng.uniform(0, 2 * np.pi, n)
    hz = cohort.alpha_hz[participant]
    alpha = (burst[:, None] * ALPHA["peak_uv"] * envelope
             * np.sin(2 * np.pi * hz[:, None] * t[None] / 1000.0 + phase[:, None]))
    alpha = alpha[:, :, None] * np.asarray(ALPHA["topography"])[None, None]
    trials = clean + noise * (background + alpha)
    baseline = TIMES_MS < 0
    trials = trials - trials[:, baseline].mean(axis=1, keepdims=True)
    clean = clean - clean[:, baseline].mean(axis=1, keepdims=True)
    return trials.astype(np.float32), clean.astype(np.float32)


@register_dataset("eeg_erp")
class SyntheticERP(GroundTruthData):
    """Simulated single-trial ERPs of a cohort; factors = clinical factors + condition.

    Args:
      num_participants: cohort size (balanced over the 8 clinical cells).
      seed: seed of the cohort (its random effects and the train/test split).
      split: 'all', 'train' or 'test': which participants ``sample`` draws from.
      test_fraction: share of each clinical cell held out as test participants.
      noise: scale of background EEG and alpha (1 realistic, 0 noise-free).
      units_uv: observations are returned in units of this many microvolts (10 puts
        single trials at about unit standard deviation, which models train on best).
      participant_factor: add a fifth factor ``participant`` (the cohort index, size
        ``num_participants``), so that a batch says whose trial each row is (SCAN's
        per-participant sparse labels, docs/scan_eeg.md). Sampled factors then name the
        participant, and ``sample_observations_from_factors`` simulates that participant.
    """

    factor_names = (*CLINICAL_FACTORS, "condition")
    factor_sizes = (2, 2, 2, 2)
    observation_shape = (NUM_SAMPLES, len(CHANNELS))
    times_ms = TIMES_MS
    channel_names = CHANNELS
    sampling_rate = SAMPLING_RATE

    def __init__(self, num_participants: int = 96, seed: int = 0, split: str = "all",
                 test_fraction: float = 1 / 3, noise: float = 1.0, units_uv: float = 1.0,
                 participant_factor: bool = False):
        if split not in ("all", "train", "test"):
            raise DataError(f"eeg_erp: split={split!r}; accepted: 'all', 'train', 'test'")
        if num_participants < 16:
            raise DataError(f"eeg_erp: num_participants={num_participants}; need >= 16 "
                            "(two per clinical cell)")
        rng = np.random.default_rng(seed)
        self.cohort = Cohort.simulate(int(num_participants), rng)
        self.noise = float(noise)
        self.units_uv = float(units_uv)
        if not self.units_uv > 0:
            raise DataError(f"eeg_erp: units_uv={units_uv}; must be > 0")
        self.split = split
        # Hold out ``test_fraction`` of every clinical cell.
        cell = self.cohort.clinical @ np.array([4, 2, 1])
        test = np.zeros(len(self.cohort), bool)
        for c in range(8):
            members = rng.permutation(np.flatnonzero(cell == c))
            test[members[: max(1, round(test_fraction * len(members)))]] = True
        self.is_test = test
        chosen = {"all": np.ones_like(test), "train": ~test, "test": test}[split]
        self.participants = np.flatnonzero(chosen)
        self.participant_factor = bool(participant_factor)
        if self.participant_factor:
            self.factor_names = (*type(self).factor_names, "participant")
            self.factor_sizes = (*type(self).factor_sizes, len(self.cohort))

    def participant_factors(self) -> np.ndarray:
        """Clinical factors of every cohort member, int [P, 3]."""
        return self.cohort.clinical.copy()

    def trials(self, participant: np.ndarray, condition: np.ndarray, rng: np.random.Generator,
               clean: bool = False) -> np.ndarray:
        """Trials float32 [n, 256, 3] (or their clean signals) of given participants, in
        units of ``units_uv`` microvolts."""
        noisy, signal = simulate_trials(self.cohort, participant, condition, rng, self.noise)
        return (signal if clean else noisy) / np.float32(self.units_uv)

    def sample_participants(self, factors: np.ndarray, rng: np.random.Generator
                            ) -> np.ndarray:
        """A random member of this split with each row's clinical factors, int [n]."""
        factors = np.asarray(factors)
        self.check_factors(factors)
        pool_clin = self.cohort.clinical[self.participants]
        out = np.empty(len(factors), np.int64)
        keys = factors[:, :3] @ np.array([4, 2, 1])
        pool_keys = pool_clin @ np.array([4, 2, 1])
        for key in np.unique(keys):
            members = self.participants[pool_keys == key]
            rows = np.flatnonzero(keys == key)
            if members.size == 0:
                raise DataError(f"eeg_erp: no {self.split} participant has clinical factors "
                                f"{factors[rows[0], :3].tolist()}")
            out[rows] = members[rng.integers(0, members.size, rows.size)]
        return out

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Factors of random trials of this split's participants, int [n, 4]."""
        who = self.participants[rng.integers(0, self.participants.size, n)]
        factors = np.concatenate([self.cohort.clinical[who], rng.integers(0, 2, (n, 1))], axis=1)
        return np.concatenate([factors, who[:, None]], axis=1) if self.participant_factor \
            else factors

    def sample_observations_from_factors(self, factors, rng):
        factors = np.asarray(factors)
        if not self.participant_factor:
            return self.trials(self.sample_participants(factors, rng), factors[:, 3], rng)
        self.check_factors(factors)
        who = factors[:, 4]
        wrong = np.flatnonzero(np.any(self.cohort.clinical[who] != factors[:, :3], axis=1))
        if wrong.size:
            r = wrong[0]
            raise DataError(f"eeg_erp: row {r} names participant {who[r]} with clinical factors "
                            f"{factors[r, :3].tolist()}, but that participant has "
                            f"{self.cohort.clinical[who[r]].tolist()}")
        return self.trials(who, factors[:, 3], rng)

    def sample_with_participants(self, n: int, rng: np.random.Generator
                                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(factors [n, 4], trials [n, 256, 3], participant ids [n]) of this split."""
        who = self.participants[rng.integers(0, self.participants.size, n)]
        cond = rng.integers(0, 2, n)
        factors = np.concatenate([self.cohort.clinical[who], cond[:, None]], axis=1)
        return factors, self.trials(who, cond, rng), who


# ----------------------------------------------------------------------------- user data
def load_erp_npz(path: str | Path) -> tuple[ArrayData, dict]:
    """A user's ERP trials from ``.npz`` as a dataset, plus metadata.

    Required arrays: ``trials`` float [n, T, C] (microvolts), ``labels`` int [n, K] >= 0,
    ``sampling_rate`` scalar > 0 (Hz). Optional: ``label_names`` [K], ``channel_names`` [C],
    ``participant`` int [n], ``tmin`` (s). Returns (dataset, meta) with meta keys
    ``sampling_rate``, ``times_ms``, ``channel_names``, ``participant`` (or None).
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"erp_npz: file {path} does not exist; save one with np.savez(path, "
                        "trials=[n, T, C], labels=[n, K], sampling_rate=Hz)")
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    missing = [k for k in ("trials", "labels", "sampling_rate") if k not in arrays]
    if missing:
        raise DataError(f"erp_npz: {path} lacks {', '.join(missing)}; it has "
                        f"{', '.join(sorted(arrays)) or 'no arrays'}")
    trials, labels = arrays["trials"], arrays["labels"]
    if trials.ndim == 2:
        trials = trials[:, :, None]
    if trials.ndim != 3 or not np.issubdtype(trials.dtype, np.number):
        raise DataError(f"erp_npz: {path}: 'trials' must be numeric [n, T, C]; got "
                        f"{trials.dtype} {trials.shape}")
    if not np.all(np.isfinite(trials)):
        bad = np.argwhere(~np.isfinite(trials))[0]
        raise DataError(f"erp_npz: {path}: 'trials' has a non-finite value at {bad.tolist()}")
    if labels.ndim == 1:
        labels = labels[:, None]
    if labels.ndim != 2 or len(labels) != len(trials):
        raise DataError(f"erp_npz: {path}: 'labels' must be [n, K] with n = {len(trials)} "
                        f"(the number of trials); got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or (labels < 0).any():
        raise DataError(f"erp_npz: {path}: 'labels' must be non-negative integers (class "
                        f"indices); got dtype {labels.dtype}, min {labels.min()}")
    rate = np.asarray(arrays["sampling_rate"])
    if rate.size != 1 or not np.isfinite(rate).all() or float(rate) <= 0:
        raise DataError(f"erp_npz: {path}: 'sampling_rate' must be one positive number (Hz); "
                        f"got {rate}")
    k, c = labels.shape[1], trials.shape[2]
    names = arrays.get("label_names", np.array([f"label_{i}" for i in range(k)]))
    if len(names) != k:
        raise DataError(f"erp_npz: {path}: {len(names)} label_names for {k} label columns")
    channels = arrays.get("channel_names", np.array([f"ch{i}" for i in range(c)]))
    if len(channels) != c:
        raise DataError(f"erp_npz: {path}: {len(channels)} channel_names for {c} channels")
    participant = arrays.get("participant")
    if participant is not None and participant.shape != (len(trials),):
        raise DataError(f"erp_npz: {path}: 'participant' must be [n] = [{len(trials)}]; got "
                        f"{participant.shape}")
    tmin = float(arrays.get("tmin", 0.0))
    sizes = labels.max(axis=0) + 1
    ds = ArrayData(f"erp_npz:{path}", trials.astype(np.float32), labels,
                   [str(n) for n in names], sizes)
    meta = {"sampling_rate": float(rate),
            "times_ms": 1000.0 * (tmin + np.arange(trials.shape[1]) / float(rate)),
            "channel_names": [str(ch) for ch in channels], "participant": participant}
    return ds, meta


@register_dataset("erp_npz:")
def _erp_npz(spec: str) -> GroundTruthData:
    ds, meta = load_erp_npz(spec)
    ds.meta = meta
    return ds
