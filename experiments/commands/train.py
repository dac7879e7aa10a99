"""``disentangle train CONFIG [key=value ...] --workdir DIR``: train or resume a run.

``disentangle train --list`` names every registered method and the config files in
``configs/`` that train it.
"""

from __future__ import annotations

from pathlib import Path

from disentangle.config import load_config
from disentangle.errors import UserError
from disentangle.train import train_and_evaluate

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train (or resume) one run from a config file")
    p.add_argument("config", nargs="?", help="config file, e.g. configs/qlae_dsprites.py")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="dotted config overrides")
    p.add_argument("--workdir", help="run directory (rerun to resume)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--allow-change", action="append", default=[], metavar="KEY",
                   help="continue the run in --workdir with a new value of KEY (one of "
                        "train.learning_rate, train.clip_value, train.weight_decay, "
                        "train.keep_checkpoints), e.g. after a divergence; repeatable")
    p.add_argument("--list", action="store_true",
                   help="list every method and the config files that train it")
    p.set_defaults(func=run)


def method_configs(configs_dir: Path = CONFIGS) -> dict[str, list[str]]:
    """Registered method name -> config files (relative to the repo) whose
    ``model.name`` it is; methods without a config map to an empty list."""
    from disentangle.methods import MODELS

    found: dict[str, list[str]] = {name: [] for name in MODELS}
    for path in sorted(configs_dir.glob("*.py")):
        name = load_config(path).model.name
        found.setdefault(name, []).append(str(path.relative_to(configs_dir.parent)))
    return found


def run(args) -> int:
    if args.list:
        for method, files in method_configs().items():
            print(f"{method:<18} {', '.join(files) if files else '(no config file)'}")
        return 0
    if args.config is None or args.workdir is None:
        raise UserError("disentangle train needs a CONFIG file and --workdir DIR (or --list); "
                        "e.g. disentangle train configs/qlae_dsprites.py --workdir runs/qlae")
    config = load_config(args.config, args.overrides)
    workdir = train_and_evaluate(config, args.workdir, progress=not args.no_progress,
                                 allow_changes=tuple(args.allow_change))
    print(f"run: {workdir}")
    return 0
