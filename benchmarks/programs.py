"""The workbench's other programs: XLA compiler options against XLA's defaults.

    .venv/bin/python benchmarks/programs.py --json benchmarks/results/programs.json

The training steps of ``disentangle.train`` have always been compiled with
``disentangle.xla_options``; the evaluation and auxiliary programs (encoding for the
metrics, decoding traversals, reconstruction error, the DR-RFF and SCAN steps, the factor
predictor, potential flows) were plain ``nnx.jit`` until they moved to
``xla_options.jit_apply``. This times each program both ways in one process: ``options``
(as the workbench runs it) and ``xla_default`` (the same program under
``xla_options.xla_defaults()``, i.e. what ``nnx.jit`` compiles). After warm-up, each repeat
runs ``--calls`` calls of every variant back to back in alternating order; reported are
the median ms per call and the median per-repeat speed-up options / default.

Programs: ``encode`` (conv64 beta-VAE, ``represent``'s encoder pass, batch 256),
``decode`` (the traversals' decoder pass, batch 256), ``reconstruction_error`` (batch
250), ``dr_rff_train_step`` (the trainer's DR-RFF step after warm-up: a QG and an F
update, batch 64) and
``dts_train_step`` (the DTS LSTM VAE's train step, batch 64: an LSTM program, to check the
options do not cost recurrent models).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
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

from disentangle import xla_options  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _timed(call):
    """``xla_defaults -> runner`` for ``interleaved``: seconds for n calls of ``call``,
    under ``xla_options.xla_defaults()`` if asked."""
    def make(xla_defaults: bool):
        def run(n: int) -> float:
            with xla_options.xla_defaults() if xla_defaults else contextlib.nullcontext():
                start = time.perf_counter()
                for _ in range(n):
                    out = call()
                jax.block_until_ready(out)
                return time.perf_counter() - start
        return run
    return make


def conv64_programs(batch: int) -> dict:
    from disentangle import train as train_lib
    from disentangle.config import load_config
    from disentangle.data import get_dataset
    from disentangle.evaluation import _reconstruction_error
    from disentangle.represent import _encode
    from disentangle.traverse.common import _decode_images

    config = load_config(REPO / "configs" / "beta_vae_dsprites.py")
    dataset = get_dataset("dsprites")
    model = train_lib.setup(config, dataset).model()
    x = jnp.asarray(dataset.sample(batch, np.random.default_rng(0))[1])
    z = jax.random.normal(jax.random.key(0), (batch, config.model.latent_dim))
    return {"encode": _timed(lambda: _encode(model, x).mean),
            "decode": _timed(lambda: _decode_images(model, z)),
            "reconstruction_error": _timed(lambda: _reconstruction_error(model, x))}


def rff_program(batch: int) -> dict:
    """DR-RFF's trainer step after its warm-up (a QG and an F update; the batch drawn inside
    the step from the paper-sized signals of configs/dr_rff_zigbee.py, 20 captures per
    device), state carried from call to call as the trainer does."""
    from disentangle import train as train_lib
    from disentangle.config import load_config

    config = load_config(REPO / "configs" / "dr_rff_zigbee.py",
                         [f"train.batch_size={batch}", "data.options.n_per_device=20"])
    s = train_lib.setup(config)
    first = config.model.warmup_steps + 1
    program = train_lib.make_train_step(s, s.schedule(first))

    def make(xla_defaults: bool):
        copy = lambda t: jax.tree.map(jnp.copy, t)  # the step donates its state
        state = [copy(s.params), copy(s.opt_state),
                 jnp.asarray(train_lib.NO_BAD_STEP, jnp.int32)]
        step = [first]

        def run(n: int) -> float:
            with xla_options.xla_defaults() if xla_defaults else contextlib.nullcontext():
                start = time.perf_counter()
                for _ in range(n):
                    params, opt_state, bad, logs = program(*state,
                                                           jnp.asarray(step[0], jnp.int32))
                    state[:] = [params, opt_state, bad]
                    step[0] += 1
                jax.block_until_ready((state, logs))
                return time.perf_counter() - start
        return run
    return {"dr_rff_train_step": make}


def dts_program(batch: int) -> dict:
    """The DTS train step as the train-step benchmark runs it (``JaxRunner``: donated state
    carried from step to step, a fixed pool of batches)."""
    from train_step import JaxRunner

    from disentangle import train as train_lib
    from disentangle.config import load_config
    from disentangle.data import get_dataset

    config = load_config(REPO / "configs" / "dts_ts_factors.py")
    config.train.batch_size = batch
    dataset = get_dataset(config.data.name)
    s = train_lib.setup(config, dataset)
    rng = np.random.default_rng(0)
    batches = np.stack([dataset.sample(batch, rng)[1] for _ in range(4)])
    return {"dts_train_step": lambda xla_defaults: JaxRunner(
        s, batches, xla_defaults=xla_defaults).run}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write results here")
    p.add_argument("--calls", type=int, default=10, help="calls per timed repeat")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--batch-size", type=int, default=256, help="encode/decode batch")
    p.add_argument("--programs", default="conv64,rff,dts",
                   help="comma-separated subset of conv64 (encode, decode, "
                        "reconstruction_error), rff, dts")
    add_xla_process_arg(p)
    args = p.parse_args(argv)
    xla_flags = apply_xla_process_flags(args)

    groups = {"conv64": lambda: conv64_programs(args.batch_size),
              "rff": lambda: rff_program(64), "dts": lambda: dts_program(64)}
    chosen = args.programs.split(",")
    if unknown := set(chosen) - set(groups):
        p.error(f"--programs: unknown {sorted(unknown)}; accepted: {sorted(groups)}")
    programs = {k: v for group in chosen for k, v in groups[group]().items()}
    runners = {}
    for name, make_runner in programs.items():
        runners[f"{name}/options"] = make_runner(False)
        runners[f"{name}/xla_default"] = make_runner(True)
    seconds = interleaved(runners, args.repeats, dict.fromkeys(runners, args.calls))
    results = {}
    for name in programs:
        opt, ref = seconds[f"{name}/options"], seconds[f"{name}/xla_default"]
        results[name] = {
            "ms_options": 1e3 * statistics.median(opt) / args.calls,
            "ms_xla_default": 1e3 * statistics.median(ref) / args.calls,
            "speedup_options": median_ratio(ref, opt),  # time ratio = rate ratio inverted
        }
        r = results[name]
        print(f"{name:22s} options {r['ms_options']:7.2f} ms   XLA default "
              f"{r['ms_xla_default']:7.2f} ms   speed-up {r['speedup_options']:.2f}x",
              flush=True)
    write_json(args.json, {
        "benchmark": "programs", "calls_per_repeat": args.calls, "repeats": args.repeats,
        "batch_size": args.batch_size, "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(), "jax": jax.__version__,
        "platform": platform.platform(), "xla_flags": xla_flags,
        "compiler_options": xla_options.compiler_options(), "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
