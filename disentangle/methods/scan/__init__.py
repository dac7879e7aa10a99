"""beta-VAE + SCAN (Higgins et al., ICLR 2018) and its EEG use (Honke et al., ICLR 2021)."""

from disentangle.methods.scan import model  # noqa: F401  (registers)
