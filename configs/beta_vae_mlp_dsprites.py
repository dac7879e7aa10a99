"""beta-VAE (beta = 4) on procedural dSprites with the fully connected ``mlp_small``
network: the visual model of SCAN (configs/scan_dsprites.py, experiments/scan_shapes.py).

    disentangle train configs/beta_vae_mlp_dsprites.py --workdir runs/bvae_dsprites
    disentangle train configs/beta_vae_mlp_dsprites.py data.name=colour_shapes \\
        --workdir runs/bvae_colour_shapes

The beta-VAE paper's dSprites architecture is fully connected too; on 2 CPU cores the
convolutional decoder's gradient is ~25x slower. beta = 4 > 1 is SCAN's premise (a
disentangled visual posterior). Tiny: ``train.steps=4 train.checkpoint_every=2
train.batch_size=8``.
Runtime: measured 610 img/s (batch 64) on the shared 2-core machine at load ~22, so the
scan_shapes quick mode's 1,500 steps took under 3 min there and 30k steps take about
55 min (expect several times faster on 2 idle cores); about 1 min on a GPU (estimated).
A good result: reconstruction near 60-90 nats, KL 15-25 nats, and
position latents a linear read-out names correctly (> 0.8 on 4 position bins).
"""

from disentangle.config import base_config


def get_config():
    config = base_config("beta_vae")
    config.model.network = "mlp_small"
    config.model.beta = 4.0
    config.train.learning_rate = 5e-4
    return config
