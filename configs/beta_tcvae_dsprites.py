"""beta-TCVAE (TC weight 6, minibatch-weighted sampling) on procedural dSprites.

    disentangle train configs/beta_tcvae_dsprites.py --workdir runs/beta_tcvae_dsprites

Runtime: 30k steps at batch 64 take about 50 min on 2 CPU cores and about 2 min on
one modern GPU (estimated). A good result: reconstruction near 40-60 nats, a total
correlation estimate near zero late in training, and MIG above the beta-VAE's.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("beta_tcvae")
    config.model.beta = 6.0
    return config
