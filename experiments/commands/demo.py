"""``disentangle demo``: the embedded-default study, end to end (target: < 10 min, 2 CPUs).

QLAE, beta-TCVAE and beta-VAE on the procedural ``colour_scene`` (no download;
configs/sweeps/demo.py), two seeds each, trained at CPU scale and scored every
``eval.every`` steps (InfoMEC, MIG), then evaluated with the full suite and traversed; one
report. Rerunning resumes: finished members are skipped.
"""

from __future__ import annotations

import time
from pathlib import Path

from disentangle.sweep import REPO_ROOT

DEMO_SWEEP = REPO_ROOT / "configs" / "sweeps" / "demo.py"
DEMO_STEPS = 5000
EVALS_PER_RUN = 5  # eval.every = steps / EVALS_PER_RUN


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("demo", help="train, score and report QLAE vs beta-TCVAE vs beta-VAE")
    p.add_argument("--workdir", default="runs/demo", help="where the runs go (default runs/demo)")
    p.add_argument("--steps", type=int, default=DEMO_STEPS, help="training steps per run")
    p.add_argument("--workers", type=int, default=2,
                   help="runs trained in parallel processes (default 2)")
    p.add_argument("--eval-samples", type=int, default=5000, help="samples scored per run")
    p.set_defaults(func=run)


def demo_overrides(steps: int, eval_samples: int) -> list[str]:
    return [f"train.steps={steps}", f"train.log_every={max(1, steps // 60)}",
            f"train.checkpoint_every={max(1, steps // 4)}", f"eval.num_samples={eval_samples}",
            f"eval.every={max(1, steps // EVALS_PER_RUN)}"]


def run(args) -> int:
    from disentangle.report import write_report
    from disentangle.sweep import load_sweep, run_sweep

    start = time.time()
    members = load_sweep(DEMO_SWEEP)
    print(f"disentangle demo: {len(members)} runs on the procedural colour_scene, "
          f"{args.steps} steps each, into {args.workdir}")
    for m in members:
        print("  " + m.describe())
    results = run_sweep(DEMO_SWEEP, args.workdir, demo_overrides(args.steps, args.eval_samples),
                        workers=args.workers)
    print("writing the report ...")
    html_path, md_path = write_report(args.workdir, title="disentangle demo: QLAE vs beta-TCVAE vs "
                                      "beta-VAE on the procedural colour_scene")
    print((Path(md_path)).read_text().split("## Metrics during training")[0].strip())
    failed = [n for n, s in results.items() if s.get("status") != "done"]
    print(f"\ndemo finished in {time.time() - start:.0f} s"
          + (f"; FAILED members: {', '.join(failed)}" if failed else ""))
    print(f"report: {Path(html_path).resolve()}")
    return 1 if failed else 0
