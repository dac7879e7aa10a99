"""Input pipeline throughput against the training step rate.

    .venv/bin/python benchmarks/data.py --json benchmarks/results/data.json

Measures, in one process and interleaved: batches/s of procedural dSprites rendered in jit
(``dataset.device_sampler()``, the path training uses for procedural data), batches/s of
the host path (``disentangle.train.HostBatches``: ``dataset.sample`` on a prefetch thread,
used for datasets without a device sampler), and steps/s of the conv64 beta-VAE train step
on a given batch (batch 64). The pipeline never limits training when its rate is well
above the step rate (goal: 10x). Note that the device sampler runs inside the jitted step,
so its time adds to the step rather than overlapping it; the ratio says how much.
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
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import (  # noqa: E402
    add_xla_process_arg,
    apply_xla_process_flags,
    interleaved,
    median_ratio,
    write_json,
)

from disentangle import train as train_lib  # noqa: E402
from disentangle.config import base_config  # noqa: E402
from disentangle.data import get_dataset  # noqa: E402
from disentangle.methods import Batch  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write results here")
    p.add_argument("--dataset", default="dsprites")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--batches", type=int, default=20, help="batches per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    add_xla_process_arg(p)
    args = p.parse_args(argv)
    xla_flags = apply_xla_process_flags(args)
    bs = args.batch_size
    dataset = get_dataset(args.dataset)
    sampler = dataset.device_sampler()
    render = jax.jit(lambda key: sampler(key, bs)[1])
    host = train_lib.HostBatches(dataset, bs, seed=0)

    config = base_config("beta_vae", args.dataset)
    config.model.beta = 4.0
    config.train.batch_size = bs
    s = train_lib.setup(config, dataset)
    step_fn = train_lib.make_train_step(s, s.schedule(1))
    state = [s.params, s.opt_state, jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32)]
    f0, x0 = dataset.sample(bs, np.random.default_rng(0))
    batch0 = Batch(jnp.asarray(x0), jnp.asarray(f0, jnp.int32))
    counter = {"t": 0, "host": 0}

    def run_device(k):
        start = time.perf_counter()
        for _ in range(k):
            counter["t"] += 1
            x = render(jax.random.key(counter["t"]))
        jax.block_until_ready(x)
        return time.perf_counter() - start

    def run_host(k):
        start = time.perf_counter()
        for _ in range(k):
            counter["host"] += 1
            x = jnp.asarray(host.get(counter["host"], 10**9).x)
        jax.block_until_ready(x)
        return time.perf_counter() - start

    def run_step(k):
        start = time.perf_counter()
        for _ in range(k):
            counter["t"] += 1
            *state[:], logs = step_fn(*state, jnp.asarray(counter["t"], jnp.int32), batch0)
        jax.block_until_ready((state, logs))
        return time.perf_counter() - start

    runners = {"device_sampler": run_device, "host_batches": run_host, "train_step": run_step}
    work = {"device_sampler": args.batches, "host_batches": args.batches,
            "train_step": max(2, args.batches // 4)}
    seconds = interleaved(runners, args.repeats, work)
    times = {name: [work[name] / t for t in ts] for name, ts in seconds.items()}  # per second
    rate = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "benchmark": "data", "dataset": args.dataset, "batch_size": bs, "xla_flags": xla_flags,
        "cpu_count": os.cpu_count(), "jax": jax.__version__,
        "batches_per_sec": rate, "batches_per_sec_all": times,
        "device_sampler_over_step": median_ratio(times["device_sampler"], times["train_step"]),
        "host_batches_over_step": median_ratio(times["host_batches"], times["train_step"]),
        "load_average_end": os.getloadavg(),
    }
    print(f"device sampler {rate['device_sampler']:.1f}, host {rate['host_batches']:.1f} "
          f"batches/s; train step {rate['train_step']:.2f} steps/s; ratios "
          f"{result['device_sampler_over_step']:.1f}x, {result['host_batches_over_step']:.1f}x")
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
