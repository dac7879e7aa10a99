"""``disentangle traverse RUN --method linear|potential-flow``: traversal figures and scores.

Writes ``RUN/figures/traversal_<method>.png`` and ``.gif`` and merges the scores into
``RUN/traversal.json``. Potential flows (Song et al., ICML 2023) are trained on the run's
frozen decoder in ``RUN/potential_flow/`` and resume from their latest checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from disentangle.cache import cache_dir


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("traverse", help="latent traversals (linear or potential flow)")
    p.add_argument("run", help="run directory")
    p.add_argument("--method", choices=("linear", "potential-flow"), default="linear")
    p.add_argument("--seeds", type=int, default=4, help="seed images (default 4)")
    p.add_argument("--steps", type=int, default=11,
                   help="linear steps per latent (codebook models use their V values)")
    p.add_argument("--quantiles", type=float, nargs=2, default=(0.02, 0.98),
                   metavar=("LO", "HI"), help="linear range as data quantiles (0.02 0.98)")
    p.add_argument("--num-codes", type=int, default=5000, help="images to encode (5000)")
    p.add_argument("--potentials", type=int, default=16, help="K potentials (16)")
    p.add_argument("--horizon", type=int, default=10, help="H flow steps (10)")
    p.add_argument("--flow-steps", type=int, default=5000, help="flow training steps (5000)")
    p.add_argument("--flow-lr", type=float, default=1e-4, help="Adam learning rate (1e-4)")
    p.add_argument("--flow-batch", type=int, default=32, help="flow batch size (32)")
    p.add_argument("--laplacian", choices=("exact", "hutchinson"), default="exact")
    p.add_argument("--change", choices=("jvp", "difference"), default="jvp",
                   help="image-change reward: decoder JVP or image difference")
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
    from disentangle.methods.potential_flow.model import PotentialFlowConfig
    from disentangle.traverse.runner import TraverseOptions, traverse_run

    for name in ("seeds", "steps", "num_codes", "potentials", "horizon", "flow_steps",
                 "flow_batch", "scale"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be >= 1")
    lo, hi = args.quantiles
    if not 0.0 <= lo < hi <= 1.0:
        raise UserError(f"--quantiles {lo} {hi}: need 0 <= LO < HI <= 1")
    flow = PotentialFlowConfig(num_potentials=args.potentials, num_steps=args.horizon,
                               train_steps=args.flow_steps, learning_rate=args.flow_lr,
                               batch_size=args.flow_batch, laplacian=args.laplacian,
                               change=args.change)
    options = TraverseOptions(num_seeds=args.seeds, num_steps=args.steps, quantiles=(lo, hi),
                              num_codes=args.num_codes, flow=flow, score=not args.no_score,
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
