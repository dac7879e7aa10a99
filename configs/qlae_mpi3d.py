"""QLAE on MPI3D: 2 x 7 factors = 14 latents of 10 codebook values each.

    disentangle data prepare mpi3d_toy --from PATH/TO/mpi3d_toy.npz
    disentangle train configs/qlae_mpi3d.py --workdir runs/qlae_mpi3d

(``data.name=mpi3d_realistic`` or ``mpi3d_real`` for the other variants, prepared the
same way from their files.) Settings from Hsu et al. (2023) for MPI3D, those of
configs/qlae_dsprites.py but for the weight decay: AdamW lr 1e-3, weight decay 0.001 on
weights only (0.1 on the other datasets), element-wise gradient clip 1 (decayed weights
only), quantization and commitment weights 0.01 (the paper: 200k steps at batch 128 with its
own networks; here conv64 and a CPU-sized 30k at batch 64). Batches are read from the
prepared copy on the host (12.7 GB of images, not loaded). Runtime: about 45-60 min on
2 CPU cores, a few minutes on one modern GPU (estimated, not measured). A good result:
the object's position (horizontal/vertical axis) and camera height captured by separate
latents, InfoM/InfoC above configs/beta_vae_mpi3d.py's (the paper's ranking; MPI3D is
hard, the small object makes colour and shape difficult; no figure measured here).
"""

from pathlib import Path

from disentangle.config import load_config


def get_config():
    config = load_config(Path(__file__).with_name("qlae_dsprites.py"))  # the QLAE settings
    config.data.name = "mpi3d_toy"
    config.model.quantization_weight = 0.01  # the authors' weight here (dSprites: 0.001)
    config.model.commitment_weight = 0.01
    config.model.latent_dim = 14
    config.train.weight_decay = 0.001
    return config
