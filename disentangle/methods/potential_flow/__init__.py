"""Latent traversals as potential flows (Song, Keller, Sebe, Welling; ICML 2023)."""

from disentangle.methods.potential_flow import model  # noqa: F401  (registers)
