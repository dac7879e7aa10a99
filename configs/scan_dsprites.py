"""SCAN + recombination operators (Higgins et al., ICLR 2018) on dSprites, over a frozen
beta-VAE run.

    disentangle train configs/beta_vae_mlp_dsprites.py --workdir runs/bvae
    disentangle train configs/scan_dsprites.py model.visual_run=runs/bvae --workdir runs/scan

Steps 1..model.scan_steps train SCAN (group ``scan``, objective ``scan_loss``), the rest up
to train.steps the recombiner (group ``recombiner``, ``recombination_loss``); the visual
model is loaded from ``model.visual_run`` (keep that directory) and never updated.
Symbols: shape, scale (3 bins), pos_x and pos_y (4 bins each); orientation is left out
(ambiguous under the square's and ellipse's symmetries). SCAN beta = 1, lambda = 10 (paper
appendix), Adam 1e-3. Tiny: ``model.scan_steps=2 train.steps=4 train.checkpoint_every=2
train.batch_size=8`` (crosses the stage boundary; the visual run may be tiny too).
Runtime (CPU): measured 890 img/s (batch 128, ~7 steps/s; rendering and encoding the batch
dominate) on the shared 2-core machine at load ~22, so 20k steps take about 50 min there
(expect several times faster on 2 idle cores); a few minutes on a GPU (estimated).
A good result: scan_loss settles with kl_visual of a few nats; the empty symbol's
posterior is near N(0, I); recombination_loss (KL to the target concept) below ~1 nat.
Evaluate with experiments/scan_shapes.py (image -> symbol and symbol -> image accuracy).
"""

from disentangle.config import base_config
from disentangle.methods.scan.model import scan_model_config


def get_config():
    config = base_config("scan")
    config.model = scan_model_config(("shape", "scale", "pos_x", "pos_y"),
                                     {"scale": 3, "pos_x": 4, "pos_y": 4})
    config.model.scan_steps = 10_000
    config.train.update({"steps": 20_000, "batch_size": 128, "learning_rate": 1e-3,
                         "log_every": 100, "checkpoint_every": 2000})
    return config
