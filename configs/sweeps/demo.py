"""The demo study: QLAE, beta-VAE and AE on procedural dSprites (seed 0; add seeds to SEEDS).

    disentangle demo                      # CPU-sized steps, evaluation, traversals, report
    disentangle sweep configs/sweeps/demo.py train.steps=5000 --workdir runs/demo5k

CPU-scale choice: the VAE and AE run at learning rate 5e-4 instead of the
disentanglement_lib 1e-4, so that a few thousand steps show learnt structure; QLAE keeps
its paper's 1e-3. ``disentangle demo`` sets the step count (experiments/commands/demo.py).
"""

SEEDS = (0,)
MEMBERS = (
    ("qlae", {}),
    ("beta_vae", {"train.learning_rate": 5e-4}),
    ("ae", {"train.learning_rate": 5e-4}),
)


def get_sweep():
    return [{"name": f"{method}-seed{s}", "config": f"configs/{method}_dsprites.py",
             "train.seed": s, **extra} for method, extra in MEMBERS for s in SEEDS]
