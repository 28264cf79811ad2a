"""``liverclick serve``: load the model once, then serve the viewer (and its feedback store) until interrupted."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
from pathlib import Path

from core.cli import CommandError, open_model, set_command


def register(subparsers) -> None:
    p = subparsers.add_parser("serve", help="start the web viewer")
    p.add_argument("--model", default="default", help="bundled model name or path to an ONNX file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--feedback-db", default=None, help="SQLite path or postgresql:// URL for reviewer feedback")
    p.add_argument(
        "--auth",
        action="append",
        default=[],
        metavar="USER:PASS[:ROLE]",
        help="a login (repeatable; role reviewer or organiser)",
    )
    p.add_argument(
        "--auth-file", type=Path, default=None, help="file of USER:SECRET[:ROLE] lines (`liverclick accounts set`)"
    )
    p.add_argument("--store-images", action="store_true", help="keep reviewed images in the feedback store")
    p.add_argument("--max-concurrency", type=int, default=2, help="predictions run at once")
    p.add_argument("--audit-log", type=Path, default=None, help="file for the audit lines (default: stderr)")
    set_command(p, serve_main)


def serve_main(args: argparse.Namespace) -> int:
    """Serve in a folder of this process's own (webapp.tempdir), removed when the server stops, SIGTERM included."""
    from .tempdir import instance_folder

    with sigterm_as_interrupt(), instance_folder():
        return _serve(args)


def _serve(args: argparse.Namespace) -> int:
    from .accounts import Accounts
    from .app import build_demo, launch
    from .feedback.record import FeedbackError
    from .feedback.store import FeedbackStore
    from .text import NOTICE

    log_audit(args.audit_log)
    segmenter = open_model(args.model, args.provider)
    try:
        auth = Accounts.read(args.auth, args.auth_file)
    except (OSError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    if auth.plain:
        print(
            f"liverclick serve: warning: the password of {', '.join(auth.plain)} is in plain text; "
            "hash it with `liverclick accounts set --file FILE USER`",
            file=sys.stderr,
        )
    store = None
    if args.feedback_db:
        if not auth:
            raise CommandError(
                "--feedback-db needs logins (--auth USER:PASS or --auth-file): every feedback record names its reviewer"
            )
        try:
            store = FeedbackStore.open(args.feedback_db, store_images=args.store_images)
        except FeedbackError as exc:
            raise CommandError(f"cannot open the feedback database: {exc}") from None
        kept = "with the images" if args.store_images else "image hashes only (no --store-images)"
        print(f"liverclick serve: feedback goes to {store.url}, {kept}")
    elif args.store_images:
        print("liverclick serve: --store-images has no effect without --feedback-db", file=sys.stderr)
    print(f"liverclick serve: {segmenter.name} {segmenter.version} on {segmenter.provider}. {NOTICE}")
    try:
        launch(
            build_demo(segmenter, store=store, workers=args.max_concurrency, accounts=auth),
            host=args.host,
            port=args.port,
            max_concurrency=args.max_concurrency,
            auth=auth,
            shared=store,
        )
    finally:
        if store is not None:
            store.close()
    return 0


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM (what systemd and container stops send) stops the server as Ctrl-C does, for the block's duration:
    Gradio closes the server on KeyboardInterrupt, and the context managers around it clean up."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def log_audit(path: Path | None) -> None:
    """Audit lines (every write and sign-in: who, when, what; never image content) to ``path`` or stderr."""
    handler = logging.FileHandler(path, encoding="utf-8") if path else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(message)s"))
    audit = logging.getLogger("liverclick.audit")
    audit.addHandler(handler)
    audit.setLevel(logging.INFO)
