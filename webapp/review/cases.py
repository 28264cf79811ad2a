"""The worklist an organiser gives: a CSV, one case a row.

Columns: ``image`` (a path relative to the CSV; any format :func:`core.imageio.load_image` reads), and optional
``mask`` (the reference outline), ``label`` (the reference class), ``prompt`` (the first prompt the model is
shown, JSON as in ``liverclick predict``), ``frame`` (of a multi-frame file) and ``case_id``. The project's
manifest (``liverclick data ...``) is such a CSV. Without a prompt the first click is the reference mask's
deepest point (the first click of RITM's clicker); a row with neither is refused, as the model needs a click.
Every bad row is named in one message.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from core.distance import inner_depth
from core.imageio import ImageError, UltrasoundImage, load_image
from core.manifest import load_mask
from core.prompt import Prompt, PromptError, parse_json

from ..feedback.record import FeedbackError

MAX_CASES = 5000


class WorklistError(FeedbackError):
    """A worklist or review session that cannot be used, with the reason (rows at fault named)."""


@dataclass(frozen=True)
class NewCase:
    """One row of the worklist, read and checked."""

    row: int  # line number in the CSV (header = 1)
    key: str  # the case's name: its case_id, else image#mask, else the image's path
    image: UltrasoundImage
    prompt: Prompt
    reference_mask: np.ndarray | None = None
    reference_label: str | None = None


def deepest_point(mask: np.ndarray) -> tuple[int, int]:
    """(x, y) of the lesion pixel farthest from the background (the image border counts as background)."""
    depth = inner_depth(mask)
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
    return int(x), int(y)


def read_worklist(path: str | Path, classes: tuple[str, ...]) -> list[NewCase]:
    """Read and check every row (``classes``: the model's, which a label must be one of)."""
    path = Path(path)
    if not path.is_file():
        raise WorklistError(f"no worklist at {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if "image" not in (reader.fieldnames or []):
            raise WorklistError(f"{path}: no 'image' column (optional: mask, label, prompt, frame, case_id)")
        rows = list(reader)
    if not rows:
        raise WorklistError(f"{path}: no cases")
    if len(rows) > MAX_CASES:
        raise WorklistError(f"{path}: {len(rows)} cases; a session holds at most {MAX_CASES}")
    cases, problems, keys = [], [], set()
    for number, row in enumerate(rows, start=2):
        try:
            case = _case(row, number, path.parent, classes)
            if case.key in keys:
                raise WorklistError(f"case {case.key!r} is listed twice")
            keys.add(case.key)
            cases.append(case)
        except (WorklistError, ImageError, PromptError) as exc:
            problems.append(f"{path.name} row {number}: {exc}")
    if problems:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise WorklistError("bad worklist rows:\n  " + "\n  ".join(problems[:10]) + more)
    return cases


def _case(row: dict, number: int, base: Path, classes: tuple[str, ...]) -> NewCase:
    field = {k: (v or "").strip() for k, v in row.items() if k}
    if not field.get("image"):
        raise WorklistError("empty 'image'")
    frame = field.get("frame") or "0"
    if not frame.isdigit():
        raise WorklistError(f"'frame' must be a whole number from 0, got {frame!r}")
    image = load_image(base / field["image"], frame=int(frame))
    mask = None
    if field.get("mask"):
        mask = load_mask(base / field["mask"])
        if mask.shape != image.pixels.shape:
            raise WorklistError(f"the mask is {mask.shape[::-1]} (width, height); the image {image.pixels.shape[::-1]}")
        if not mask.any():
            raise WorklistError("the mask is empty")
    label = field.get("label") or None
    if label is not None and label not in classes:
        raise WorklistError(f"label {label!r} is not one of the model's classes {list(classes)}")
    if field.get("prompt"):
        prompt = Prompt.from_dict(parse_json(field["prompt"])).validate(image.width, image.height)
    elif mask is not None:
        prompt = Prompt().add_click(*deepest_point(mask))
    else:
        raise WorklistError("neither a 'prompt' nor a 'mask': the model needs a click to outline the case")
    key = field.get("case_id") or (f"{field['image']}#{field['mask']}" if field.get("mask") else field["image"])
    return NewCase(number, key[:200], image, prompt, mask, label)
