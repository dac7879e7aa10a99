"""Weakly-supervised VAEs on pairs of observations: Ada-GVAE and Ada-ML-VAE."""

from disentangle.methods.weak import ada  # noqa: F401  (registers)
