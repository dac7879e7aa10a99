"""Train-step rate of each network of the QLAE-vs-VAE study: conv64 against hsu_style.

    .venv/bin/python benchmarks/network_step.py --json benchmarks/results/network_step.json

For each method (``configs/METHOD_dsprites.py``) and network, the project's jitted train
step (``disentangle.train.make_train_step``, exactly what a run executes) at batch 64 on
64x64x1 dSprites batches, with the backend's layers (``phase`` on CPU) and, with
``--stock``, the stock flax layers too. Variants run interleaved (benchmarks/_common.py),
so load from other users hits all alike. Reported: median steps/s over repeats, and the
ratio hsu_style / conv64 per method (median of per-repeat ratios). The study's step budget
(experiments/qlae_vs_vae.py, --cpu) is chosen from these rates.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import add_xla_process_arg, apply_xla_process_flags, interleaved, median_ratio  # noqa: E402,I001
from _common import write_json  # noqa: E402
from train_step import JaxRunner, make_config, stock  # noqa: E402

from disentangle import train as train_lib  # noqa: E402
from disentangle.data import get_dataset  # noqa: E402

NETWORKS = ("conv64", "hsu_style")


def bench(args) -> dict:
    dataset = get_dataset("dsprites")
    rng = np.random.default_rng(0)
    batches = np.stack([dataset.sample(args.batch_size, rng)[1] for _ in range(4)])
    runners = {}
    for method in args.methods.split(","):
        for network in NETWORKS:
            config = make_config(method, args.batch_size)
            config.model.network = network
            s = train_lib.setup(config, dataset)
            runners[f"{method}/{network}"] = JaxRunner(s, batches).run
            if args.stock:
                runners[f"{method}/{network}/stock"] = JaxRunner(stock(s), batches).run
    times = interleaved(runners, args.repeats, dict.fromkeys(runners, args.steps),
                        warmup=args.warmup)
    rates = {n: [args.steps / t for t in ts] for n, ts in times.items()}
    out = {"steps_per_sec": {n: statistics.median(v) for n, v in rates.items()},
           "steps_per_sec_all": rates}
    for method in args.methods.split(","):
        out[f"{method}/ratio_hsu_style_over_conv64"] = median_ratio(
            rates[f"{method}/hsu_style"], rates[f"{method}/conv64"])
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write results here")
    p.add_argument("--methods", default="qlae,beta_vae")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=5, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--stock", action="store_true", help="also the stock flax layers")
    add_xla_process_arg(p)
    args = p.parse_args(argv)
    xla_flags = apply_xla_process_flags(args)
    results = {"benchmark": "network_step", "batch_size": args.batch_size,
               "steps_per_repeat": args.steps, "repeats": args.repeats,
               "cpu_count": os.cpu_count(), "load_average_start": os.getloadavg(),
               "jax": jax.__version__, "platform": platform.platform(),
               "xla_flags": xla_flags, **bench(args),
               "load_average_end": os.getloadavg()}
    for name, rate in results["steps_per_sec"].items():
        print(f"{name}: {rate:.2f} steps/s ({rate * args.batch_size:.0f} img/s)")
    for key, value in results.items():
        if key.endswith("ratio_hsu_style_over_conv64"):
            print(f"{key}: {value:.3f}")
    write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
