"""Adapters that write the project's manifest (``liverclick data busi|aul|phantoms``).

- BUSI (``../shared/data/busi``): benign and malignant lesions, one row per mask, ``split_group`` as
  the group; ``normal`` images (no lesion) and the groups that mix labels are left out.
- AUL (Annotated Ultrasound Liver images, Xu et al. 2023): ``<Class>/image/N.jpg`` with polygon
  outlines in ``<Class>/segmentation/mass/N.json``; polygons are rasterised into mask PNGs.
- Synthetic liver phantoms (4 classes), written as PNGs.

Each adapter assigns the paper's split (core/splits.py).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.manifest import write_manifest
from core.splits import DEFAULT_FRACTIONS, assign_splits

from .phantoms import CLASSES as PHANTOM_CLASSES
from .phantoms import make_phantom


def find_busi() -> Path | None:
    """BUSI's folder: $LIVERCLICK_BUSI, else ``shared/data/busi`` beside this checkout or beside the
    repository it was cloned from (a CI clone elsewhere still finds the shared data)."""
    if os.environ.get("LIVERCLICK_BUSI"):
        return Path(os.environ["LIVERCLICK_BUSI"])
    root = Path(__file__).resolve().parents[1]
    candidates = [root.parent]
    try:
        origin = subprocess.run(
            ["git", "-C", str(root), "remote", "get-url", "origin"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        if origin and Path(origin).is_dir():
            candidates.append(Path(origin).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        pass
    for base in candidates:
        if (base / "shared" / "data" / "busi" / "manifest.csv").is_file():
            return base / "shared" / "data" / "busi"
    return None


def _rel(path: Path, out_dir: Path) -> str:
    return os.path.relpath(path.resolve(), out_dir.resolve())


def busi_manifest(src: Path, out_dir: Path, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> Path:
    """BUSI's own manifest -> ours (benign/malignant only, label-conflict groups dropped)."""
    with open(src / "manifest.csv", newline="") as fh:
        source = list(csv.DictReader(fh))
    mixed = {r["split_group"] for r in source if r["near_dup_cross_label"] == "1"}
    rows = [
        {
            "image": _rel(src / r["image"], out_dir),
            "mask": _rel(src / r["mask"], out_dir),
            "label": r["label"],
            "group": r["split_group"],
            "case_id": f"{r['case_id']}_m{r['lesion_index']}",
            "area_px": r["mask_area_px"],
        }
        for r in source
        if r["label"] in ("benign", "malignant") and r["split_group"] not in mixed
    ]
    return write_manifest(assign_splits(rows, fractions, seed), out_dir / "manifest.csv")


def aul_manifest(src: Path, out_dir: Path, fractions=DEFAULT_FRACTIONS, seed: int = 0) -> Path:
    """AUL layout: ``<Benign|Malignant>/image/N.jpg`` + ``segmentation/mass/N.json`` (polygons)."""
    rows = []
    mask_dir = out_dir / "masks"
    mask_dir.mkdir(parents=True, exist_ok=True)
    class_dirs = sorted(d for d in src.iterdir() if d.is_dir() and d.name.lower() in ("benign", "malignant"))
    if not class_dirs:
        raise FileNotFoundError(f"{src} holds no Benign/ or Malignant/ folder (AUL layout)")
    for cdir in class_dirs:
        label = cdir.name.lower()
        for image in sorted((cdir / "image").glob("*.jpg"), key=lambda p: p.stem):
            outline = cdir / "segmentation" / "mass" / f"{image.stem}.json"
            if not outline.is_file():
                continue
            img = cv2.imread(str(image), cv2.IMREAD_GRAYSCALE)
            if img is None:
                continue
            mask = np.zeros(img.shape, np.uint8)
            for poly in _aul_polygons(json.loads(outline.read_text())):
                cv2.fillPoly(mask, [np.round(poly).astype(np.int32)], 255)
            if not mask.any():
                continue
            mask_path = mask_dir / f"{label}_{image.stem}.png"
            cv2.imwrite(str(mask_path), mask)
            rows.append(
                {
                    "image": _rel(image, out_dir),
                    "mask": _rel(mask_path, out_dir),
                    "label": label,
                    "group": f"{label}_{image.stem}",
                    "case_id": f"aul_{label}_{image.stem}",
                    "area_px": int(np.count_nonzero(mask)),
                }
            )
    return write_manifest(assign_splits(rows, fractions, seed), out_dir / "manifest.csv")


def _aul_polygons(data) -> list[np.ndarray]:
    """AUL outlines are lists of [x, y] points, or lists of such lists (one per mass)."""
    arr = data.get("points", data) if isinstance(data, dict) else data
    if arr and isinstance(arr[0], (int, float)):
        return [np.asarray(arr, float).reshape(-1, 2)]
    if arr and isinstance(arr[0][0], (int, float)):
        return [np.asarray(arr, float).reshape(-1, 2)]
    return [np.asarray(p, float).reshape(-1, 2) for p in arr]


def phantom_manifest(out_dir: Path, n: int, seed: int = 0, fractions=DEFAULT_FRACTIONS) -> Path:
    """``n`` synthetic liver phantoms, balanced over the four classes."""
    (out_dir / "images").mkdir(parents=True, exist_ok=True)
    (out_dir / "masks").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in tqdm(range(n), desc="phantoms", unit="img", disable=None):
        label = PHANTOM_CLASSES[i % len(PHANTOM_CLASSES)]
        image, mask = make_phantom(label, seed * 100_003 + i)
        stem = f"phantom_{i:05d}_{label}"
        cv2.imwrite(str(out_dir / "images" / f"{stem}.png"), image)
        cv2.imwrite(str(out_dir / "masks" / f"{stem}.png"), mask.astype(np.uint8) * 255)
        rows.append(
            {
                "image": f"images/{stem}.png",
                "mask": f"masks/{stem}.png",
                "label": label,
                "group": stem,
                "case_id": stem,
                "area_px": int(mask.sum()),
            }
        )
    return write_manifest(assign_splits(rows, fractions, seed), out_dir / "manifest.csv")
