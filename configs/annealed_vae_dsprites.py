"""AnnealedVAE (gamma = 1000, C_max = 25 nats) on procedural dSprites.

    disentangle train configs/annealed_vae_dsprites.py --workdir runs/annealed_vae_dsprites

disentanglement_lib grid (Locatello et al. 2019): gamma = 1000, C_max in {5, 10, 25, 50,
75, 100}, iteration_threshold = 100,000 of 300,000 steps. Here the capacity reaches C_max
after 10,000 of the 30,000 default steps (the same third of training); pass
model.iteration_threshold=100000 with train.steps=300000 for dlib's schedule.
A good result: the logged kl following the logged capacity closely.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("annealed_vae")
    config.model.gamma = 1000.0
    config.model.c_max = 25.0
    config.model.iteration_threshold = 10_000
    return config
