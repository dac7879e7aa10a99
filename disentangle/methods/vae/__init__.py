"""The VAE family: AE -> beta-VAE -> beta-TCVAE, FactorVAE, DIP-VAE-I/II, AnnealedVAE, each
overriding one hook (``regularizer``; FactorVAE adds its discriminator's objective)."""

from disentangle.methods.vae import (  # noqa: F401  (registers)
    ae,
    annealed_vae,
    beta_tcvae,
    beta_vae,
    dip_vae,
    factor_vae,
)
