"""Where a train step's time goes: per-XLA-op time of the project's jitted step.

    .venv/bin/python benchmarks/profile_step.py --json benchmarks/results/profile_step.json
    .venv/bin/python benchmarks/profile_step.py --naive     # plain nnx.Conv / ConvTranspose

Traces ``--steps`` steps of ``disentangle.train.make_train_step`` (conv64 at batch 64, after
warm-up) with ``jax.profiler.trace(create_perfetto_trace=True)``, sums the duration of every
op of the step's HLO module and prints ms per step: the total over ops, per op kind
(``ynn_fusion``, ``transpose_copy_fusion``, ...) and the largest ops with their HLO line
(shape and the JAX operation that produced it). Op times overlap when XLA runs independent
ops concurrently, so the total is op time, not wall time (also recorded, traced). XLA's own
(Eigen) convolutions, used under ``disentangle.xla_options``, run asynchronously in the
intra-op pool and show only their dispatch time here. ``--naive`` compiles with XLA's
default options. It also times, without the profiler, the forward and gradient of the
loss, the encoder and the decoder alone (``pass_ms``). How this guided the encoder and
decoder gradients: docs/performance.md.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import gzip
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _common import add_xla_process_arg, apply_xla_process_flags, write_json  # noqa: E402
from train_step import JaxRunner, make_config, stock  # noqa: E402

from disentangle import train as train_lib  # noqa: E402
from disentangle import xla_options  # noqa: E402
from disentangle.data import get_dataset  # noqa: E402
from disentangle.methods import Batch  # noqa: E402


def op_times(trace_dir: str, module: str) -> dict[str, float]:
    """Total microseconds per HLO op of ``module`` in the perfetto trace under ``trace_dir``."""
    (path,) = Path(trace_dir).rglob("perfetto_trace.json.gz")
    trace = json.loads(gzip.decompress(path.read_bytes()))
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    total: dict[str, float] = collections.defaultdict(float)
    for e in events:
        args = e.get("args") or {}
        if e.get("ph") == "X" and args.get("hlo_module") == module and "hlo_op" in args:
            total[args["hlo_op"]] += float(e["dur"])
    return total


def pass_times(s: train_lib.Setup, x: jax.Array, repeats: int = 30) -> dict[str, float]:
    """Wall ms of the forward and the gradient (w.r.t. parameters) of the loss, the encoder
    and the decoder alone, each jitted like the train step (no profiler attached)."""
    key, z = jax.random.key(0), jnp.ones((x.shape[0], s.config.model.latent_dim))

    def part(fn):
        return lambda p, inp: jnp.sum(fn(s.model(p), inp))

    parts = {"loss": (part(lambda m, x: m.loss(Batch(x), key)[0]), x),
             "encoder": (part(lambda m, x: m.encoder(x)), x),
             "decoder": (part(lambda m, z: m.decoder(z)), z)}
    out = {}
    for name, (fn, inp) in parts.items():
        for kind, f in (("forward", fn), ("gradient", jax.grad(fn))):
            f = xla_options.jit(f)
            jax.block_until_ready(f(s.params, inp))
            start = time.perf_counter()
            for _ in range(repeats):
                r = f(s.params, inp)
            jax.block_until_ready(r)
            out[f"{name}_{kind}"] = 1e3 * (time.perf_counter() - start) / repeats
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write results here")
    p.add_argument("--method", default="beta_vae")
    p.add_argument("--naive", action="store_true",
                   help="stock nnx.Conv / nnx.ConvTranspose layers and XLA's default options "
                        "(train_step.py's jax_lax)")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--top", type=int, default=15)
    add_xla_process_arg(p)
    args = p.parse_args(argv)
    xla_flags = apply_xla_process_flags(args)

    config = make_config(args.method)
    dataset = get_dataset("dsprites")
    rng = np.random.default_rng(0)
    batches = np.stack([dataset.sample(config.train.batch_size, rng)[1] for _ in range(4)])
    s = train_lib.setup(config, dataset)
    runner = JaxRunner(stock(s), batches, xla_defaults=True) if args.naive else JaxRunner(
        s, batches)
    runner.run(3)  # compile, warm up
    with tempfile.TemporaryDirectory() as tmp:
        with jax.profiler.trace(tmp, create_perfetto_trace=True):
            wall = runner.run(args.steps)
        per_op = {k: v / args.steps / 1e3 for k, v in op_times(tmp, "jit_step_fn").items()}
    with xla_options.xla_defaults() if args.naive else contextlib.nullcontext():
        hlo = runner.step_fn.lower(runner.params, runner.opt_state, runner.bad,
                                   jnp.asarray(1, jnp.int32),
                                   runner.batches[0]).compile().as_text()
    kinds: dict[str, float] = collections.defaultdict(float)
    for name, ms in per_op.items():
        kinds[re.sub(r"[._]\d+$", "", name)] += ms
    top = sorted(per_op.items(), key=lambda kv: -kv[1])[:args.top]

    def describe(name: str) -> str:
        line = re.search(rf"^\s*(?:ROOT )?%{re.escape(name)} = (.*)$", hlo, re.M)
        if not line:
            return ""
        source = re.search(r'op_name="([^"]+)"', line.group(1))
        return f"{line.group(1).split()[0]} {source.group(1) if source else ''}".strip()

    result = {
        "benchmark": "profile_step", "method": args.method, "naive": args.naive,
        "xla_flags": xla_flags,
        "steps": args.steps, "load_average_start": os.getloadavg(), "jax": jax.__version__,
        "op_ms_per_step": sum(per_op.values()),
        "wall_ms_per_step_traced": 1e3 * wall / args.steps,
        "ms_per_step_by_kind": dict(sorted(kinds.items(), key=lambda kv: -kv[1])),
        "top_ops": [{"op": n, "ms_per_step": ms, "hlo": describe(n)} for n, ms in top],
    }
    if not args.naive:
        result["pass_ms"] = pass_times(s, runner.batches[0].x)
    print(f"{args.method}{' (naive)' if args.naive else ''}: "
          f"{result['op_ms_per_step']:.1f} ms of op time per step "
          f"({result['wall_ms_per_step_traced']:.1f} ms wall, traced)")
    for kind, ms in list(result["ms_per_step_by_kind"].items())[:8]:
        print(f"  {ms:7.2f} ms  {kind}")
    print("largest ops:")
    for row in result["top_ops"]:
        print(f"  {row['ms_per_step']:7.2f} ms  {row['op']}: {row['hlo'][:110]}")
    if "pass_ms" in result:
        print("forward / gradient, ms: " + ", ".join(
            f"{k} {v:.1f}" for k, v in result["pass_ms"].items()))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
