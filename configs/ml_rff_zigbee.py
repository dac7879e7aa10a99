"""Maximum-likelihood RF fingerprints (DR-RFF's first baseline) on simulated ZigBee devices.

    disentangle train configs/ml_rff_zigbee.py --workdir runs/ml_rff_zigbee

F alone trained with cross-entropy on the line-of-sight training captures of the known
devices; data, F, batch, optimizer and the 10,000 steps as in configs/dr_rff_zigbee.py
(which holds the shared sections), so every method makes the same number of F updates.
Runtime: about 1 h on 2 CPU cores (ML step ~0.33 s on a loaded machine), a few minutes
on one modern GPU (estimated). A good result (paper, multipath): AUC ~0.89, EER ~0.19,
below DR-RFF and ML + AWGN augmentation.

Quick: the quick overrides of configs/dr_rff_zigbee.py without the model.q_*, model.g_*
and model.warmup_steps keys. Tiny: data.options.n_devices=4 data.options.n_known=3
data.options.n_symbols=1 data.options.samples_per_chip=2 data.options.n_per_device=8
model.embed_dim=8 model.channels=[4,4] train.steps=4 train.batch_size=8
train.log_every=1 train.checkpoint_every=2.
"""

from pathlib import Path

from disentangle.config import load_module


def get_config():
    shared = load_module(Path(__file__).with_name("dr_rff_zigbee.py"))
    return shared.rff_config("ml_rff")
