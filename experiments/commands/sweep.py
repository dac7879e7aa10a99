"""``disentangle sweep SWEEP [key=value ...] --workdir DIR [--workers N] [--index I] [--list]``."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="run the members of a sweep file")
    p.add_argument("sweep", help="sweep file, e.g. configs/sweeps/demo.py")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="overrides applied to every member (e.g. train.steps=100)")
    p.add_argument("--workdir", required=False, help="sweep directory (one run dir per member)")
    p.add_argument("--workers", type=int, default=1, help="members run in parallel processes")
    p.add_argument("--index", type=int, default=None,
                   help="run only member I (for cluster array jobs)")
    p.add_argument("--list", action="store_true", help="print the members and exit")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def run(args) -> int:
    from disentangle.errors import ConfigError
    from disentangle.sweep import load_sweep, run_sweep

    if args.list:
        for m in load_sweep(args.sweep):
            print(m.describe())
        return 0
    if not args.workdir:
        raise ConfigError("sweep: --workdir DIR is required to run members")
    results = run_sweep(args.sweep, args.workdir, args.overrides, workers=args.workers,
                        index=args.index, progress=not args.no_progress)
    failed = [n for n, s in results.items() if s.get("status") != "done"]
    print(f"sweep {args.workdir}: {len(results) - len(failed)} done, {len(failed)} failed"
          + (f" ({', '.join(failed)})" if failed else ""))
    return 1 if failed else 0
