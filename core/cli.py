"""The ``liverclick`` command: assembles the sub-commands that each package registers.

A package declares its commands as entry points of the group ``liverclick.commands`` in pyproject.toml
(``name = "package.module:register"``); ``register(subparsers)`` adds the command's parser and sets the
function it runs with :func:`set_command`. Registering imports nothing heavy: a command imports torch
and the like only when it runs, and a missing optional dependency gets one message, here.
"""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import entry_points

from .runtime import Predictor, load_model

COMMANDS = "liverclick.commands"
# Optional dependencies of the training extra, and how to install them.
TRAINING_EXTRA = ("torch", "onnx", "onnxscript", "matplotlib")
INSTALL_TRAINING = "pip install torch==2.13.0 'liverclick[train]'"


class CommandError(Exception):
    """A command cannot go on; the message says why (printed after the command's name, exit status 2)."""


def set_command(parser: argparse.ArgumentParser, run) -> None:
    """Make ``parser``'s command run ``run(args)`` (an exit status), named by ``parser.prog`` in messages."""
    parser.set_defaults(run=run, prog=parser.prog)


def open_model(model, provider: str = "auto") -> Predictor:
    """:func:`core.runtime.load_model`, or CommandError with the message every command gives."""
    try:
        return load_model(model, provider)
    except (OSError, ValueError, RuntimeError) as exc:
        hint = "; give a model file with --model PATH.onnx" if str(model) == "default" else ""
        raise CommandError(f"cannot load the model: {exc}{hint}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liverclick",
        description="Click-prompted lesion segmentation and classification in ultrasound. "
        "Research tool, not for diagnosis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for entry in sorted(entry_points(group=COMMANDS), key=lambda e: e.name):
        entry.load()(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except CommandError as exc:
        print(f"{args.prog}: {exc}", file=sys.stderr)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").split(".")[0]
        if missing not in TRAINING_EXTRA:
            raise
        print(
            f"{args.prog}: needs the training extra ({missing} is not installed): {INSTALL_TRAINING}", file=sys.stderr
        )
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
