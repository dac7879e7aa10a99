"""Recurrent VAEs for time series and DTS (Li et al., KDD 2022)."""

from disentangle.methods.dts import dts, lstm_vae  # noqa: F401  (registers)
