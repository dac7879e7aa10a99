"""The VAE family: AE -> beta-VAE -> beta-TCVAE, each overriding one hook (``regularizer``)."""

from disentangle.methods.vae import ae, beta_tcvae, beta_vae  # noqa: F401  (registers)
