"""Ada-GVAE (beta = 1, k random) on pairs of procedural dSprites images.

    disentangle train configs/ada_gvae_dsprites.py --workdir runs/ada_gvae_dsprites

Weakly supervised: each batch item is a pair of images whose factors differ in k
(model.k = -1: k uniform in 1..K-1 per pair; disentangle/data/pairs.py), so a step encodes
and decodes 2 x train.batch_size images. disentanglement_lib grid (Locatello et al. 2020):
beta in {1, 2, 4, 6, 8, 16}, k in {1, -1 (random)}; Adam 1e-4, batch 64, z = 10.
Runtime: a step takes 2.16x the beta-VAE's (benchmarks/baselines_step.py, interleaved
repeats on the shared 2-core machine; benchmarks/results/baselines_step.json), so
30k steps take about 100 min on 2 CPU cores, scaling configs/beta_vae_dsprites.py's
45 min, and a few minutes on one modern GPU (estimated).
A good result: shared_dims (the per-pair estimate of the unchanged latents) settling near
latent_dim minus the number of changed factors, and MIG above the unsupervised VAEs'.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("ada_gvae")
    config.model.beta = 1.0
    config.model.k = -1
    return config
