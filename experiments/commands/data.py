"""``disentangle data prepare NAME --from PATH``: prepare a real dataset once; ``data list``.

After preparing, ``data.name=NAME`` reads the copy (disentangle/data/prepared.py,
docs/datasets.md).
"""

from __future__ import annotations

import json
import sys


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("data", help="prepare the real datasets from their original files")
    sub = p.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    prep = sub.add_parser("prepare", help="check an original file and write its prepared copy")
    prep.add_argument("name", help="dataset: dsprites_file, shapes3d, mpi3d_toy, "
                      "mpi3d_realistic, mpi3d_real, cars3d, smallnorb")
    prep.add_argument("--from", dest="source", required=True, metavar="PATH",
                      help="the authors' file (or directory, for Cars3D and SmallNORB)")
    prep.add_argument("--image-size", type=int, default=None, metavar="N",
                      help="resize images to N x N once (64 for conv64); default: as published")
    prep.add_argument("--resample", default="lanczos",
                      help="PIL filter for --image-size: lanczos (default, as "
                      "disentanglement_lib), box, bilinear, bicubic, nearest")
    prep.add_argument("--out", default=None, metavar="DIR",
                      help="where to write (default $DISENTANGLE_DATA/NAME, "
                      "~/.cache/disentangle/data/NAME); then pass data.options.path=DIR")
    prep.add_argument("--allow-subset", action="store_true",
                      help="accept fewer images than the published file (a subset you made)")
    prep.add_argument("--force", action="store_true", help="replace an existing prepared copy")
    prep.set_defaults(func=run_prepare)
    lst = sub.add_parser("list", help="the datasets prepare knows and where they are prepared")
    lst.set_defaults(func=run_list)


def run_prepare(args) -> int:
    from disentangle.data.prepared import prepare

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    out = prepare(args.name, args.source, image_size=args.image_size, out=args.out,
                  resample=args.resample, allow_subset=args.allow_subset, force=args.force,
                  log=log)
    meta = json.loads((out / "meta.json").read_text())
    print(f"prepared {args.name}: {meta['num_images']} images "
          f"{tuple(meta['observation_shape'])} into {out}")
    if meta["observation_shape"][:2] != [64, 64]:
        print("note: conv64 needs 64x64 images; prepare again with --image-size 64 --force")
    where = f" data.options.path={args.out}" if args.out else ""
    print(f"use it with: data.name={args.name}{where}")
    return 0


def run_list(args) -> int:
    from disentangle.data.prepared import SOURCES, data_root

    root = data_root()
    print(f"prepared copies live in {root} ($DISENTANGLE_DATA)")
    for name in SOURCES:
        fmt = SOURCES.get(name)
        meta = root / name / "meta.json"
        state = "prepared" if meta.is_file() else f"not prepared (--from {fmt.expects})"
        print(f"  {name:16s} {fmt.title}: {state}")
    return 0
