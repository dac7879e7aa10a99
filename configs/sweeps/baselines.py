"""The baseline comparison of Locatello et al. (2019, 2020) on procedural dSprites: the
seven image methods (beta-VAE, beta-TCVAE, FactorVAE, DIP-VAE-I, DIP-VAE-II, AnnealedVAE,
and the weakly-supervised Ada-GVAE) and QLAE, three seeds each, every method at its config
file's settings (disentanglement_lib's: Adam 1e-4, batch 64, z = 10; QLAE as its paper).

    disentangle sweep configs/sweeps/baselines.py --workdir runs/baselines [--workers 2]
    disentangle report runs/baselines --title "Baselines on procedural dSprites"

The report groups the seeds of a method (mean +- std) and names which method led on
which metric. A quick check that everything runs (minutes, meaningless scores):

    disentangle sweep configs/sweeps/baselines.py train.steps=50 train.batch_size=16 \\
        eval.num_samples=1000 --workdir runs/baselines_check

Runtime at the configs' 30k steps on 2 CPU cores: about 45 min per beta-VAE run
(configs/beta_vae_dsprites.py) and, from the measured step-time ratios
(benchmarks/results/baselines_step.json), about 85 min per FactorVAE, 55 per DIP-VAE,
45 per AnnealedVAE and 100 per Ada-GVAE run: about 1 day for the 24 runs; a few minutes
per run on one modern GPU (estimated).
"""

SEEDS = (0, 1, 2)
METHODS = ("beta_vae", "beta_tcvae", "factor_vae", "dip_vae_i", "dip_vae_ii", "annealed_vae",
           "ada_gvae", "qlae")


def get_sweep():
    return [{"name": f"{method}-seed{s}", "config": f"configs/{method}_dsprites.py",
             "train.seed": s} for method in METHODS for s in SEEDS]
