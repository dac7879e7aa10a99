"""DR-RFF (Xie et al., IEEE TCOM 2023) on simulated ZigBee devices, at the paper's size.

    disentangle train configs/dr_rff_zigbee.py --workdir runs/dr_rff_zigbee

Trains on the fixed line-of-sight training captures of the known devices
(``data.options.split=train``: 30 known of 40 devices, 1,000 captures each, 1,280-sample
preambles at 10 MS/s); 512-d fingerprints, batch 64, Adam 1e-3 for F and for Q/G,
10,000 steps: 2,000 maximum-likelihood warm-up steps on F, then a QG and an F update
per step. The line-of-sight captures carry a weak Rician channel (K in 2-20, RMS delay
10-50 ns), so that there is a channel for Q to remove (docs/rf.md; AWGN-only line of
sight: ``data.options.los_k_factor=[]``).

Paper vs authors' code (defaults: the authors' code, which produced the published
numbers; docs/rf.md): ``model.shuffle_label`` channel_donor (y_j, the signal that went
through Q) | fingerprint_donor (y_i, the paper's text); ``model.g_loss_to_q`` True (L_G
reaches Q) | False (stop-gradient of x_bar into G); ``model.fingerprint_distance``
feature_mse (mean over the unnormalised features) | unit_sq_distance (sum over unit-norm
dims); ``model.q_noise_std`` 1.0 | 0.1; ``model.awgn_snr_db`` [5, 30] | [0, 20] (ML+AWGN).
The study runs both settings (experiments/rf_fingerprint.py's VARIANTS).

Runtime: about 12 h on 2 CPU cores (QG step ~4 s, F step ~1.3 s measured on a loaded
machine), tens of minutes on one modern GPU (estimated). Score the run with
``experiments/rf_fingerprint.py`` (open-set AUC/EER on known/unseen devices x line of
sight/multipath). A good result (paper): multipath AUC ~0.99, EER ~0.04, above ML (0.89)
and ML + AWGN augmentation (0.98).

Quick (the study's --quick, ~1-2 min per run on CPU): data.options.n_devices=12
data.options.n_known=8 data.options.n_symbols=2 data.options.samples_per_chip=4
data.options.n_per_device=300 model.embed_dim=64 model.channels=[16,32,32,32]
model.q_width=16 model.g_width=16 model.warmup_steps=100 train.steps=400
train.batch_size=32.
Tiny (seconds; tests): data.options.n_devices=4 data.options.n_known=3
data.options.n_symbols=1 data.options.samples_per_chip=2 data.options.n_per_device=8
model.embed_dim=8 model.channels=[4,4] model.q_width=4 model.q_bottleneck=2
model.g_width=4 model.warmup_steps=2 train.steps=4 train.batch_size=8 train.log_every=1
train.checkpoint_every=2.
"""

import ml_collections

from disentangle.config import base_config

# Each method's own model keys beside F's; the baselines train F alone.
METHOD_KEYS = {
    "dr_rff": {"alpha": 10.0, "beta": 10.0, "lam": 0.5, "warmup_steps": 2000,
               "q_width": 32, "q_bottleneck": 8, "q_noise_std": 1.0, "g_width": 32,
               "shuffle_label": "channel_donor", "g_loss_to_q": True,
               "fingerprint_distance": "feature_mse"},
    "ml_rff": {},
    "ml_rff_awgn": {"awgn_snr_db": (5.0, 30.0)}}


def rff_config(method: str) -> ml_collections.ConfigDict:
    """The shared data and train sections; the model section of ``method``."""
    config = base_config(method, "rf_zigbee")
    config.data.options = ml_collections.ConfigDict({
        "split": "train", "n_devices": 40, "n_known": 30, "n_symbols": 8,
        "samples_per_chip": 5, "n_per_device": 1000, "seed": 0, "split_seed": 1,
        "los_k_factor": (2.0, 20.0), "los_rms_delay_ns": (10.0, 50.0)})
    config.model = ml_collections.ConfigDict({
        "name": method, "embed_dim": 512, "channels": (32, 48, 64, 64), "scale": 16.0,
        **METHOD_KEYS[method]})
    config.train.update({"steps": 10_000, "batch_size": 64, "learning_rate": 1e-3,
                         "log_every": 100, "checkpoint_every": 1000})
    return config


def get_config():
    return rff_config("dr_rff")
