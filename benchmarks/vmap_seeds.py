"""S seeds as one program against S sequential runs (steady-state step rate).

    .venv/bin/python benchmarks/vmap_seeds.py --json benchmarks/results/vmap_seeds.json

The conv64 beta-VAE (batch 64, dSprites rendered inside the step, as in training) with
``train.num_seeds=S``: the step of ``disentangle.train.make_members_step`` advances all S
members at once, executed ``vmap`` (one batched program) and ``unroll`` (the members'
steps side by side in one program; ``train.members_exec=auto`` picks it on CPU); the
sequential baseline runs the ordinary single-run step of each member in turn (what S
separate runs do, without their compile and checkpoint time). After warm-up, each repeat
times ``--steps`` steps of every variant, in alternating order; reported are
member-images/s (S x batch x steps / time) and the median per-repeat speed-ups.
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

from _common import write_json  # noqa: E402

from disentangle import train as train_lib  # noqa: E402
from disentangle.config import base_config  # noqa: E402
from disentangle.data import get_dataset  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write results here")
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--method", default="beta_vae")
    p.add_argument("--network", default="conv64", help="model.network: conv64, mlp, mlp_small")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--steps", type=int, default=10, help="steps per timed repeat")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)

    config = base_config(args.method)
    config.model.beta = 4.0
    config.train.batch_size = args.batch_size
    config.train.num_seeds = args.seeds
    config.model.network = args.network
    members = train_lib.member_configs(config)
    dataset = get_dataset("dsprites")
    setups = [train_lib.setup(m, dataset) for m in members.values()]
    copy = lambda t: jax.tree.map(jnp.copy, t)
    n = len(setups)

    # One program for all members, vmapped and unrolled.
    programs = {how: train_lib.make_members_step(setups, how=how) for how in ("vmap", "unroll")}
    states = {how: [train_lib._stack([copy(s.params) for s in setups]),
                    train_lib._stack([copy(s.opt_state) for s in setups]),
                    jnp.full((n,), train_lib.NO_BAD_STEP, jnp.int32)] for how in programs}
    # Sequential: each member's own single-run step.
    singles = [train_lib.make_train_step(s) for s in setups]
    sstate = [[copy(s.params), copy(s.opt_state), jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32)]
              for s in setups]
    counter = {"t": 0}

    def members_runner(how):
        step_fn, state = programs[how], states[how]

        def run(steps):
            start = time.perf_counter()
            for _ in range(steps):
                counter["t"] += 1
                *state[:], logs = step_fn(*state, jnp.asarray(counter["t"], jnp.int32))
            jax.block_until_ready((state, logs))
            return time.perf_counter() - start
        return run

    def run_sequential(steps):
        start = time.perf_counter()
        for step_fn, state in zip(singles, sstate):
            for _ in range(steps):
                counter["t"] += 1
                *state[:], logs = step_fn(*state, jnp.asarray(counter["t"], jnp.int32))
            jax.block_until_ready((state, logs))
        return time.perf_counter() - start

    def compile_seconds(step_fn, state) -> float:
        start = time.perf_counter()
        step_fn.lower(*state, jnp.asarray(0, jnp.int32)).compile()
        return time.perf_counter() - start

    # compile time of each form (S members in one program vs one member's step)
    compile_s = {how: compile_seconds(programs[how], states[how]) for how in programs}
    compile_s["sequential (one member)"] = compile_seconds(singles[0], sstate[0])
    runners = {"vmap": members_runner("vmap"), "unroll": members_runner("unroll"),
               "sequential": run_sequential}
    for run in runners.values():
        run(2)
    times = {k: [] for k in runners}
    for r in range(args.repeats):
        for name in (list(runners) if r % 2 == 0 else list(runners)[::-1]):
            times[name].append(runners[name](args.steps))
    ips = {k: [n * args.batch_size * args.steps / t for t in v] for k, v in times.items()}
    result = {
        "benchmark": "vmap_seeds", "method": args.method, "network": args.network, "seeds": n,
        "batch_size": args.batch_size, "steps_per_repeat": args.steps, "repeats": args.repeats,
        "cpu_count": os.cpu_count(), "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
        "member_images_per_sec": {k: statistics.median(v) for k, v in ips.items()},
        "member_images_per_sec_all": ips,
        **{f"speedup_{how}_over_sequential": statistics.median(
            v / s for v, s in zip(ips[how], ips["sequential"])) for how in programs},
        "members_exec_auto": train_lib.resolve_members_exec("auto"),
        "compile_seconds": compile_s,
        "load_average_end": os.getloadavg(),
    }
    rate = result["member_images_per_sec"]
    print(f"{args.network} S={n}: vmap {rate['vmap']:.0f}, unroll {rate['unroll']:.0f}, "
          f"sequential {rate['sequential']:.0f} member-img/s; speed-up vmap "
          f"{result['speedup_vmap_over_sequential']:.2f}x, unroll "
          f"{result['speedup_unroll_over_sequential']:.2f}x; compile "
          + ", ".join(f"{k} {v:.1f} s" for k, v in compile_s.items()))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
