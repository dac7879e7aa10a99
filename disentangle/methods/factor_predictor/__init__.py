"""A classifier of ground-truth factors from observations (scores traversals and SCAN)."""

from disentangle.methods.factor_predictor import model  # noqa: F401  (registers)
