"""DR-RFF: disentangled RF fingerprints under unknown channels (Xie et al., IEEE TCOM 2023)."""

from disentangle.methods.dr_rff import model  # noqa: F401  (registers)
