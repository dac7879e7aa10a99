"""LSTM-beta-TCVAE (TC weight 4), the DTS paper's baseline, on ``ts_factors``.

    disentangle train configs/lstm_beta_tcvae_ts_factors.py --workdir runs/lstm_tcvae

The recurrent networks and training settings of ``configs/dts_ts_factors.py``; loss =
recon + KL + (beta - 1) TC with the minibatch-weighted-sampling TC estimate. Tiny:
``train.steps=4 train.checkpoint_every=2 model.hidden=8``. Runtime: 3,000 steps take
about 5 min on 2 free CPU cores (estimated). What to expect: lower TC than LSTM-VAE; the
KL can still vanish, as the MI term is weighted 1.
"""

from pathlib import Path

from disentangle.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("lstm_vae_ts_factors.py"))
    config.model.name = "lstm_beta_tcvae"
    config.model.beta = 4.0
    return config
