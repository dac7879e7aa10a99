"""``disentangle evaluate RUN [--num-samples N]``: score a run, write eval.json and figures."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score a run with the metric suite")
    p.add_argument("run", help="run directory")
    p.add_argument("--num-samples", type=int, default=None,
                   help="samples to encode (default: the run's eval.num_samples, 10000)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default eval.seed)")
    p.add_argument("--metrics", nargs="*", default=None, help="metric names (default: suite)")
    p.set_defaults(func=run)


def run(args) -> int:
    from disentangle.evaluation import evaluate_run

    evaluate_run(args.run, args.num_samples, args.seed, args.metrics)
    print(f"wrote {args.run}/eval.json")
    return 0
