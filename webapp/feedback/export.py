"""Reviewed cases -> a training manifest and an agreement report (``liverclick feedback export``).

The manifest (``DIR/manifest.csv`` with ``DIR/images/<sha256>.png`` and ``DIR/masks/feedback_<id>.png``)
holds the cases accepted as reference whose image was stored (``--store-images``, or a review session's case,
whose pixels the session keeps; ``review_session`` and ``review_case`` name it); ``liverclick train``
reads it as it is. Its label is the reviewer's class (the correction when they disagreed), its group
the image's pixel hash, so that reviews of one image never cross splits (exact duplicates only: two
frames of one lesion are different images here). Splits follow the paper (core/splits.py).
Where reviewers gave one lesion (outlines overlapping by IoU >= 0.5) different classes, those cases
are left out and counted: a training label must not be a coin toss.

The agreement report (``DIR/agreement.json`` and ``DIR/agreement.md``) covers every record, per model:
how often reviewers agreed with each predicted class, the confusion of predicted against reviewer's
class, and the outline ratings.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from core.manifest import write_manifest
from core.splits import DEFAULT_FRACTIONS, assign_splits

from .record import FeedbackRecord, decode_png
from .store import FeedbackStore

DISCLAIMER = "Research tool, not for diagnosis: agreement among reviewers of a research model."
SAME_LESION_IOU = 0.5


@dataclass
class _ModelTally:
    """Running counts for one model (name, version)."""

    classes: list[str] = field(default_factory=list)
    records: int = 0
    accepted: int = 0
    reviewers: set[str] = field(default_factory=set)
    reviewed: Counter = field(default_factory=Counter)  # predicted class -> records
    agreed: Counter = field(default_factory=Counter)
    confusion: Counter = field(default_factory=Counter)  # (predicted, reviewer's class) -> records
    ratings: Counter = field(default_factory=Counter)  # 1..5 -> records
    rating_sum: Counter = field(default_factory=Counter)  # predicted class -> sum of ratings

    def add(self, rec: FeedbackRecord) -> None:
        self.classes += [c for c in rec.class_probs if c not in self.classes]
        self.records += 1
        self.accepted += rec.accepted
        self.reviewers.add(rec.reviewer)
        self.reviewed[rec.predicted_class] += 1
        self.agreed[rec.predicted_class] += rec.agree
        self.confusion[rec.predicted_class, rec.reference_class] += 1
        self.ratings[rec.outline_rating] += 1
        self.rating_sum[rec.predicted_class] += rec.outline_rating

    def report(self, name: str, version: str) -> dict:
        per_class = {
            c: {
                "reviewed": self.reviewed[c],
                "agreed": self.agreed[c],
                "agreement": _ratio(self.agreed[c], self.reviewed[c]),
                "mean_outline_rating": _ratio(self.rating_sum[c], self.reviewed[c]),
            }
            for c in self.classes
        }
        return {
            "model": name,
            "version": version,
            "records": self.records,
            "accepted": self.accepted,
            "reviewers": len(self.reviewers),
            "classes": self.classes,
            "agreement": _ratio(sum(self.agreed.values()), self.records),
            "per_class": per_class,
            "confusion": {
                "rows": "predicted class",
                "columns": "reviewer's class",
                "matrix": [[self.confusion[p, r] for r in self.classes] for p in self.classes],
            },
            "outline_rating": {
                "mean": _ratio(sum(k * n for k, n in self.ratings.items()), self.records),
                "counts": {str(k): self.ratings[k] for k in range(1, 6)},
            },
        }


def _ratio(num: float, den: int) -> float | None:
    return round(num / den, 4) if den else None


def agreement_report(store: FeedbackStore) -> dict:
    """Agreement of reviewers with each model, over every record in the store."""
    tallies: dict[tuple[str, str], _ModelTally] = defaultdict(_ModelTally)
    reviewers = set()
    for rec in store.iter_records(images=False):
        tallies[rec.model_name, rec.model_version].add(rec)
        reviewers.add(rec.reviewer)
    return {
        "disclaimer": DISCLAIMER,
        "records": sum(t.records for t in tallies.values()),
        "accepted": sum(t.accepted for t in tallies.values()),
        "reviewers": len(reviewers),
        "models": [tallies[key].report(*key) for key in sorted(tallies)],
    }


def agreement_markdown(report: dict) -> str:
    """The report as Markdown tables, for reading."""

    def fmt(value) -> str:
        return "–" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)

    lines = ["# Reviewer agreement", "", f"*{report['disclaimer']}*", ""]
    lines.append(
        f"Records: {report['records']}; accepted as reference: {report['accepted']}; reviewers: {report['reviewers']}."
    )
    export = report.get("export")
    if export:
        lines += [
            "",
            f"Exported as training data: {export['exported']} cases of {export['images']} images "
            f"({', '.join(f'{k} {v}' for k, v in export['splits'].items()) or 'none'}); accepted without a stored "
            f"image: {export['accepted_without_image']}; left out for conflicting classes: {export['conflicting']}.",
        ]
    for m in report["models"]:
        classes = m["classes"]
        lines += ["", f"## {m['model']} {m['version']}", ""]
        lines += [
            f"Records {m['records']}, accepted {m['accepted']}, reviewers {m['reviewers']}, "
            f"agreement {fmt(m['agreement'])}, mean outline rating {fmt(m['outline_rating']['mean'])} (1–5).",
            "",
            "| predicted class | reviewed | agreed | agreement | mean outline rating |",
            "|---|---:|---:|---:|---:|",
        ]
        for c, row in m["per_class"].items():
            cells = (row["reviewed"], row["agreed"], row["agreement"], row["mean_outline_rating"])
            lines.append(f"| {c} | " + " | ".join(fmt(v) for v in cells) + " |")
        lines += ["", "Predicted class (rows) against the reviewer's class (columns):", ""]
        lines += ["| | " + " | ".join(classes) + " |", "|---|" + "---:|" * len(classes)]
        lines += [
            f"| {c} | " + " | ".join(map(str, row)) + " |"
            for c, row in zip(classes, m["confusion"]["matrix"], strict=True)
        ]
        counts = m["outline_rating"]["counts"]
        lines += ["", "Outline ratings: " + ", ".join(f"{k}: {n}" for k, n in counts.items()) + "."]
    return "\n".join(lines) + "\n"


def export_dataset(store: FeedbackStore, out_dir: str | Path, fractions: dict | None = None, seed: int = 0) -> dict:
    """Write the accepted cases with stored images as a training manifest; returns what was done."""
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "masks").mkdir(parents=True, exist_ok=True)
    rows, without_image, images = [], 0, set()
    for rec in store.iter_records(accepted=True):
        pixels = rec.image if rec.image is not None else _case_pixels(store, rec.case_id)
        if pixels is None:
            without_image += 1
            continue
        image = f"images/{rec.image_sha256}.png"
        if rec.image_sha256 not in images:
            _write_png(out / image, pixels)
            images.add(rec.image_sha256)
        mask = f"masks/feedback_{rec.id}.png"
        _write_png(out / mask, rec.mask.astype(np.uint8) * 255)
        rows.append(
            {
                "image": image,
                "mask": mask,
                "label": rec.reference_class,
                "group": rec.image_sha256,
                "case_id": f"feedback_{rec.id}",
                "area_px": int(np.count_nonzero(rec.mask)),
                "outline_rating": rec.outline_rating,
                "model": f"{rec.model_name} {rec.model_version}",
                "review_session": rec.session_id or "",
                "review_case": rec.case_id or "",
            }
        )
    conflicting = {row["case_id"] for row in _conflicting(rows, out)}
    for row in rows:
        if row["case_id"] in conflicting:
            (out / row["mask"]).unlink()
    rows = [r for r in rows if r["case_id"] not in conflicting]
    if rows:
        rows = assign_splits(rows, DEFAULT_FRACTIONS if fractions is None else fractions, seed)
    manifest = write_manifest(rows, out / "manifest.csv")  # header only when nothing is exportable
    return {
        "manifest": str(manifest),
        "exported": len(rows),
        "images": len({r["group"] for r in rows}),
        "labels": sorted({r["label"] for r in rows}),
        "splits": dict(sorted(Counter(r["split"] for r in rows).items())),
        "accepted_without_image": without_image,
        "conflicting": len(conflicting),
    }


def _case_pixels(store: FeedbackStore, case_id: int | None) -> np.ndarray | None:
    """The pixels of a review session's case (kept with the session whatever ``--store-images`` says)."""
    if case_id is None:
        return None
    row = store.read(lambda run: run("SELECT image_png FROM review_case WHERE id = ?", (case_id,)).fetchone())
    return None if row is None else decode_png(bytes(row[0]))


def _write_png(path: Path, array: np.ndarray) -> None:
    if not cv2.imwrite(str(path), array):
        raise OSError(f"could not write {path}")


def _conflicting(rows: list[dict], out: Path) -> list[dict]:
    """Cases of one image whose outlines overlap (one lesion) but whose reviewers gave different classes."""
    by_image: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_image[row["group"]].append(row)
    bad = []
    for cases in by_image.values():
        if len({c["label"] for c in cases}) < 2:
            continue
        masks = [cv2.imread(str(out / c["mask"]), cv2.IMREAD_GRAYSCALE) > 127 for c in cases]
        for i, a in enumerate(cases):
            for j, b in enumerate(cases):
                if a["label"] != b["label"] and i != j:
                    inter = np.count_nonzero(masks[i] & masks[j])
                    if inter >= SAME_LESION_IOU * np.count_nonzero(masks[i] | masks[j]):
                        bad.append(a)
                        break
    return bad
