"""The ground-truth factor predictor p(f_k | x) of a dataset (judges traversals and SCAN).

    disentangle train configs/factor_predictor.py data.name=dsprites \
        --workdir ~/.cache/disentangle/factor_predictor_dsprites

One softmax head per factor on a small stride-2 conv net (64x64 images) or ``mlp_small``;
cross-entropy summed over factors, held-out factor combinations (flat grid index = 0 mod 7)
weighted 0 so that the accuracy can be measured on unseen combinations; Adam with a
cosine decay from 1e-3 to 1e-5 over ``train.steps``. Usually trained through
``disentangle.methods.factor_predictor.model.train_factor_predictor(dataset,
cache_dir=...)``, which also writes the held-out accuracy (``accuracy.json``).
Runtime: 3,000 steps at batch 128 on dSprites took 17.5 min wall (552 CPU-s) on the shared
2-core machine under load; about a minute on one GPU (estimated).
A good result (dSprites, held-out): shape and scale exact accuracy ~0.99, positions ~0.9
exact and ~1.0 within +-1 class, orientation ~0.67 exact modulo the shape's symmetry
(docs/traversals.md).

Tiny (tests, kill/resume checks): train.steps=4 train.batch_size=8 train.checkpoint_every=2
train.log_every=1 (data.name=dsprites renders on the device; any dataset with factors works).
"""

import ml_collections

from disentangle.config import base_config


def get_config():
    config = base_config("factor_predictor")
    config.model = ml_collections.ConfigDict({"name": "factor_predictor"})
    config.train.steps = 3000
    config.train.batch_size = 128
    config.train.learning_rate = 1e-3
    config.train.log_every = 100
    config.train.checkpoint_every = 500
    return config
