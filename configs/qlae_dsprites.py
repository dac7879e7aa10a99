"""QLAE on procedural dSprites: 2 x 5 factors = 10 latents of 10 codebook values each.

    disentangle train configs/qlae_dsprites.py --workdir runs/qlae_dsprites

Settings from Hsu et al. (2023), as in the authors' dSprites config: AdamW lr 1e-3, weight
decay 0.1 on weights only, element-wise gradient clip 1 on the decayed weights only
(``train.clip_scope='decayed'``; biases and codebooks unclipped), quantization and
commitment weights 0.001 (0.01 on Shapes3D, MPI3D, Falcor3D, Isaac3D:
configs/qlae_shapes3d.py, configs/qlae_mpi3d.py). The paper trains 200k steps at batch
128 with its own networks (``model.network='hsu_style'``); this config keeps conv64 and
a CPU-sized 30k steps at batch 64.
Runtime: about 45 min on 2 CPU cores, about 2 min on one modern GPU (estimated).
A good result: reconstruction below ~60 nats and InfoM/InfoC above the VAEs'
(InfoM ~0.6+, InfoC ~0.5+ on dSprites-like data).
"""

from disentangle.config import base_config


def get_config():
    config = base_config("qlae")
    config.model.values_per_latent = 10
    config.model.quantization_weight = 0.001
    config.model.commitment_weight = 0.001
    config.train.learning_rate = 1e-3
    config.train.optimizer = "adamw"
    config.train.weight_decay = 0.1
    config.train.clip_value = 1.0
    config.train.clip_scope = "decayed"
    return config
