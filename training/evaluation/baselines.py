"""No-learning baselines on the same inputs, so that what the model adds is visible: the box, the ellipse
inscribed in it, a disk around the single click; the reference outline's area and shape, and the shape of
the model's own outline, as malignancy scores."""

from __future__ import annotations

import cv2
import numpy as np

from core.prompt import Prompt

from ..clicks import tight_box
from .summary import binary_block, per_image_summary


def box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """The box itself, corners inclusive."""
    h, w = shape
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask = np.zeros((h, w), bool)
    mask[max(y0, 0) : min(y1, h - 1) + 1, max(x0, 0) : min(x1, w - 1) + 1] = True
    return mask


def ellipse_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """The ellipse inscribed in the box (the box's pixels span [x0 - 0.5, x1 + 0.5])."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cx, cy, a, b = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0 + 1) / 2, (y1 - y0 + 1) / 2
    return ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0


def disk_mask(shape: tuple[int, int], x: float, y: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


def shape_scores(mask: np.ndarray) -> dict[str, float]:
    """Malignancy scores read off the reference outline: area, 1 - area/box area, 1 - area/convex hull."""
    area = int(np.count_nonzero(mask))
    x0, y0, x1, y1 = tight_box(mask)
    ys, xs = np.nonzero(mask)
    hull = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.column_stack([xs, ys]).astype(np.int32)), 1)
    return {
        "lesion_area": float(area),
        "box_fill_deficit": 1.0 - area / ((x1 - x0 + 1) * (y1 - y0 + 1)),
        "convexity_deficit": 1.0 - area / max(int(hull.sum()), area),
    }


SEGMENTATION_BASELINES = {
    "two-click": {"box": "the box itself", "ellipse": "the ellipse inscribed in the box"},
    "one-click": {"disk": "a disk around the click"},
}
CLASSIFICATION_BASELINES = {
    "lesion_area": "reference lesion area (px) as the malignancy score",
    "box_fill_deficit": "reference lesion shape: 1 - area / tight-box area",
    "convexity_deficit": "reference lesion shape: 1 - area / convex-hull area",
}
# The same scores read off the model's own two-click outlines: how much of the model's AUROC the shape
# it draws could explain without looking at the texture.
PREDICTED_SHAPE_BASELINES = {
    "predicted_box_fill_deficit": ("box_fill_deficit", "predicted outline shape: 1 - area / tight-box area"),
    "predicted_convexity_deficit": ("convexity_deficit", "predicted outline shape: 1 - area / convex-hull area"),
}


def baseline_scores(records: list[dict], name: str) -> np.ndarray:
    """Per-image malignancy scores of one classification baseline (reference or predicted outline)."""
    if name in PREDICTED_SHAPE_BASELINES:
        key = PREDICTED_SHAPE_BASELINES[name][0]
        return np.array([r["predicted_shape_scores"][key] for r in records])
    return np.array([r["shape_scores"][name] for r in records])


def baseline_masks(mode: str, shape, prompt: Prompt, radius: float) -> dict[str, np.ndarray]:
    if mode == "two-click":
        box = prompt.box.to_list()
        return {"box": box_mask(shape, box), "ellipse": ellipse_mask(shape, box)}
    click = prompt.clicks[0]
    return {"disk": disk_mask(shape, click.x, click.y, radius)}


def baselines_summary(records: list[dict], modes, n_boot: int, seed: int) -> dict:
    out = {}
    for mode in modes:
        for name, what in SEGMENTATION_BASELINES[mode].items():
            v = np.array([r["baselines"][name]["mean_ji"] for r in records])
            out[name] = {"kind": "segmentation", "inputs": mode, "what": what, **per_image_summary(v, n_boot, seed)}
    malignant = [r["malignant"] for r in records]
    if all(m is not None for m in malignant):
        y = np.array(malignant, bool)
        for name, what in CLASSIFICATION_BASELINES.items():
            out[name] = {
                "kind": "classification",
                "inputs": "reference mask",
                "what": what,
                **binary_block(y, baseline_scores(records, name), n_boot, seed),
            }
        if "two-click" in modes:
            for name, (_, what) in PREDICTED_SHAPE_BASELINES.items():
                out[name] = {
                    "kind": "classification",
                    "inputs": "model's two-click outlines",
                    "what": what,
                    **binary_block(y, baseline_scores(records, name), n_boot, seed),
                }
    return out
