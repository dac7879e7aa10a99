"""``disentangle traverse RUN --method linear|flow``: traversal figures and scores.

Writes ``RUN/figures/traversal_<method>.png`` and ``.gif`` and merges the scores into
``RUN/traversal.json``. Potential flows (Song et al., ICML 2023) are the run ``RUN/flow/``
of ``configs/potential_flow.py`` (``--flow-config``) with ``--flow-override key=value``
overrides, trained by the one trainer on the run's frozen decoder; a rerun resumes or
reuses it, and a larger ``train.steps`` extends it.
"""

from __future__ import annotations

from pathlib import Path

from disentangle.cache import cache_dir


def add_parser(subparsers) -> None:
    from disentangle.traverse.runner import FLOW_CONFIG, METHODS

    p = subparsers.add_parser("traverse", help="latent traversals (linear or potential flow)")
    p.add_argument("run", help="run directory")
    p.add_argument("--method", choices=METHODS, default="linear")
    p.add_argument("--seeds", type=int, default=4, help="seed images (default 4)")
    p.add_argument("--steps", type=int, default=11,
                   help="linear steps per latent (codebook models use their V values)")
    p.add_argument("--quantiles", type=float, nargs=2, default=(0.02, 0.98),
                   metavar=("LO", "HI"), help="linear range as data quantiles (0.02 0.98)")
    p.add_argument("--num-codes", type=int, default=5000, help="images to encode (5000)")
    p.add_argument("--flow-config", default=str(FLOW_CONFIG),
                   help="config file of the flow run (configs/potential_flow.py)")
    p.add_argument("--flow-override", action="extend", nargs="+", default=[],
                   metavar="KEY=VALUE",
                   help="overrides of the flow config, e.g. train.steps=300 "
                        "train.learning_rate=1e-3 model.num_potentials=8")
    p.add_argument("--match-lengths", action="store_true",
                   help="scale the flow's steps to the linear traversals' mean length")
    p.add_argument("--no-score", action="store_true", help="figures only, no factor scores")
    p.add_argument("--predictor-steps", type=int, default=3000,
                   help="factor-predictor training steps (cached per dataset)")
    p.add_argument("--cache-dir", default=None,
                   help="factor-predictor cache (default $DISENTANGLE_CACHE or "
                        "~/.cache/disentangle)")
    p.add_argument("--scale", type=int, default=2, help="figure upscaling factor (2)")
    p.set_defaults(func=run)


def run(args) -> int:
    from disentangle.errors import UserError
    from disentangle.traverse.runner import TraverseOptions, traverse_run

    for name in ("seeds", "steps", "num_codes", "scale"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    lo, hi = args.quantiles
    if not 0.0 <= lo < hi <= 1.0:
        raise UserError(f"--quantiles {lo} {hi}: need 0 <= LO < HI <= 1")
    options = TraverseOptions(num_seeds=args.seeds, num_steps=args.steps, quantiles=(lo, hi),
                              num_codes=args.num_codes, flow_config=args.flow_config,
                              flow_overrides=tuple(args.flow_override),
                              match_lengths=args.match_lengths, score=not args.no_score,
                              predictor_steps=args.predictor_steps,
                              cache_dir=args.cache_dir or str(cache_dir()), scale=args.scale)
    result = traverse_run(args.run, args.method, options)
    for path in result["figures"]:
        print(f"wrote {path}")
    if "mean_purity" in result:
        print(f"{args.method}: mean purity {result['mean_purity']:.3f} over "
              f"{result['num_active']}/{result['num_traversals']} active traversals, "
              f"factors covered {result['factors_covered']}/{result['num_factors']} "
              f"({', '.join(result['covered'])})")
    print(f"wrote {Path(args.run) / 'traversal.json'}")
    return 0
