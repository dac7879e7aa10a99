"""``disentangle report DIR``: report.html and report.md over a run or a sweep directory."""

from __future__ import annotations

from pathlib import Path


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("report", help="write report.html and report.md for a run/sweep")
    p.add_argument("dir", help="a run directory or a sweep directory")
    p.add_argument("--title", default=None)
    p.set_defaults(func=run)


def run(args) -> int:
    from disentangle.errors import UserError
    from disentangle.report import write_report

    if not Path(args.dir).is_dir():
        raise UserError(f"report: {args.dir!r} is not a directory")
    html_path, md_path = write_report(args.dir, args.title)
    print(f"wrote {md_path}\n{html_path}")
    return 0
