"""LSTM-VAE (beta = 1), the DTS paper's baseline, on the procedural time series ``ts_factors``.

    disentangle train configs/lstm_vae_ts_factors.py --workdir runs/lstm_vae_ts_factors

The recurrent networks and training settings of ``configs/dts_ts_factors.py``; loss =
recon + beta * KL. Tiny: ``train.steps=4 train.checkpoint_every=2 model.hidden=8``.
Runtime: 3,000 steps take about 5 min on 2 free CPU cores (estimated). What to expect:
with the autoregressive decoder the KL tends to vanish (``active_units`` falls towards 0,
``mi`` near 0), which DTS's MI term is meant to prevent.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("lstm_vae", "ts_factors")
    config.model.update({"latent_dim": 8, "cell": "lstm", "hidden": 64,
                         "decoder_input": "autoregressive", "obs_std": 0.3, "beta": 1.0})
    config.train.update({"steps": 3000, "learning_rate": 2e-3, "log_every": 50,
                         "checkpoint_every": 1000})
    return config
