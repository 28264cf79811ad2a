"""``liverclick feedback export --db URL --out DIR``: the training manifest and the agreement report."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli import CommandError, set_command

from .export import agreement_markdown, agreement_report, export_dataset
from .record import FeedbackError
from .store import FeedbackStore


def register(subparsers) -> None:
    p = subparsers.add_parser("feedback", help="reviewer feedback store")
    actions = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="accepted cases as a training manifest + agreement report")
    export.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    export.add_argument("--out", type=Path, required=True)
    set_command(export, export_main)


def export_main(args: argparse.Namespace) -> int:
    """Exit status 0 when the export ran; CommandError when the store cannot be read."""
    try:
        with FeedbackStore.open(args.db, create=False) as store:
            report = agreement_report(store)
            summary = export_dataset(store, args.out)
    except FeedbackError as exc:
        raise CommandError(str(exc)) from None
    out = Path(args.out)
    report["export"] = summary
    (out / "agreement.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "agreement.md").write_text(agreement_markdown(report), encoding="utf-8")
    print(f"{report['records']} feedback records, {report['accepted']} accepted as reference")
    if summary["exported"]:
        splits = ", ".join(f"{k} {v}" for k, v in summary["splits"].items())
        print(
            f"training manifest {summary['manifest']}: {summary['exported']} cases of {summary['images']} images "
            f"({splits}); labels {', '.join(summary['labels'])} (the training config's classes must include them)"
        )
    else:
        print(f"{summary['manifest']} is empty: no accepted case with a stored image", file=sys.stderr)
    if summary["accepted_without_image"]:
        print(
            f"{summary['accepted_without_image']} accepted cases have no stored image and cannot be training data "
            "(the server keeps images only with --store-images)",
            file=sys.stderr,
        )
    if summary["conflicting"]:
        print(f"{summary['conflicting']} cases left out: reviewers gave one lesion different classes", file=sys.stderr)
    print(f"agreement report: {out / 'agreement.md'} and {out / 'agreement.json'}")
    return 0
