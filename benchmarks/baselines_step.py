"""Train-step time of the baselines relative to the beta-VAE's (the configs' runtimes).

    .venv/bin/python benchmarks/baselines_step.py --json benchmarks/results/baselines_step.json

Each method's ``configs/METHOD_dsprites.py`` (conv64, batch 64, dSprites rendered inside
the step as in training; FactorVAE's step includes its discriminator update, Ada-GVAE's
encodes and decodes two images per item) through ``disentangle.train.make_train_step``.
After warm-up, each repeat times ``--steps`` steps of every method back to back, in an
order that alternates between repeats; reported: the median per-repeat ratio of each
method's step time to the beta-VAE's, and the seconds per step.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    add_xla_process_arg,
    apply_xla_process_flags,
    interleaved,
    median_ratio,
    write_json,
)

from disentangle import train as train_lib  # noqa: E402
from disentangle.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("beta_vae", "factor_vae", "dip_vae_i", "dip_vae_ii", "annealed_vae", "ada_gvae")


def step_runner(method: str):
    """``run(n) -> seconds`` for n training steps of the method's dSprites config."""
    s = train_lib.setup(load_config(ROOT / f"configs/{method}_dsprites.py"))
    step_fn = train_lib.make_train_step(s, tuple(s.schedule(1)))
    state = (s.params, s.opt_state, jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32))
    step = 0

    def run(n: int) -> float:
        nonlocal state, step
        start = time.perf_counter()
        for _ in range(n):
            step += 1
            *state, logs = step_fn(*state, jnp.asarray(step, jnp.int32))
        jax.block_until_ready(logs)
        return time.perf_counter() - start

    return run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=4, help="steps per method per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", default=None, help="write the result here")
    add_xla_process_arg(p)
    args = p.parse_args()
    xla_flags = apply_xla_process_flags(args)
    runners = {m: step_runner(m) for m in METHODS}
    seconds = interleaved(runners, args.repeats, dict.fromkeys(METHODS, args.steps))
    result = {
        "benchmark": "baselines_step", "batch_size": 64, "network": "conv64",
        "steps_per_repeat": args.steps, "repeats": args.repeats, "cpu_count": os.cpu_count(),
        "xla_flags": xla_flags, "jax": jax.__version__,
        "step_time_ratio_to_beta_vae": {m: median_ratio(seconds[m], seconds["beta_vae"])
                                        for m in METHODS},
        "seconds_per_step": {m: statistics.median(v) / args.steps for m, v in seconds.items()},
        "seconds_all": seconds,
    }
    for m in METHODS:
        print(f"{m:<14} {result['seconds_per_step'][m]:.3f} s/step, "
              f"{result['step_time_ratio_to_beta_vae'][m]:.2f}x beta-VAE")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
