"""The training package's commands: ``liverclick train``, ``reproduce`` and ``data``.

Registering them imports no torch; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from core.cli import set_command

from .config import add_train_arguments


def register_train(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a network from a YAML config")
    add_train_arguments(p)
    set_command(p, train_main)


def train_main(args: argparse.Namespace) -> int:
    from .train import cli_main

    return cli_main(args)


def register_reproduce(subparsers) -> None:
    p = subparsers.add_parser("reproduce", help="train and evaluate the paper's three systems, tables side by side")
    p.add_argument("--data", type=Path, required=True, help="manifest CSV with train/val/test splits")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path, default=None, help="base training config (system is set per run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inputs-per-image", type=int, default=5)
    p.add_argument("--noc", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override base-config entries")
    set_command(p, reproduce_main)


def reproduce_main(args: argparse.Namespace) -> int:
    from .reproduce import reproduce

    result = reproduce(args.data, args.out, args.config, args.overrides, args.seed, args.inputs_per_image, args.noc)
    print((args.out / "tables.md").read_text())
    print(f"reports: {', '.join(str(args.out / f'{s}.json') for s in result['reports'])}")
    return 0


def register_data(subparsers) -> None:
    p = subparsers.add_parser("data", help="write a training manifest (busi, aul, phantoms)")
    p.add_argument("source", choices=["busi", "aul", "phantoms"])
    p.add_argument("--src", type=Path, default=None, help="dataset folder (busi, aul)")
    p.add_argument("--out", type=Path, required=True, help="output folder (manifest.csv and any files)")
    p.add_argument("--n", type=int, default=200, help="phantoms: how many images")
    p.add_argument("--seed", type=int, default=0)
    set_command(p, data_main)


def data_main(args: argparse.Namespace) -> int:
    from .adapters import aul_manifest, busi_manifest, find_busi, phantom_manifest

    out = args.out
    if args.source == "busi":
        src = args.src or find_busi()
        if src is None:
            print("liverclick data busi: BUSI not found; give --src (its folder) or set LIVERCLICK_BUSI")
            return 2
        path = busi_manifest(src, out, seed=args.seed)
    elif args.source == "aul":
        if args.src is None:
            print("liverclick data aul: --src is required (the unpacked AUL folder)")
            return 2
        path = aul_manifest(args.src, out, seed=args.seed)
    else:
        path = phantom_manifest(out, args.n, seed=args.seed)
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        counts[(r["split"], r["label"])] += 1
    summary = ", ".join(f"{s}/{lab}: {n}" for (s, lab), n in sorted(counts.items()))
    print(f"wrote {path} ({len(rows)} lesions; {summary})")
    return 0
