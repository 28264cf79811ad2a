"""The ``liverclick`` command: one entry point for serving, predicting, training, evaluating, exporting.

Sub-commands that need torch (train, export, data) import it only when run, so a serving-only
install works without it.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path


def _predict(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .batch import run_batch
    from .runtime import Segmenter

    try:
        segmenter = Segmenter(args.model, provider=args.provider)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"liverclick predict: cannot load the model: {exc}", file=sys.stderr)
        return 2
    if not args.requests.is_file():
        print(f"liverclick predict: no requests file at {args.requests}", file=sys.stderr)
        return 2
    summary = run_batch(
        segmenter, args.requests, args.out, progress=lambda xs: tqdm(xs, desc="predict", unit="req", disable=None)
    )
    print(
        f"{summary.total - summary.failed} of {summary.total} requests served "
        f"({segmenter.name} {segmenter.version}, {segmenter.provider}); results in {args.out / 'results.jsonl'}"
    )
    return 1 if summary.all_failed else 0


def _delegate(module: str, function: str = "main"):
    """Run ``module.function(args)``, imported only when the sub-command is used."""

    def run(args: argparse.Namespace) -> int:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name in ("torch", "onnx", "onnxscript", "matplotlib"):
                print(
                    f"liverclick {args.command}: needs the training extra ({exc.name} is not installed): "
                    "pip install torch==2.13.0 'liverclick[train]'",
                    file=sys.stderr,
                )
                return 2
            if exc.name and module.startswith(exc.name):
                print(f"liverclick {args.command}: not available in this version yet", file=sys.stderr)
                return 2
            raise
        return getattr(mod, function)(args)

    return run


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liverclick",
        description="Click-prompted lesion segmentation and classification in ultrasound. "
        "Research tool, not for diagnosis.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="start the web viewer")
    p.add_argument("--model", default="default", help="bundled model name or path to an ONNX file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    p.add_argument("--feedback-db", default=None, help="SQLite path or postgresql:// URL for reviewer feedback")
    p.add_argument("--auth", action="append", default=[], metavar="USER:PASS", help="a login (repeatable)")
    p.add_argument("--auth-file", type=Path, default=None, help="file of USER:PASS lines")
    p.add_argument("--store-images", action="store_true", help="keep reviewed images in the feedback store")
    p.add_argument("--max-concurrency", type=int, default=2, help="predictions run at once")
    p.set_defaults(run=_delegate("webapp.app", "serve_main"))

    p = sub.add_parser("predict", help="segment and classify a batch of JSONL requests")
    p.add_argument("--model", default="default")
    p.add_argument("--requests", type=Path, required=True, help="JSONL: one request a line")
    p.add_argument("--out", type=Path, required=True, help="folder for masks and results.jsonl")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    p.set_defaults(run=_predict)

    p = sub.add_parser("train", help="train a network from a YAML config")
    p.add_argument("--config", type=Path, required=True)
    p.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, logs)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override config entries")
    p.set_defaults(run=_delegate("training.train", "cli_main"))

    p = sub.add_parser("evaluate", help="evaluate a model with the paper's protocol")
    p.add_argument("--model", default="default", help="ONNX model (name or path) or a training checkpoint (.pt)")
    p.add_argument("--data", type=Path, required=True, help="manifest CSV")
    p.add_argument("--split", default="test", help="manifest split to evaluate ('all' for every row)")
    p.add_argument("--mode", default="both", choices=["one-click", "two-click", "both"])
    p.add_argument("--report", type=Path, required=True, help="JSON report")
    p.add_argument("--markdown", type=Path, default=None)
    p.add_argument("--plots", type=Path, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inputs-per-image", type=int, default=5)
    p.add_argument("--noc", action=argparse.BooleanOptionalAction, default=True, help="NoC@85/90 runs")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N images")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% CIs")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"], help="ONNX Runtime provider")
    p.set_defaults(run=_delegate("training.evaluation.cli", "evaluate_main"))

    p = sub.add_parser("compare", help="paired tests between two evaluation reports")
    p.add_argument("reports", nargs=2, type=Path)
    p.add_argument("--markdown", type=Path, default=None)
    p.set_defaults(run=_delegate("training.evaluation.cli", "compare_main"))

    p = sub.add_parser("reproduce", help="train and evaluate the paper's three systems, tables side by side")
    p.add_argument("--data", type=Path, required=True, help="manifest CSV with train/val/test splits")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--config", type=Path, default=None, help="base training config (system is set per run)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--inputs-per-image", type=int, default=5)
    p.add_argument("--noc", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override base-config entries")
    p.set_defaults(run=_delegate("training.reproduce", "cli_main"))

    p = sub.add_parser("export", help="export a checkpoint to ONNX with the contract and a parity gate")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fp16", action="store_true", help="half precision, for the CUDA provider")
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--card", type=Path, default=None, help="JSON with model-card fields to embed")
    p.add_argument("--report", type=Path, default=None, help="evaluation report whose figures go into the card")
    p.set_defaults(run=_delegate("export.onnx_export", "cli_main"))

    p = sub.add_parser("benchmark", help="per-click latency of a model")
    p.add_argument("--model", default="default")
    p.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--clicks", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--checkpoint", type=Path, default=None, help="also time this checkpoint in PyTorch eager")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    p.set_defaults(run=_delegate("core.benchmark", "cli_main"))

    p = sub.add_parser("data", help="write a training manifest (busi, aul, phantoms)")
    p.add_argument("source", choices=["busi", "aul", "phantoms"])
    p.add_argument("--src", type=Path, default=None, help="dataset folder (busi, aul)")
    p.add_argument("--out", type=Path, required=True, help="output folder (manifest.csv and any files)")
    p.add_argument("--n", type=int, default=200, help="phantoms: how many images")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(run=_delegate("training.adapters", "cli_main"))

    p = sub.add_parser("feedback", help="reviewer feedback store")
    fsub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    fe = fsub.add_parser("export", help="accepted cases as a training manifest + agreement report")
    fe.add_argument("--db", required=True, help="SQLite path or postgresql:// URL")
    fe.add_argument("--out", type=Path, required=True)
    fe.set_defaults(run=_delegate("webapp.feedback.cli", "export_main"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
