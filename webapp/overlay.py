"""What the canvas draws for a tab, as JSON: the inputs in force, the outline as polygons, the diameter, the words and
the result.

Everything is in the image's own pixels (x = column, y = row, pixel centres at whole numbers); the browser
scales it to whatever zoom it shows. The result holds the class probabilities, the lesion's measurements and the
model's operating points said in words with what they mean (webapp.text), so a page needs nothing else to show a
case: one answer per input carries all of it.
"""

from __future__ import annotations

import cv2
import numpy as np

from core.prompt import input_dict
from core.runtime import Predictor

from . import card, text
from .tab import Tab


def overlay(tab: Tab, predictor: Predictor, message: str | None = None, *, reviews: bool = False) -> dict:
    """The canvas's drawing of ``tab`` (``message``: an error to show with it; ``reviews``: the server keeps
    reviews, so the drawing says whether this outline's is saved)."""
    p, m = tab.prediction, tab.measurements
    return {
        "version": tab.version,
        "inputs": [input_dict(i) for i in tab.prompt.in_force],
        "outline": [] if p is None else outline_polygons(p.mask),
        "diameter": None if m is None or m.diameter_endpoints is None else [list(e) for e in m.diameter_endpoints],
        "can_undo": bool(tab.history),
        "status": text.guidance(image=tab.image is not None, inputs=len(tab.prompt.in_force), outlined=p is not None),
        "review": None if not reviews or tab.image is None else review_line(tab),
        "message": message,
        "result": None if p is None else result(tab, predictor),
    }


def review_line(tab: Tab) -> str:
    return text.review_line(outlined=tab.prediction is not None, feedback_id=tab.feedback_id)


def outline_polygons(mask: np.ndarray) -> list[list[list[int]]]:
    """The outer contour of each blob of ``mask``: its boundary pixels' centres (x, y), runs compressed."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=bool).view(np.uint8))
    if not w:
        return []
    crop = mask[y : y + h, x : x + w].astype(np.uint8)
    contours, _ = cv2.findContours(crop, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE, offset=(x, y))
    return [c.reshape(-1, 2).tolist() for c in contours]


def result(tab: Tab, predictor: Predictor) -> dict:
    """Class probabilities (most likely first), the malignancy output in one sentence with the details behind it
    (the operating points), the lesion."""
    p, spec = tab.prediction, predictor.spec
    calibrated, points = card.calibrated(predictor.card), list(p.operating_points)
    classes = sorted(p.class_probs.items(), key=lambda kv: -kv[1])
    malignant = set(spec.malignant_classes)
    return {
        "classes": [
            {"name": n, "label": text.class_label(n, n in malignant), "p": v, "malignant": n in malignant}
            for n, v in classes
        ],
        "classes_heading": text.CLASSES_HEADING,
        "malignant_prob": p.malignant_prob,
        "malignant_label": text.malignancy_bar(calibrated),
        "sentence": text.malignancy_sentence(p.malignant_prob, points, calibrated=calibrated),
        "details_heading": text.DETAILS,
        "details": text.malignancy_details(
            p.malignant_prob, points, calibrated=calibrated, ece=card.held_out_ece(predictor.card)
        ),
        "rows": [list(row) for row in text.lesion_rows(tab.measurements, p, tab.image, predictor.provider)],
    }
