"""``liverclick export --checkpoint CKPT --out MODEL.onnx [--fp16]``: exit status 1 when the parity gate fails."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.cli import set_command


def register(subparsers) -> None:
    p = subparsers.add_parser("export", help="export a checkpoint to ONNX with the contract and a parity gate")
    p.add_argument("--checkpoint", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--fp16", action="store_true", help="half precision, for the CUDA provider")
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--card", type=Path, default=None, help="JSON with model-card fields to embed")
    p.add_argument("--report", type=Path, default=None, help="evaluation report whose figures go into the card")
    p.add_argument(
        "--calibration", type=Path, default=None, help="temperature and operating points (liverclick calibrate)"
    )
    set_command(p, export_main)


def export_main(args: argparse.Namespace) -> int:
    from .onnx_export import ParityError, export_onnx, metrics_from_report

    card = json.loads(args.card.read_text()) if args.card else {}
    if args.report:
        card["metrics"] = metrics_from_report(json.loads(args.report.read_text()))
    calibration = json.loads(args.calibration.read_text()) if args.calibration else None
    if calibration:
        card["calibration"] = {k: calibration[k] for k in ("temperature", "fitted_on", "rates_at_points")}
    try:
        report = export_onnx(
            args.checkpoint, args.out, fp16=args.fp16, opset=args.opset, card=card, calibration=calibration
        )
    except ParityError as exc:
        print(f"liverclick export: {exc}; no file written", file=sys.stderr)
        return 1
    size_mb = args.out.stat().st_size / 2**20
    print(f"{report}\nwrote {args.out} ({size_mb:.1f} MB)")
    return 0
