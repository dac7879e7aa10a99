"""Peak host memory of preparing and training on a prepared dataset: Shapes3D's full size
against a small file. The figure must not grow with the dataset's size.

    .venv/bin/python benchmarks/data_memory.py --json benchmarks/results/data_memory.json

Writes a ``3dshapes.h5`` of Shapes3D's full size (480,000 x 64 x 64 x 3 uint8, 5.9 GB,
uncompressed, labels on the factor grid in row-major order) and a small one (every 97th
row: 4,949 rows, every factor value present) into ``--tmp``, prepares both with
``disentangle.data.prepared.prepare`` and trains the conv64 beta-VAE for ``--steps`` steps
at batch 64 on each (configs/beta_vae_shapes3d.py), reading batches on the host
(``data.options.device_max_bytes=0``, the path large datasets take), then draws
``--sample-batches`` factor-conditioned batches (``sample_observations_from_factors``).
Each phase runs in a fresh process that reports its peak resident set (``VmHWM``) and,
at the end, its anonymous and file-backed RSS.
Everything generated is deleted afterwards. Needs about 2 x 5.9 GB free in ``--tmp``; with
less, ``--rows`` is lowered to fit and the JSON says so.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_json  # noqa: E402

SIZES = (10, 10, 10, 8, 4, 15)
FULL_ROWS = int(np.prod(SIZES))  # 480,000
ROW_BYTES = 64 * 64 * 3
SMALL_STRIDE = 97  # prime: every factor value occurs among rows 0, 97, 194, ...


def grid_rows(n: int) -> np.ndarray:
    """All grid rows when ``n`` covers the grid, else every k-th row with k >= FULL / n
    coprime to 30 (the sizes' primes are 2, 3, 5), so every factor value occurs."""
    if n >= FULL_ROWS:
        return np.arange(FULL_ROWS)
    k = -(-FULL_ROWS // n)
    while math.gcd(k, 30) != 1:
        k += 1
    return np.arange(0, FULL_ROWS, k)


def status() -> dict[str, float]:
    """VmHWM (peak RSS), VmRSS, RssAnon, RssFile of this process in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


def write_source(path: Path, rows: np.ndarray, chunk: int = 4096) -> None:
    """A 3dshapes.h5 holding grid rows ``rows``: labels = the factor classes as floats
    (distinct values per factor), images a cheap deterministic pattern."""
    import h5py

    base = np.random.default_rng(0).integers(0, 256, (chunk, 64, 64, 3), dtype=np.uint8)
    with h5py.File(path, "w") as f:
        images = f.create_dataset("images", (len(rows), 64, 64, 3), np.uint8,
                                  chunks=(256, 64, 64, 3))
        labels = np.stack(np.unravel_index(rows, SIZES), axis=1).astype(np.float64)
        f.create_dataset("labels", data=labels)
        for start in range(0, len(rows), chunk):
            n = min(chunk, len(rows) - start)
            images[start:start + n] = base[:n] + np.uint8(start // chunk % 256)


def child(args) -> dict:
    """One measured phase, in its own process."""
    t0 = time.time()
    if args.child == "prepare":
        from disentangle.data.prepared import prepare

        prepare("shapes3d", args.source, out=args.out, allow_subset=True, force=True,
                log=lambda _: None)
        return {"seconds": time.time() - t0, **status()}
    from disentangle import xla_options

    xla_options.set_process_flags()
    from disentangle.config import load_config
    from disentangle.data import get_dataset
    from disentangle.train import train_and_evaluate

    config = load_config(Path(__file__).parents[1] / "configs" / "beta_vae_shapes3d.py")
    config.data.options = {"path": args.out, "device_max_bytes": 0}
    config.train.steps, config.train.batch_size = args.steps, 64
    config.train.log_every, config.train.checkpoint_every = args.steps, args.steps
    train_and_evaluate(config, args.workdir, progress=False)
    trained = {"train_seconds": time.time() - t0, **status()}
    ds = get_dataset("shapes3d", path=args.out, device_max_bytes=0)
    rng = np.random.default_rng(1)
    t1 = time.time()
    for _ in range(args.sample_batches):
        ds.sample_observations_from_factors(ds.sample_factors(64, rng), rng)
    return {"after_train": trained, "sample_seconds": time.time() - t1,
            "after_sampling": status()}


def run_child(phase: str, **paths) -> dict:
    argv = [sys.executable, __file__, "--child", phase]
    for key, value in paths.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    if done.returncode:
        raise RuntimeError(f"{phase} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write results here")
    p.add_argument("--tmp", default="/tmp", help="where the generated files go (deleted)")
    p.add_argument("--rows", type=int, default=FULL_ROWS, help="rows of the large file")
    p.add_argument("--steps", type=int, default=300, help="training steps per dataset")
    p.add_argument("--sample-batches", type=int, default=300)
    p.add_argument("--child", choices=["prepare", "train"], help=argparse.SUPPRESS)
    for hidden in ("source", "out", "workdir"):
        p.add_argument(f"--{hidden}", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0

    work = Path(args.tmp) / f"disentangle-data-memory-{os.getpid()}"
    work.mkdir(parents=True)
    free = shutil.disk_usage(work).free
    rows = min(args.rows, int(0.8 * free / (2 * ROW_BYTES)))
    note = ("" if rows == args.rows else
            f"only {free / 2**30:.1f} GiB free in {args.tmp}: large file cut to about {rows} rows")
    picks = {"large": grid_rows(rows), "small": np.arange(0, FULL_ROWS, SMALL_STRIDE)}
    sizes = {k: len(v) for k, v in picks.items()}
    result = {"benchmark": "data_memory", "cpu_count": os.cpu_count(), "steps": args.steps,
              "batch_size": 64, "sample_batches": args.sample_batches, "note": note,
              "rows": sizes, "image_bytes": {k: n * ROW_BYTES for k, n in sizes.items()}}
    try:
        for name, n in sizes.items():
            source, out = work / f"{name}.h5", work / f"{name}-prepared"
            t0 = time.time()
            write_source(source, picks[name])
            print(f"{name}: wrote {n} rows in {time.time() - t0:.0f} s", flush=True)
            result[f"prepare_{name}"] = run_child("prepare", source=source, out=out)
            print(f"{name}: prepared {result[f'prepare_{name}']}", flush=True)
            source.unlink()
            result[f"train_{name}"] = run_child("train", out=out, workdir=work / f"run-{name}",
                                                steps=args.steps,
                                                sample_batches=args.sample_batches)
            print(f"{name}: trained {result[f'train_{name}']}", flush=True)
            shutil.rmtree(out)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peak = {k: result[f"train_{k}"]["after_sampling"]["VmHWM"] for k in sizes}
    result["peak_rss_mib"] = peak
    result["peak_rss_large_over_small"] = peak["large"] / peak["small"]
    result["prepare_peak_rss_mib"] = {k: result[f"prepare_{k}"]["VmHWM"] for k in sizes}
    result["load_average_end"] = list(os.getloadavg())
    print(json.dumps({k: result[k] for k in ("rows", "peak_rss_mib",
                                             "peak_rss_large_over_small",
                                             "prepare_peak_rss_mib")}, indent=1))
    write_json(args.json, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
