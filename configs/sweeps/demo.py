"""The demo study: QLAE, beta-VAE and AE on procedural dSprites, two seeds each.

    disentangle sweep configs/sweeps/demo.py --workdir runs/demo --workers 2

Steps are CPU-sized (``disentangle demo`` sets them); see experiments/commands/demo.py.
"""

METHODS = ("qlae_dsprites", "beta_vae_dsprites", "ae_dsprites")
SEEDS = (0, 1)


def get_sweep():
    return [{"config": f"configs/{m}.py", "train.seed": s} for m in METHODS for s in SEEDS]
