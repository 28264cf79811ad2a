"""From the model's probability map to the lesion mask the user sees."""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def lesion_mask(prob: np.ndarray, threshold: float, fg_points: np.ndarray) -> np.ndarray:
    """Threshold, keep the connected component(s) holding a foreground click, fill holes.

    The user clicked on one lesion, so blobs elsewhere are dropped. If no foreground click falls
    inside the thresholded map, the component nearest to a foreground click is kept.
    """
    binary = (prob >= threshold).astype(np.uint8)
    n, labels = cv2.connectedComponents(binary, connectivity=8)
    if n <= 1:
        return binary.astype(bool)
    h, w = binary.shape
    pts = np.clip(np.rint(np.asarray(fg_points).reshape(-1, 2)).astype(int), 0, (w - 1, h - 1))
    if len(pts) == 0:
        return fill_holes(binary)
    hit = {int(labels[y, x]) for x, y in pts} - {0}
    if not hit:
        # Distance from every pixel to the nearest click; keep the component that comes closest.
        seeds = np.full((h, w), 255, np.uint8)
        seeds[pts[:, 1], pts[:, 0]] = 0
        dist = cv2.distanceTransform(seeds, cv2.DIST_L2, 3)
        best = ndimage.minimum(dist, labels, index=np.arange(1, n))
        hit = {int(np.argmin(best)) + 1}
    return fill_holes(np.isin(labels, list(hit)).astype(np.uint8))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill every hole of a binary mask (the outer contours drawn filled; ~50x faster than scipy here)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    filled = np.zeros(mask.shape, np.uint8)
    cv2.drawContours(filled, contours, -1, 1, thickness=cv2.FILLED)
    return filled.astype(bool)
