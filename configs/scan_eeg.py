"""SCAN on single-trial ERPs (Honke et al., ICLR 2021): clinical symbols over a frozen
1-D beta-VAE (configs/beta_vae_eeg.py), with sparse clinical labels.

    disentangle train configs/beta_vae_eeg.py --workdir runs/bvae_eeg
    disentangle train configs/scan_eeg.py model.visual_run=runs/bvae_eeg --workdir runs/scan_eeg

Symbols over (age_group, depression, anxiety, condition) of the training participants'
trials. The clinical labels are sparse: each training participant's label of each
clinical factor is available with probability ``model.symbols.label_fraction`` (0.5),
decided per participant (``label_group=participant``, eeg_erp's ``participant_factor``
option adds the participant to each trial's factors) and fixed by ``label_seed``; a symbol
names a random subset (p_name 0.5) of the available labels. The data options (cohort
size, seed) must match the visual run's. SCAN beta = 1, lambda = 10, Adam 1e-3. Only SCAN
is trained (train.steps = scan_steps: no recombiner stage). Tiny: ``model.scan_steps=4
train.steps=4 train.checkpoint_every=2 train.batch_size=8
data.options.num_participants=16`` (on a tiny visual run of the same cohort).
Runtime: measured 1,340-1,680 trials/s (batch 128, ~11 steps/s) on the shared 2-core
machine at load ~20, so 10k steps take about 15 min there (simulating the trials
dominates); a few minutes on a GPU (estimated). A good result: participant-level
AUC of SCAN's clinical read-out on held-out participants above 0.7 for age group and
anxiety (experiments/scan_eeg.py).
"""

from disentangle.config import base_config
from disentangle.methods.scan.model import scan_model_config


def get_config():
    config = base_config("scan", "eeg_erp")
    config.data.options = {"num_participants": 240, "seed": 0, "split": "train",
                           "units_uv": 10.0, "participant_factor": True}
    config.model = scan_model_config(("age_group", "depression", "anxiety", "condition"))
    config.model.symbols.update({"sparse": ("age_group", "depression", "anxiety"),
                                 "label_group": "participant", "label_fraction": 0.5})
    config.model.scan_steps = 10_000
    config.train.update({"steps": 10_000, "batch_size": 128, "learning_rate": 1e-3,
                         "log_every": 100, "checkpoint_every": 2000})
    return config
