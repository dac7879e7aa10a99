"""``disentangle train CONFIG [key=value ...] --workdir DIR``: train or resume a run."""

from __future__ import annotations

from disentangle.config import load_config
from disentangle.train import train_and_evaluate


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train (or resume) one run from a config file")
    p.add_argument("config", help="config file, e.g. configs/qlae_dsprites.py")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    p.add_argument("--workdir", required=True, help="run directory (rerun to resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    config = load_config(args.config, args.overrides)
    workdir = train_and_evaluate(config, args.workdir, progress=not args.no_progress)
    print(f"run: {workdir}")
    return 0
