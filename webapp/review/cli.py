"""``liverclick review create|status|export``: an organiser's commands for review sessions."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

from core.cli import CommandError, open_model, set_command

from ..feedback.record import FeedbackError
from ..feedback.store import FeedbackStore
from .cases import WorklistError
from .ordering import ORDERINGS


def register(subparsers) -> None:
    p = subparsers.add_parser("review", help="review sessions: worklists of cases for named reviewers")
    actions = p.add_subparsers(dest="review_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="a session from a worklist CSV (image[, mask, label, prompt, frame])")
    create.add_argument("--db", required=True, help="SQLite path or postgresql:// URL (the server's --feedback-db)")
    create.add_argument("--name", required=True)
    create.add_argument("--manifest", type=Path, required=True, help="the worklist CSV (a training manifest will do)")
    create.add_argument("--reviewers", required=True, help="logins, comma-separated")
    create.add_argument("--order", choices=ORDERINGS, default="manifest")
    create.add_argument("--seed", type=int, default=0, help="for the random order and the outline's jitter")
    create.add_argument("--model", default="default", help="the model whose first answers are reviewed")
    create.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    create.add_argument("--by", default=None, help="the organiser's name (default: this login)")
    set_command(create, create_main)
    status = actions.add_parser("status", help="progress of every session, or of one")
    status.add_argument("--db", required=True)
    status.add_argument("--name", default=None)
    set_command(status, status_main)
    export = actions.add_parser("export", help="a session's reviews and agreement: CSV, Markdown and JSON")
    export.add_argument("--db", required=True)
    export.add_argument("--name", required=True)
    export.add_argument("--out", type=Path, required=True)
    set_command(export, export_main)


def _open(url: str, create: bool = False) -> FeedbackStore:
    try:
        return FeedbackStore.open(url, create=create)
    except FeedbackError as exc:
        raise CommandError(f"cannot open the feedback database: {exc}") from None


def create_main(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .cases import read_worklist
    from .ordering import first_answer
    from .worklist import Worklists

    model = open_model(args.model, args.provider)
    try:
        cases = read_worklist(args.manifest, model.spec.class_names)
    except WorklistError as exc:
        raise CommandError(str(exc)) from None
    answers = [
        first_answer(model, model.prepare(case.image), case.prompt, seed=(args.seed, i))
        for i, case in enumerate(tqdm(cases, desc="first answers", unit="case", disable=None))
    ]
    reviewers = args.reviewers.split(",")
    with _open(args.db, create=True) as store:
        try:
            session = Worklists(store).create(
                args.name,
                created_by=args.by or getpass.getuser(),
                ordering=args.order,
                seed=args.seed,
                model=model,
                reviewers=reviewers,
                cases=cases,
                answers=answers,
            )
        except (WorklistError, FeedbackError) as exc:
            raise CommandError(str(exc)) from None
    mean = sum(a.uncertainty for a in answers) / len(answers)
    print(
        f"review session {session.name!r}: {session.size} cases, {session.ordering} order, reviewers "
        f"{', '.join(session.reviewers)}; model {session.model_name} {session.model_version} "
        f"(mean uncertainty {mean:.3f})"
    )
    return 0


def status_main(args: argparse.Namespace) -> int:
    from .worklist import Worklists

    with _open(args.db) as store:
        worklists = Worklists(store)
        try:
            sessions = [worklists.session(args.name)] if args.name else worklists.sessions()
        except WorklistError as exc:
            raise CommandError(str(exc)) from None
        if not sessions:
            print("no review sessions")
        for session in sessions:
            progress = worklists.progress(session)
            print(f"{session.name}: {session.size} cases, {session.ordering} order, created by {session.created_by}")
            for reviewer, done in progress.items():
                print(f"  {reviewer}: {done} of {session.size} reviewed")
    return 0


def export_main(args: argparse.Namespace) -> int:
    from .agreement import agreement_report, write_export
    from .worklist import Worklists

    with _open(args.db) as store:
        worklists = Worklists(store)
        try:
            session = worklists.session(args.name)
        except WorklistError as exc:
            raise CommandError(str(exc)) from None
        report, rows = agreement_report(worklists, session)
    paths = write_export(report, rows, args.out)
    who = f"{len(session.reviewers)} reviewers"
    print(f"{len(rows)} reviews of {session.size} cases by {who}: {', '.join(map(str, paths))}")
    return 0
