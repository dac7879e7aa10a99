"""AnnealedVAE (gamma = 1000, C_max = 25 nats) on procedural dSprites.

    disentangle train configs/annealed_vae_dsprites.py --workdir runs/annealed_vae_dsprites

disentanglement_lib grid (Locatello et al. 2019): gamma = 1000, C_max in {5, 10, 25, 50,
75, 100}, iteration_threshold = 100,000 of 300,000 steps. Here the capacity reaches C_max
after 10,000 of the 30,000 default steps (the same third of training); pass
model.iteration_threshold=100000 with train.steps=300000 for dlib's schedule.
Runtime: a step takes 1.01x the beta-VAE's (benchmarks/baselines_step.py, interleaved
repeats on the shared 2-core machine; benchmarks/results/baselines_step.json), so
30k steps take about 45 min on 2 CPU cores, scaling configs/beta_vae_dsprites.py's
45 min, and a few minutes on one modern GPU (estimated).
A good result: the logged kl following the logged capacity closely.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("annealed_vae")
    config.model.gamma = 1000.0
    config.model.c_max = 25.0
    config.model.iteration_threshold = 10_000
    return config
