"""The QLAE paper's comparison (Hsu et al., 2023, Table 2 in spirit) on procedural dSprites.

QLAE vs AE (weight decay 0 and 1e-3), beta-VAE (beta 4) and beta-TCVAE (TC weight 6),
three seeds each, 30k steps at batch 64 (the configs' defaults):

    python -m experiments.qlae_vs_vae --full --out runs/qlae_vs_vae

15 runs of about 45 min each on 2 CPU cores (about 11 h; ~2 min each on a GPU).
"""

SEEDS = (0, 1, 2)


def get_sweep():
    members = []
    for s in SEEDS:
        members += [
            {"config": "configs/qlae_dsprites.py", "train.seed": s},
            {"config": "configs/beta_vae_dsprites.py", "train.seed": s},
            {"config": "configs/beta_tcvae_dsprites.py", "train.seed": s},
            {"config": "configs/ae_dsprites.py", "train.seed": s},
            {"config": "configs/ae_dsprites.py", "train.seed": s, "train.optimizer": "adamw",
             "train.weight_decay": 0.001},
        ]
    return members
