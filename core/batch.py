"""Batch prediction from a JSONL file of requests (``liverclick predict``).

One request a line: ``{"id": "a1", "image": "path.png", "clicks": [{"x": 120, "y": 88, "positive": true}],
"box": [x0, y0, x1, y1], "frame": 0, "previous_mask": "before.png"}``. The clicks are an ordered history:
the answer is the outline the viewer shows after the last of them (replayed, one pass per click), or, with
``previous_mask`` (the outline before the last click, 0/255 at the image's size), one pass. Relative paths
are taken from the folder of the requests file. Each request writes ``<id>.png`` (mask 0/255 at the image's
own size) and a line of ``results.jsonl``; a bad line gets an ``error`` entry and the batch goes on.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .cli import CommandError, open_model, set_command
from .imageio import ImageError, load_image, load_outline
from .prompt import Prompt, PromptError, parse_json, request_frame
from .runtime import Predictor
from .serialize import PREDICT_RESULT, prediction_json

SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RequestError(ValueError):
    """A request line that cannot be served, with the reason."""


@dataclass
class BatchSummary:
    total: int = 0
    failed: int = 0

    @property
    def all_failed(self) -> bool:
        return self.total > 0 and self.failed == self.total


def parse_request(line: str, base_dir: Path) -> tuple[str, Path, Prompt, int, Path | None]:
    """One JSONL line -> (id, image path, prompt, frame, previous mask path or None); RequestError with a clear
    reason otherwise."""
    req = parse_json(line, "the request")
    if not isinstance(req, dict):
        raise RequestError("a request must be a JSON object")
    rid = req.get("id")
    if not isinstance(rid, str) or not SAFE_ID.match(rid):
        raise RequestError("'id' must be a string of letters, digits, '.', '_' or '-' (it names the mask file)")
    if not isinstance(req.get("image"), str):
        raise RequestError("'image' must be a path")
    previous = req.get("previous_mask")
    if previous is not None and not isinstance(previous, str):
        raise RequestError("'previous_mask' must be the path of a PNG")
    frame = request_frame(req)
    image, previous = (None if p is None else _resolve(p, base_dir) for p in (req["image"], previous))
    return rid, image, Prompt.from_dict(req), frame, previous


def _resolve(path: str, base_dir: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else base_dir / p


def iter_requests(path: Path) -> Iterator[tuple[int, str]]:
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line


def run_batch(segmenter: Predictor, requests: Path, out_dir: Path, progress=None) -> BatchSummary:
    """Serve every request in ``requests``; write masks and ``results.jsonl`` into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    summary, seen = BatchSummary(), set()
    lines = list(iter_requests(requests))
    with open(out_dir / "results.jsonl", "w", encoding="utf-8") as results:
        for number, line in progress(lines) if progress else lines:
            summary.total += 1
            record: dict = {"line": number}
            try:
                rid, image_path, prompt, frame, previous_path = parse_request(line, requests.parent)
                record["id"] = rid
                if rid in seen:
                    raise RequestError(f"id '{rid}' was already used on an earlier line")
                seen.add(rid)
                image = load_image(image_path, frame=frame)
                previous = None if previous_path is None else load_outline(previous_path, image.width, image.height)
                pred = segmenter.replay(image, prompt, previous)
                mask_file = f"{rid}.png"
                cv2.imwrite(str(out_dir / mask_file), pred.mask.astype(np.uint8) * 255)
                record.update(prediction_json(pred, PREDICT_RESULT, mask=mask_file))
            except (RequestError, PromptError, ImageError) as exc:
                summary.failed += 1
                record["error"] = str(exc)
            results.write(json.dumps(record) + "\n")
            results.flush()
    return summary


def register(subparsers) -> None:
    p = subparsers.add_parser("predict", help="segment and classify a batch of JSONL requests")
    p.add_argument("--model", default="default")
    p.add_argument("--requests", type=Path, required=True, help="JSONL: one request a line")
    p.add_argument("--out", type=Path, required=True, help="folder for masks and results.jsonl")
    p.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    set_command(p, predict_main)


def predict_main(args: argparse.Namespace) -> int:
    """``liverclick predict``: exit status 1 when every request failed."""
    from tqdm import tqdm

    segmenter = open_model(args.model, args.provider)
    if not args.requests.is_file():
        raise CommandError(f"no requests file at {args.requests}")
    summary = run_batch(
        segmenter, args.requests, args.out, progress=lambda xs: tqdm(xs, desc="predict", unit="req", disable=None)
    )
    print(
        f"{summary.total - summary.failed} of {summary.total} requests served "
        f"({segmenter.name} {segmenter.version}, {segmenter.provider}); results in {args.out / 'results.jsonl'}"
    )
    return 1 if summary.all_failed else 0
