"""beta-VAE (beta = 0.1) on MPI3D, the QLAE paper's baseline setting.

    disentangle data prepare mpi3d_toy --from PATH/TO/mpi3d_toy.npz
    disentangle train configs/beta_vae_mpi3d.py --workdir runs/beta_vae_mpi3d

Hsu et al. (2023) write the loss as ``BCE_mean + (L / pixels) * beta * KL_mean``; the
workbench's beta-VAE sums the reconstruction over pixels and the KL over latents, which
is that objective times the number of pixels (disentangle/methods/vae/beta_vae.py), so
beta = 0.1 means the same trade-off and no extra scaling is needed (Adam is invariant to
a constant loss scale up to its epsilon). 14 latents as the paper's QLAE (2 x 7
factors). ``data.name=mpi3d_realistic`` / ``mpi3d_real`` for the other variants. The
optimizer is the workbench's beta-VAE default (Adam 1e-4, disentanglement_lib); PAPERS.md
records only beta for the baseline. Runtime: 30k steps at batch 64, about 45-60 min on
2 CPU cores, a few minutes on one modern GPU (estimated, not measured). A good result:
the small beta keeps reconstructions sharp (the object is a few pixels), many active
latents, InfoM/InfoC below configs/qlae_mpi3d.py's.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("beta_vae", "mpi3d_toy")
    config.model.latent_dim = 14
    config.model.beta = 0.1
    return config
