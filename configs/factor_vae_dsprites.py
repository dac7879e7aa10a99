"""FactorVAE (gamma = 30) on procedural dSprites, disentanglement_lib architecture.

    disentangle train configs/factor_vae_dsprites.py --workdir runs/factor_vae_dsprites

disentanglement_lib grid (Locatello et al. 2019): gamma in {10, 20, 30, 40, 50, 100};
discriminator 6 x 1000 LeakyReLU units, Adam lr 1e-4, beta1 0.5, beta2 0.9; VAE Adam 1e-4,
batch 64, z = 10 (300k steps there). Each step is a VAE update and a discriminator
update (the discriminator adds about 5M parameters; disentangle/methods/vae/factor_vae.py).
Runtime: a step takes 1.87x the beta-VAE's (benchmarks/baselines_step.py, interleaved
repeats on the shared 2-core machine; benchmarks/results/baselines_step.json), so
30k steps take about 85 min on 2 CPU cores, scaling configs/beta_vae_dsprites.py's
45 min, and a few minutes on one modern GPU (estimated).
A good result: reconstruction near the beta-VAE's, the tc term (the discriminator's
estimate) near zero or below late in training, discriminator_accuracy near 0.5.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("factor_vae")
    config.model.gamma = 30.0
    config.model.discriminator_width = 1000
    config.model.discriminator_depth = 6
    config.model.discriminator_learning_rate = 1e-4
    config.model.discriminator_beta1 = 0.5
    config.model.discriminator_beta2 = 0.9
    return config
