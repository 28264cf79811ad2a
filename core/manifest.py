"""The project's dataset format: a manifest CSV, one lesion a row.

Columns: ``image``, ``mask`` (paths relative to the CSV), ``label``, ``group`` (patient id or any
grouping that must never cross train/test), optional ``split`` (train/val/test). Other columns are
kept. Reading validates every row and names the row in each message; with ``skip_bad`` the bad rows
are left out and reported instead. numpy only: evaluation of an ONNX model and the feedback export need no torch.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from .imageio import ImageError, load_image

REQUIRED = ("image", "mask", "label", "group")
SPLITS = ("train", "val", "test")


class ManifestError(ValueError):
    """A manifest that cannot be used, naming the rows at fault."""


@dataclass(frozen=True)
class Case:
    """One lesion: an image, its mask, its label and its group."""

    image: Path
    mask: Path
    label: str
    group: str
    split: str = ""
    row: int = 0  # line number in the CSV (header = 1)
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def case_id(self) -> str:
        return self.extra.get("case_id") or f"{self.image.stem}#{self.mask.stem}"

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """(H, W) uint8 grayscale image and (H, W) bool mask."""
        return load_image(self.image).pixels, load_mask(self.mask)


def load_mask(path: Path) -> np.ndarray:
    mask = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if mask is None:
        raise ImageError(f"cannot read mask {path}")
    return mask > 127


def read_manifest(
    path: str | Path,
    split: str | None = None,
    labels: tuple[str, ...] | None = None,
    skip_bad: bool = False,
    check_files: bool = True,
) -> tuple[list[Case], list[str]]:
    """Read and validate a manifest; returns (cases, problems). Raises ManifestError unless ``skip_bad``.

    ``split`` keeps only rows of that split; ``labels`` is the set of known labels (others are errors).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"no manifest at {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise ManifestError(f"{path}: missing column(s) {missing}; need {list(REQUIRED)} (+ optional 'split')")
        rows = list(reader)
    cases, problems = [], []
    for number, row in enumerate(rows, start=2):
        if split and row.get("split", "") != split:
            continue
        try:
            cases.append(_case(row, number, path.parent, labels, check_files))
        except ManifestError as exc:
            problems.append(f"{path.name} row {number}: {exc}")
    if problems and not skip_bad:
        more = f" (and {len(problems) - 10} more)" if len(problems) > 10 else ""
        raise ManifestError("bad manifest rows:\n  " + "\n  ".join(problems[:10]) + more)
    if split and not cases and not problems:
        raise ManifestError(f"{path}: no rows with split '{split}'")
    return cases, problems


def _case(row: dict, number: int, base: Path, labels, check_files: bool) -> Case:
    for col in REQUIRED:
        if not (row.get(col) or "").strip():
            raise ManifestError(f"empty '{col}'")
    label = row["label"].strip()
    if labels is not None and label not in labels:
        raise ManifestError(f"unknown label '{label}' (known: {', '.join(labels)})")
    split = (row.get("split") or "").strip()
    if split and split not in SPLITS:
        raise ManifestError(f"split '{split}' is not one of {SPLITS}")
    image, mask = base / row["image"], base / row["mask"]
    if check_files:
        _check_pair(image, mask)
    extra = {k: v for k, v in row.items() if k not in (*REQUIRED, "split")}
    return Case(image=image, mask=mask, label=label, group=row["group"].strip(), split=split, row=number, extra=extra)


def _check_pair(image: Path, mask: Path) -> None:
    for p, what in ((image, "image"), (mask, "mask")):
        if not p.is_file():
            raise ManifestError(f"{what} file not found: {p}")
    try:
        with Image.open(image) as im:
            size = im.size
    except Exception:
        raise ManifestError(f"image is not readable: {image}") from None
    m = cv2.imread(str(mask), cv2.IMREAD_GRAYSCALE)
    if m is None:
        raise ManifestError(f"mask is not readable: {mask}")
    if (m.shape[1], m.shape[0]) != size:
        raise ManifestError(f"mask {m.shape[1]}x{m.shape[0]} differs from image {size[0]}x{size[1]}: {mask.name}")
    if not (m > 127).any():
        raise ManifestError(f"mask is empty: {mask.name}")


def write_manifest(rows: list[dict], path: str | Path) -> Path:
    """Write dict rows (``image``/``mask`` relative to the CSV's folder) with the required columns first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(REQUIRED) + ["split"]
    for row in rows:
        columns += [k for k in row if k not in columns]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in columns})
    return path
