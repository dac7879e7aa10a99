"""Potential-flow latent traversals (Song et al., ICML 2023) on a trained run's decoder.

    disentangle train configs/potential_flow.py model.base_run=runs/beta_vae_dsprites \
        --workdir runs/beta_vae_dsprites/flow
    disentangle traverse runs/beta_vae_dsprites --method flow     # trains RUN/flow, then draws

``model.base_run`` names the trained run whose frozen decoder G the K potentials traverse;
``data.name`` must be that run's dataset (``disentangle traverse`` copies it). Settings
from the paper: K = 16, H = 10 (flows trained over H/2 = 5 steps, traversals two-sided),
Adam 1e-4, batch 32, and the authors' classifier pairs (two consecutive steps, mirrored;
``model.classifier_pairs=endpoints`` shows (G(z_0), G(z_T)) instead). Start codes are the
base run's encodings of the batch (``model.start=prior`` draws N(0, I) as the authors do
for their VAEs).
Runtime (conv64 dSprites backbone, K = 16): about 0.5-1 s per step on 2 CPU cores, so
5,000 steps take 40-80 min; a few minutes on one GPU (estimated, not measured).
A good result: the pair classifier's ``accuracy`` in metrics.jsonl well above 1/K (the
directions are distinct; 0.9+ on dSprites backbones), ``pde`` and ``ic`` small, and
``latent_moved`` clearly above 0 (no flow stalls).

Tiny (tests, kill/resume checks), on a tiny base run:
    model.base_run=RUN model.num_potentials=2 model.num_steps=4 model.hidden=8
    model.time_features=4 model.classifier_network=mlp_small model.laplacian=hutchinson
    model.num_probes=1 train.batch_size=4 train.steps=4 train.checkpoint_every=2
    train.log_every=1 (and data.name of the base run)
"""

import ml_collections

from disentangle.config import base_config


def get_config():
    config = base_config("potential_flow")
    config.model = ml_collections.ConfigDict({
        "name": "potential_flow",
        "base_run": "",  # the trained run whose decoder is traversed (required)
        "num_potentials": 16,  # K
        "num_steps": 10,  # H: traversal frames H + 1; flows trained over H / 2 steps
        "hidden": 128,
        "time_features": 16,
        "output_scale": 1.0,  # A in u = A tanh(.)
        "init_speed": 1.0,
        "classifier_network": "",  # '' = conv64 for 64x64 images, mlp_small otherwise
        "classifier_pairs": "consecutive",  # or 'endpoints'
        "start": "encoded",  # or 'prior'
        "laplacian": "exact",  # or 'hutchinson'
        "num_probes": 4,  # Hutchinson probes per point
        "change": "jvp",  # or 'difference'
        "change_eps": 1e-3,
        "weight_classification": 1.0,
        "weight_pde": 1.0,
        "weight_ic": 1.0,
        "weight_change": 0.1,
    })
    config.train.steps = 5000
    config.train.batch_size = 32
    config.train.learning_rate = 1e-4
    config.train.log_every = 50
    config.train.checkpoint_every = 500
    return config
