"""``disentangle evaluate RUN [RUN ...] [--metrics NAME ...] [--option KEY=VALUE ...]``.

Scores each run (eval.json and figures in the run). Metric names come from three
registries: metrics of codes (default suite), the interventional ``beta_vae_score`` and
``factor_vae_score``, and ``udr``, which compares the given runs with each other (at least
two; its result is printed and written to ``--out``).
"""

from __future__ import annotations

import ast
import json


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score runs with the metric suite")
    p.add_argument("run", nargs="+", help="run directories")
    p.add_argument("--num-samples", type=int, default=None,
                   help="samples to encode (default: the run's eval.num_samples, 10000)")
    p.add_argument("--seed", type=int, default=None, help="sampling seed (default eval.seed)")
    p.add_argument("--metrics", nargs="*", default=None, help="metric names (default: suite)")
    p.add_argument("--option", nargs="*", default=[], metavar="KEY=VALUE",
                   help="metric options, e.g. num_train=1000 (to every metric that takes it)")
    p.add_argument("--out", default=None, help="JSON file for the UDR result of several runs")
    p.set_defaults(func=run)


def parse_options(items: list[str]) -> dict:
    """``["num_train=1000", "importance='logistic'"]`` -> dict; bare words stay strings."""
    from disentangle.errors import UserError

    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key:
            raise UserError(f"--option {item!r}: expected KEY=VALUE, e.g. num_train=1000")
        try:
            options[key] = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            options[key] = text
    return options


def run(args) -> int:
    import metrics
    from disentangle.errors import UserError
    from disentangle.evaluation import evaluate_run, to_jsonable, udr_of_runs

    options = parse_options(args.option)
    names = args.metrics
    run_set = [n for n in names or () if n in metrics.RUN_SET_METRICS]
    per_run = [n for n in names or () if n not in run_set]
    if run_set and len(args.run) < 2:
        raise UserError(f"{run_set[0]} compares runs: give at least 2 run directories, got "
                        f"{len(args.run)}")
    if names is None or per_run:
        for run_dir in args.run:
            evaluate_run(run_dir, args.num_samples, args.seed, per_run or None, options=options)
            print(f"wrote {run_dir}/eval.json")
    if run_set:  # "udr" is the one run-set metric
        result = udr_of_runs(args.run, args.num_samples, args.seed, **options)
        for path, score in zip(result["runs"], result["udr"]):
            print(f"UDR {score:.4f}  {path}")
        if args.out:
            with open(args.out, "w") as f:
                json.dump(to_jsonable(result), f, indent=1)
            print(f"wrote {args.out}")
    return 0
