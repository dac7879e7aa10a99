"""DIP-VAE-I (lambda_od = 10, lambda_d = 100) on procedural dSprites.

    disentangle train configs/dip_vae_i_dsprites.py --workdir runs/dip_vae_i_dsprites

disentanglement_lib grid (Locatello et al. 2019): lambda_od in {1, 2, 5, 10, 20, 50},
lambda_d = 10 * lambda_od; Adam 1e-4, batch 64, z = 10. The penalty pulls the batch
covariance of the posterior means to the identity (disentangle/methods/vae/dip_vae.py).
Runtime: a step takes 1.18x the beta-VAE's (benchmarks/baselines_step.py, interleaved
repeats on the shared 2-core machine; benchmarks/results/baselines_step.json), so
30k steps take about 55 min on 2 CPU cores, scaling configs/beta_vae_dsprites.py's
45 min, and a few minutes on one modern GPU (estimated).
A good result: dip_off_diagonal and dip_diagonal falling towards zero while the
reconstruction stays near the plain VAE's.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("dip_vae_i")
    config.model.lambda_od = 10.0
    config.model.lambda_d = 100.0
    return config
