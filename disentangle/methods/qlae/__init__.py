"""QLAE: quantized-latent autoencoder with strong weight decay (Hsu et al., NeurIPS 2023)."""

from disentangle.methods.qlae import qlae  # noqa: F401  (registers)
