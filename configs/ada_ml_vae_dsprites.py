"""Ada-ML-VAE (beta = 1, k random) on pairs of procedural dSprites images.

    disentangle train configs/ada_ml_vae_dsprites.py --workdir runs/ada_ml_vae_dsprites

As configs/ada_gvae_dsprites.py with the ML-VAE aggregate of the shared posteriors
(disentangle/methods/weak/ada.py). disentanglement_lib grid (Locatello et al. 2020):
beta in {1, 2, 4, 6, 8, 16}, k in {1, -1 (random)}; Adam 1e-4, batch 64, z = 10.
Runtime: as Ada-GVAE's (the aggregate adds a few elementwise operations): a step takes
about 2.2x the beta-VAE's (benchmarks/results/baselines_step.json), so 30k steps take
about 100 min on 2 CPU cores and a few minutes on one modern GPU (estimated).
"""

from disentangle.config import base_config


def get_config():
    config = base_config("ada_ml_vae")
    config.model.beta = 1.0
    config.model.k = -1
    return config
