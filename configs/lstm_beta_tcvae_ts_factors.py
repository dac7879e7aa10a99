"""LSTM-beta-TCVAE (TC weight 4), the DTS paper's baseline, on ``ts_factors``.

    disentangle train configs/lstm_beta_tcvae_ts_factors.py --workdir runs/lstm_tcvae

The recurrent networks and training settings of ``configs/dts_ts_factors.py``; loss =
recon + KL + (beta - 1) TC with the minibatch-weighted-sampling TC estimate. Tiny:
``train.steps=4 train.checkpoint_every=2 model.hidden=8``. Runtime: 3,000 steps take
about 5 min on 2 free CPU cores (estimated). What to expect: lower TC than LSTM-VAE; the
KL can still vanish, as the MI term is weighted 1.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("lstm_beta_tcvae", "ts_factors")
    config.model.update({"latent_dim": 8, "cell": "lstm", "hidden": 64,
                         "decoder_input": "autoregressive", "obs_std": 0.3, "beta": 4.0})
    config.train.update({"steps": 3000, "learning_rate": 2e-3, "log_every": 50,
                         "checkpoint_every": 1000})
    return config
