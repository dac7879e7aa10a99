"""Autoencoder on procedural dSprites (the QLAE paper's AE baseline, no weight decay).

    disentangle train configs/ae_dsprites.py --workdir runs/ae_dsprites

Runtime: 30k steps at batch 64 take about 45 min on 2 CPU cores (~700 img/s) and
about 2 min on one modern GPU (estimated). A good result: reconstruction (Bernoulli NLL
summed over pixels) below ~40 nats; latents informative (high InfoE) but entangled
(InfoM and InfoC clearly below QLAE's).
"""

from disentangle.config import base_config


def get_config():
    config = base_config("ae")
    return config
