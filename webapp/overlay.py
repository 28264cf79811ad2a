"""What the canvas draws for a session, as JSON: the inputs, the outline as polygons, the diameter, and the result.

Everything is in the image's own pixels (x = column, y = row, pixel centres at whole numbers); the browser
scales it to whatever zoom it shows. The result holds the class probabilities, the lesion's measurements and the
model's operating points said in words with what they mean, so a page needs nothing else to show a case.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.prompt import Box
from core.runtime import Predictor
from core.serialize import operating_point_name, operating_points_json

from .session import Session, guidance, lesion_rows


def overlay(session: Session, segmenter: Predictor, message: str | None = None) -> dict:
    """The canvas's drawing of ``session`` (``message``: an error to show with it)."""
    p, m = session.prediction, session.measurements
    return {
        "version": session.version,
        "inputs": [{"box": list(i.to_list())} if isinstance(i, Box) else i.to_dict() for i in session.prompt.inputs],
        "outline": [] if p is None else outline_polygons(p.mask),
        "diameter": None if m is None or m.diameter_endpoints is None else [list(e) for e in m.diameter_endpoints],
        "can_undo": bool(session.history),
        "status": guidance(session),
        "message": message,
        "result": None if p is None else result(session, segmenter),
    }


def outline_polygons(mask: np.ndarray) -> list[list[list[int]]]:
    """The outer contour of each blob of ``mask``: its boundary pixels' centres (x, y), runs compressed."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=bool).view(np.uint8))
    if not w:
        return []
    crop = mask[y : y + h, x : x + w].astype(np.uint8)
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))
    return [c.reshape(-1, 2).tolist() for c in contours]


def result(session: Session, segmenter: Predictor) -> dict:
    """Class probabilities (most likely first), the malignant probability with the operating points, the lesion."""
    p, spec = session.prediction, segmenter.spec
    classes = sorted(p.class_probs.items(), key=lambda kv: -kv[1])
    return {
        "classes": [{"name": n, "p": v, "malignant": n in spec.malignant_classes} for n, v in classes],
        "malignant_prob": p.malignant_prob,
        "calibrated": "calibration" in segmenter.card,
        "operating_points": [
            {"statement": point["statement"], "meaning": meaning(point["name"])} for point in operating_points_json(p)
        ],
        "rows": [list(row) for row in lesion_rows(session, segmenter.provider)],
    }


def meaning(name: str) -> str:
    """What an operating point is, for a reader who might take "90%-sensitivity" for a chance of cancer."""
    kind, _, value = name.partition("_")
    if kind == "sensitivity" and value.isdigit():
        return (
            f"The {operating_point_name(name)} was chosen on validation images so that {value}% of the malignant "
            f"lesions there scored at or above it. Being above it is not a {value}% chance of cancer."
        )
    return f"The {operating_point_name(name)} was chosen on validation images."
