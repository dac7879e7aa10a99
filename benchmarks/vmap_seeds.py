"""S seeds as one program against S sequential runs (steady-state step rate).

    .venv/bin/python benchmarks/vmap_seeds.py --json benchmarks/results/vmap_seeds.json

The conv64 beta-VAE (batch 64, dSprites rendered inside the step, as in training) with
``train.num_seeds=S``: ``vmap`` is the step of ``disentangle.train.make_members_step``,
which advances all S members as one ``jax.vmap``-ed program (what ``train.num_seeds``
runs); the ``sequential`` baseline runs the ordinary single-run step
(``make_train_step``) of each member in turn (what S separate runs do, without their
compile and checkpoint time). After warm-up, each repeat
times ``--steps`` steps of every variant, in alternating order; reported are
member-images/s (S x batch x steps / time) and the median per-repeat speed-ups.
``--scaling`` also times the sequential runs in a subprocess pinned to one core: how much
of the second core a single run already uses, i.e. what is left for batching to win.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
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
from disentangle import xla_options  # noqa: E402
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
    p.add_argument("--variants", default="vmap,sequential",
                   help="comma-separated subset of vmap, sequential")
    p.add_argument("--cores", type=int, help="pin this process to its first N cores")
    p.add_argument("--scaling", action="store_true",
                   help="also time the sequential runs pinned to one core (subprocess)")
    add_xla_process_arg(p)
    args = p.parse_args(argv)
    xla_flags = apply_xla_process_flags(args)
    load_start = os.getloadavg()
    if args.cores:  # before the first jax.devices(): XLA sizes its thread pool from this
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.cores])
    variants = args.variants.split(",")

    config = base_config(args.method)
    config.model.beta = 4.0
    config.train.batch_size = args.batch_size
    config.train.num_seeds = args.seeds
    config.model.network = args.network
    members = train_lib.member_configs(config)
    dataset = get_dataset("dsprites")
    setups = [train_lib.setup(m, dataset) for m in members.values()]
    updates = setups[0].schedule(1)
    copy = lambda t: jax.tree.map(jnp.copy, t)  # the steps donate their state
    n = len(setups)

    # One program for all members, vmapped.
    programs = {"vmap": train_lib.make_members_step(setups, updates)} if "vmap" in variants else {}
    states = {how: list(copy(train_lib.members_state(setups))) for how in programs}
    # Sequential: each member's own single-run step.
    singles = [train_lib.make_train_step(s, updates) for s in setups]
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
    runners = {how: members_runner(how) for how in programs}
    if "sequential" in variants:
        runners["sequential"] = run_sequential
    times = interleaved(runners, args.repeats, dict.fromkeys(runners, args.steps))
    ips = {k: [n * args.batch_size * args.steps / t for t in v] for k, v in times.items()}
    result = {
        "benchmark": "vmap_seeds", "method": args.method, "network": args.network, "seeds": n,
        "xla_flags": xla_flags,
        "batch_size": args.batch_size, "steps_per_repeat": args.steps, "repeats": args.repeats,
        "cpu_count": os.cpu_count(), "cores_used": len(os.sched_getaffinity(0)),
        "jax": jax.__version__, "compiler_options": xla_options.compiler_options(),
        "devices": [str(d) for d in jax.devices()],
        "member_images_per_sec": {k: statistics.median(v) for k, v in ips.items()},
        "member_images_per_sec_all": ips,
        **{f"speedup_{how}_over_sequential": median_ratio(ips[how], ips["sequential"])
           for how in programs if "sequential" in ips},
        "compile_seconds": compile_s,
        "load_average_start": load_start, "load_average_end": os.getloadavg(),
    }
    rate = result["member_images_per_sec"]
    if args.scaling and "sequential" in rate:
        result["sequential_one_core"] = _one_core_rate(argv or sys.argv[1:])
        result["two_core_scaling_of_a_single_run"] = (
            rate["sequential"] / result["sequential_one_core"])
    print(f"{args.network} S={n}: " + ", ".join(f"{k} {v:.0f}" for k, v in rate.items())
          + " member-img/s; "
          + "".join(f"speed-up {how} {result[f'speedup_{how}_over_sequential']:.2f}x; "
                    for how in programs if f"speedup_{how}_over_sequential" in result)
          + "compile " + ", ".join(f"{k} {v:.1f} s" for k, v in compile_s.items())
          + (f"; a single run on 2 cores is {result['two_core_scaling_of_a_single_run']:.2f}x "
             f"its rate on 1 core" if args.scaling else ""))
    write_json(args.json, result)
    return 0


def _one_core_rate(argv: list[str]) -> float:
    """Member-images/s of the sequential runs in a subprocess pinned to one core."""
    keep = [a for a in argv if a != "--scaling"]
    if "--json" in keep:
        i = keep.index("--json")
        del keep[i:i + 2]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "one_core.json"
        subprocess.run([sys.executable, __file__, *keep, "--cores", "1",
                        "--variants", "sequential", "--json", str(out)], check=True)
        return json.loads(out.read_text())["member_images_per_sec"]["sequential"]


if __name__ == "__main__":
    raise SystemExit(main())
