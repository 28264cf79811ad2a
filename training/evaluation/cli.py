"""``liverclick evaluate``, ``liverclick calibrate`` and ``liverclick compare``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli import CommandError, open_model, set_command
from core.manifest import ManifestError, read_manifest

from ..clicks import MODES
from .calibration import fit_from_report
from .compare import ReportMismatch, compare_markdown, compare_reports
from .markdown import markdown_report, one_line
from .protocol import disk_radius_from_training, evaluate, write_json
from .stress import stress_test


def register_evaluate(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="evaluate a model with the paper's protocol")
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
    p.add_argument(
        "--shifts", action="store_true", help="also the acquisition-shift stress test (two-click, fixed shifts)"
    )
    set_command(p, evaluate_main)


def register_calibrate(subparsers) -> None:
    p = subparsers.add_parser(
        "calibrate", help="fit the classifier's temperature and operating points on a validation report"
    )
    p.add_argument("report", type=Path, help="evaluation report of the validation split (liverclick evaluate)")
    p.add_argument("--out", type=Path, required=True, help="calibration JSON, for liverclick export --calibration")
    set_command(p, calibrate_main)


def register_compare(subparsers) -> None:
    p = subparsers.add_parser("compare", help="paired tests between two evaluation reports")
    p.add_argument("reports", nargs=2, type=Path)
    p.add_argument("--markdown", type=Path, default=None)
    set_command(p, compare_main)


def evaluate_main(args: argparse.Namespace) -> int:
    """``liverclick evaluate``: run the protocol, write the JSON report and optionally Markdown and plots."""

    if args.seed < 0 or args.inputs_per_image < 1:
        raise CommandError("--seed must be >= 0 and --inputs-per-image >= 1")
    split = None if args.split == "all" else args.split
    try:
        cases, _ = read_manifest(args.data, split=split)
    except ManifestError as exc:
        raise CommandError(f"{exc}" + (" (choose another with --split, or --split all)" if split else "")) from None
    cases = cases[: args.limit] if args.limit else cases
    if not cases:
        raise CommandError(f"{args.data} has no images to evaluate")
    predictor = open_model(args.model, args.provider)
    radius, rule = disk_radius_from_training(args.data)
    modes = MODES if args.mode == "both" else (args.mode,)
    report = evaluate(
        predictor,
        cases,
        modes=modes,
        seed=args.seed,
        n_inputs=args.inputs_per_image,
        noc=args.noc,
        n_boot=args.bootstrap,
        disk_radius=radius,
        disk_rule=rule,
        progress=True,
    )
    report["data"] = {"manifest": str(args.data), "split": args.split, **report["data"]}
    report["model"]["path"] = str(args.model)
    if args.shifts:
        report["stress"] = stress_test(
            predictor, cases, seed=args.seed, n_inputs=args.inputs_per_image, n_boot=args.bootstrap, progress=True
        )
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


def calibrate_main(args: argparse.Namespace) -> int:
    """``liverclick calibrate VAL_REPORT.json --out C.json``: temperature and operating points from validation."""
    try:
        report = json.loads(args.report.read_text(encoding="utf-8"))
        result = fit_from_report(report)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CommandError(f"cannot read {args.report} as an evaluation report: {exc}") from None
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    if report["data"].get("split") == "test":
        print(
            "liverclick calibrate: warning: fitted on the test split; fit on validation and test once", file=sys.stderr
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    before, after = result["per_input_before"], result["per_input_after"]
    print(
        f"temperature {result['temperature']:.3f}; per-input ECE {before['ece']:.3f} -> {after['ece']:.3f}, "
        f"Brier {before['brier']:.3f} -> {after['brier']:.3f} on {result['fitted_on']['n_inputs']} inputs"
    )
    for name, threshold in result["operating_points"].items():
        rates = result["rates_at_points"][name]
        print(
            f"  {name}: threshold {threshold:.3f} (sensitivity {rates['sensitivity']:.1%}, "
            f"specificity {rates['specificity']:.1%} there)"
        )
    print(f"wrote {args.out}")
    return 0


def compare_main(args: argparse.Namespace) -> int:
    """``liverclick compare A.json B.json``: paired tests; refuses reports on different test sets."""
    try:
        a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.reports)
        result = compare_reports(a, b)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise CommandError(f"cannot read the reports as evaluation reports: {exc}") from None
    except ReportMismatch as exc:
        raise CommandError(str(exc)) from None
    text = compare_markdown(result)
    print(text, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    return 0
