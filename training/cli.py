"""The training package's commands: ``liverclick train``, ``reproduce``, ``reproduce-report`` and ``data``.

Registering them imports no torch; each command imports what it needs when it runs.
"""

from __future__ import annotations

import argparse
import csv
import shlex
from collections import defaultdict
from pathlib import Path

from core.cli import CommandError, set_command

from .config import add_train_arguments


def register_train(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a network from a YAML config")
    add_train_arguments(p)
    set_command(p, train_main)


def train_main(args: argparse.Namespace) -> int:
    from .train import cli_main

    return cli_main(args)


def register_reproduce(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce", help="the paper's three systems trained and evaluated per seed, the tables across seeds"
    )
    p.add_argument("--data", type=Path, required=True, help="manifest CSV with train/val/test splits")
    p.add_argument("--out", type=Path, required=True, help="run folder (an interrupted run continues in it)")
    p.add_argument(
        "--config",
        type=Path,
        action="append",
        default=[],
        help="base training config for all three systems (system set per run), or three, one per system",
    )
    seeds = p.add_mutually_exclusive_group()
    seeds.add_argument("--seeds", nargs="+", default=None, metavar="SEED", help="seeds of training and inputs")
    seeds.add_argument("--seed", type=int, default=None, help="a single seed (default 0)")
    p.add_argument("--inputs-per-image", type=int, default=5)
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument(
        "--noc", action=argparse.BooleanOptionalAction, default=False, help="also NoC with RITM's clicker (costly)"
    )
    p.add_argument(
        "--parallel",
        type=int,
        default=1,
        metavar="N",
        help="train N system/seed runs at once on this machine (one GPU or the CPU), the cores divided among them",
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override config entries (all systems)")
    set_command(p, reproduce_main)


def _seeds_and_overrides(args: argparse.Namespace) -> tuple[list[int], list[str]]:
    """--seeds swallows the KEY=VALUE words that follow it: give them back to the overrides."""
    words = args.seeds if args.seeds is not None else [str(0 if args.seed is None else args.seed)]
    overrides = [w for w in words if "=" in w] + args.overrides
    try:
        seeds = [int(w) for w in words if "=" not in w]
    except ValueError:
        raise CommandError(f"--seeds takes whole numbers, got {' '.join(words)}") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise CommandError("--seeds takes distinct whole numbers >= 0")
    return seeds, overrides


def reproduce_main(args: argparse.Namespace) -> int:
    from core.manifest import ManifestError

    from .reproduction import ReproductionError
    from .reproduction.report import write_report
    from .reproduction.run import reproduce

    seeds, overrides = _seeds_and_overrides(args)
    if args.inputs_per_image < 1 or args.bootstrap < 1 or args.parallel < 1:
        raise CommandError("--inputs-per-image, --bootstrap and --parallel must be >= 1")
    words = ["liverclick", "reproduce", "--data", str(args.data), "--out", str(args.out)]
    for config in args.config:
        words += ["--config", str(config)]
    words += ["--seeds", *map(str, seeds), "--inputs-per-image", str(args.inputs_per_image)]
    words += ["--bootstrap", str(args.bootstrap), "--noc" if args.noc else "--no-noc", *overrides]
    try:
        reproduce(
            args.data,
            args.out,
            configs=args.config,
            overrides=overrides,
            seeds=seeds,
            n_inputs=args.inputs_per_image,
            noc=args.noc,
            n_boot=args.bootstrap,
            command=shlex.join(words),
            parallel=args.parallel,
        )
        written = write_report(args.out)
    except (ReproductionError, ManifestError) as exc:
        raise CommandError(str(exc)) from None
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


def register_reproduce_report(subparsers) -> None:
    p = subparsers.add_parser(
        "reproduce-report", help="the reproduction's summary, document and plots, from its run folder alone"
    )
    p.add_argument("folder", type=Path, metavar="RUN", help="the run folder of liverclick reproduce")
    p.add_argument("--markdown", type=Path, default=None, help="the document (default RUN/reproduction.md)")
    p.add_argument("--plots", type=Path, default=None, help="folder for the plots (default RUN/plots)")
    p.add_argument("--json", type=Path, default=None, help="the summary across seeds (default RUN/summary.json)")
    set_command(p, reproduce_report_main)


def reproduce_report_main(args: argparse.Namespace) -> int:
    from .reproduction import ReproductionError
    from .reproduction.report import write_report

    if not (args.folder / "run.json").is_file():
        raise CommandError(f"{args.folder} is not a run folder of liverclick reproduce (no run.json)")
    try:
        written = write_report(args.folder, args.markdown, args.plots, args.json)
    except ReproductionError as exc:
        raise CommandError(str(exc)) from None
    print("wrote " + ", ".join(str(p) for p in written.values()))
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
