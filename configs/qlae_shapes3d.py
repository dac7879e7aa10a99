"""QLAE on Shapes3D: 2 x 6 factors = 12 latents of 10 codebook values each.

    disentangle data prepare shapes3d --from PATH/TO/3dshapes.h5
    disentangle train configs/qlae_shapes3d.py --workdir runs/qlae_shapes3d

Settings from Hsu et al. (2023) for Shapes3D, those of configs/qlae_dsprites.py but for
the codebook terms: AdamW lr 1e-3, weight decay 0.1 on weights only, element-wise gradient
clip 1 (decayed weights only), quantization and commitment weights 0.01 (dSprites: 0.001).
The paper trains 200k steps at batch 128 with its own conv/FiLM networks; this config
keeps the workbench's conv64 and a CPU-sized 30k steps at batch 64. Batches are read
from the prepared copy on the host (5.9 GB, not loaded). Runtime: about 45-60 min on 2 CPU
cores, a few minutes on one modern GPU (estimated from the dSprites configs, not measured).
A good result: near-perfect reconstructions (the scenes are simple) and InfoM/InfoC
clearly above configs/beta_vae_shapes3d.py's at comparable reconstruction (the paper's
ranking; no figure measured here).
"""

from pathlib import Path

from disentangle.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("qlae_dsprites.py"))  # the QLAE settings
    config.data.name = "shapes3d"
    config.model.quantization_weight = 0.01  # the authors' weight here (dSprites: 0.001)
    config.model.commitment_weight = 0.01
    config.model.latent_dim = 12
    return config
