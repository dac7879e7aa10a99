"""The demo study: QLAE, beta-TCVAE and beta-VAE on the procedural ``colour_scene``, 2 seeds.

    disentangle demo                      # train, score, traverse, report (target < 10 min)
    disentangle sweep configs/sweeps/demo.py train.steps=20000 --workdir runs/demo20k

CPU-scale choices (docs/DESIGN.md, "The demo"): the 32x32 wall / floor / ball scene
(disentangle/data/procedural.py), whose five factors each trace a 1-D curve in pixel
space; the fully connected ``mlp_small`` networks; Adam at 1e-3 for every method (QLAE's
paper value; the VAEs' disentanglement_lib 1e-4 is too slow for a few thousand steps).
Every member is scored every ``eval.every`` steps, so the report shows the metrics rising.
``disentangle demo`` sets the step count (experiments/commands/demo.py).
"""

SEEDS = (0, 1)
COMMON = {"data.name": "colour_scene", "model.network": "mlp_small",
          "train.learning_rate": 1e-3, "eval.every_samples": 2000}
MEMBERS = (
    ("qlae", "configs/qlae_dsprites.py"),
    ("beta_tcvae", "configs/beta_tcvae_dsprites.py"),
    ("beta_vae", "configs/beta_vae_mlp_dsprites.py"),
)


def get_sweep():
    return [{"name": f"{method}-seed{s}", "config": path, "train.seed": s, **COMMON}
            for method, path in MEMBERS for s in SEEDS]
