"""``liverclick evaluate`` and ``liverclick compare``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.manifest import ManifestError, read_manifest
from core.runtime import Predictor

from ..clicks import MODES
from .compare import ReportMismatch, compare_markdown, compare_reports
from .markdown import markdown_report, one_line
from .protocol import disk_radius_from_training, evaluate, write_json


def load_model(model: str, provider: str = "auto") -> Predictor:
    """An ONNX model through the runtime, or a training checkpoint (``.pt``/``.pth``) through PyTorch."""
    if str(model).endswith((".pt", ".pth")):
        import torch

        from training.checkpoint import load_predictor

        cuda = provider == "cuda" or (provider == "auto" and torch.cuda.is_available())
        return load_predictor(model, device="cuda" if cuda else "cpu")
    from core.runtime import Segmenter

    return Segmenter(model, provider=provider)


def evaluate_main(args: argparse.Namespace) -> int:
    """``liverclick evaluate``: run the protocol, write the JSON report and optionally Markdown and plots."""

    def fail(message: str) -> int:
        print(f"liverclick evaluate: {message}", file=sys.stderr)
        return 2

    if args.seed < 0 or args.inputs_per_image < 1:
        return fail("--seed must be >= 0 and --inputs-per-image >= 1")
    split = None if args.split == "all" else args.split
    try:
        cases, _ = read_manifest(args.data, split=split)
    except ManifestError as exc:
        return fail(f"{exc}" + (" (choose another with --split, or --split all)" if split else ""))
    cases = cases[: args.limit] if args.limit else cases
    if not cases:
        return fail(f"{args.data} has no images to evaluate")
    try:
        predictor = load_model(args.model, args.provider)
    except ModuleNotFoundError as exc:
        return fail(f"cannot load {args.model}: {exc}")
    except (OSError, ValueError, RuntimeError) as exc:
        return fail(f"cannot load the model {args.model}: {exc}")
    radius, rule = disk_radius_from_training(args.data)
    modes = MODES if args.mode == "both" else (args.mode,)
    report = evaluate(
        predictor, cases, modes, args.seed, args.inputs_per_image, args.noc, args.bootstrap, radius, rule, progress=True
    )
    report["data"] = {"manifest": str(args.data), "split": args.split, **report["data"]}
    report["model"]["path"] = str(args.model)
    write_json(report, args.report)
    written = [str(args.report)]
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown_report(report), encoding="utf-8")
        written.append(str(args.markdown))
    if args.plots:
        from .plots import write_plots

        written += [str(p) for p in write_plots(report, args.plots, predictor, {c.case_id: c for c in cases})]
    print(one_line(report))
    print("wrote " + ", ".join(written))
    return 0


def compare_main(args: argparse.Namespace) -> int:
    """``liverclick compare A.json B.json``: paired tests; refuses reports on different test sets."""
    try:
        a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.reports)
        result = compare_reports(a, b)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        print(f"liverclick compare: cannot read the reports as evaluation reports: {exc}", file=sys.stderr)
        return 2
    except ReportMismatch as exc:
        print(f"liverclick compare: {exc}", file=sys.stderr)
        return 2
    text = compare_markdown(result)
    print(text, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    return 0
