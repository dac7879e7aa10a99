"""beta-VAE (beta = 3) on Shapes3D, the QLAE paper's baseline setting.

    disentangle data prepare shapes3d --from PATH/TO/3dshapes.h5
    disentangle train configs/beta_vae_shapes3d.py --workdir runs/beta_vae_shapes3d

Hsu et al. (2023) write the loss as ``BCE_mean + (L / pixels) * beta * KL_mean``; the
workbench's beta-VAE sums the reconstruction over pixels and the KL over latents, which
is that objective times the number of pixels (disentangle/methods/vae/beta_vae.py), so
beta = 3 means the same trade-off and no extra scaling is needed (Adam is invariant to a
constant loss scale up to its epsilon). 12 latents as the paper's QLAE (2 x 6 factors).
The optimizer is the workbench's beta-VAE default (Adam 1e-4, disentanglement_lib);
PAPERS.md records only beta for the baseline. Runtime: 30k steps at batch 64, about
45-60 min on 2 CPU cores, a few minutes on one modern GPU (estimated, not measured).
A good result: sharp reconstructions of floor, wall and object colours, a KL of a few
tens of nats, MIG above 0.1 and InfoM/InfoC below configs/qlae_shapes3d.py's.
"""

from disentangle.config import base_config


def get_config():
    config = base_config("beta_vae", "shapes3d")
    config.model.latent_dim = 12
    config.model.beta = 3.0
    return config
