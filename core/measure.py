"""Lesion measurements from a mask: area and longest diameter, in pixels and, when the spacing is known, in mm.

Pixels are unit squares: the area is the number of lesion pixels, and the longest diameter (maximum
Feret diameter) is the longest distance between two points of the lesion's pixel area, like calipers
placed on its outer edges. Pixel spacing is (row, column) in mm, as :class:`core.imageio.UltrasoundImage`
gives it, so anisotropic pixels are measured correctly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

CORNERS = np.array([[-0.5, -0.5], [0.5, -0.5], [-0.5, 0.5], [0.5, 0.5]])
Segment = tuple[tuple[float, float], tuple[float, float]]


@dataclass(frozen=True)
class Measurements:
    area_px: int
    diameter_px: float
    diameter_endpoints: Segment | None  # its two ends (x, y) in image pixels; the physically longest with spacing
    area_mm2: float | None = None
    diameter_mm: float | None = None

    def to_dict(self) -> dict:
        out = asdict(self)
        if self.diameter_endpoints is not None:
            out["diameter_endpoints"] = [list(p) for p in self.diameter_endpoints]
        return out


def measure(mask: np.ndarray, pixel_spacing_mm: tuple[float, float] | None = None) -> Measurements:
    """Area and longest diameter of the lesion pixels in ``mask`` (all of them, however many blobs)."""
    mask = np.asarray(mask, dtype=bool)
    area = int(np.count_nonzero(mask))
    if area == 0:
        mm = pixel_spacing_mm is not None
        return Measurements(0, 0.0, None, 0.0 if mm else None, 0.0 if mm else None)
    ends, diameter_px = _feret(mask, (1.0, 1.0))
    if pixel_spacing_mm is None:
        return Measurements(area, diameter_px, ends)
    row_mm, col_mm = (float(v) for v in pixel_spacing_mm)
    ends, diameter_mm = _feret(mask, (row_mm, col_mm))
    return Measurements(area, diameter_px, ends, area * row_mm * col_mm, diameter_mm)


def _feret(mask: np.ndarray, spacing: tuple[float, float]) -> tuple[Segment, float]:
    """The two pixel-corner points farthest apart in physical units, and their distance."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    centres = np.vstack([c.reshape(-1, 2) for c in contours]).astype(np.float64)
    corners = (centres[:, None, :] + CORNERS[None]).reshape(-1, 2)
    hull = cv2.convexHull(corners.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    scaled = hull * (spacing[1], spacing[0])  # x is a column, y a row
    d2 = ((scaled[:, None, :] - scaled[None, :, :]) ** 2).sum(axis=-1)
    i, j = np.unravel_index(int(np.argmax(d2)), d2.shape)
    ends = (tuple(float(v) for v in hull[i]), tuple(float(v) for v in hull[j]))
    return ends, float(np.sqrt(d2[i, j]))
