"""beta-VAE (beta = 4) on procedural dSprites, disentanglement_lib architecture.

    disentangle train configs/beta_vae_dsprites.py --workdir runs/beta_vae_dsprites

Runtime: 30k steps at batch 64 take about 45 min on 2 CPU cores and about 2 min on
one modern GPU (estimated). A good result: reconstruction near 60-80 nats, KL 15-25
nats, 5-6 active latents (posterior variance well below 1) and MIG above 0.1.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("beta_vae")
    config.model.beta = 4.0
    return config
