"""SCAN + recombination operators (Higgins et al., ICLR 2018) on colour_shapes, over a
frozen beta-VAE run.

    disentangle train configs/beta_vae_mlp_dsprites.py data.name=colour_shapes \\
        --workdir runs/bvae_cs
    disentangle train configs/scan_colour_shapes.py model.visual_run=runs/bvae_cs \\
        --workdir runs/scan_cs

As configs/scan_dsprites.py (stages, tiny overrides, runtime) with every factor of
colour_shapes in the vocabulary and positions binned into 4 values.
"""

from disentangle.config import base_config
from disentangle.methods.scan.model import scan_model_config


def get_config():
    config = base_config("scan", "colour_shapes")
    config.model = scan_model_config((), {"pos_x": 4, "pos_y": 4})
    config.model.scan_steps = 10_000
    config.train.update({"steps": 20_000, "batch_size": 128, "learning_rate": 1e-3,
                         "log_every": 100, "checkpoint_every": 2000})
    return config
