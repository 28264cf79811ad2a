"""Geometry between original-image pixels and the model's S x S input.

One object, :class:`Letterbox`, maps an image region (the whole image, or with zoom-in a square
context around the prompt, which may reach past the image border) into the model input keeping
its aspect ratio (scale the longer side to S, pad right and bottom with zeros), maps clicks the same
way, and maps the model's mask back. Coordinates are rescaled nowhere else.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class Letterbox:
    image_width: int
    image_height: int
    size: int
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 in image pixels (x1, y1 exclusive)

    @classmethod
    def whole(cls, width: int, height: int, size: int) -> Letterbox:
        return cls(width, height, size, (0, 0, width, height))

    @classmethod
    def around(
        cls,
        width: int,
        height: int,
        size: int,
        extent: tuple[float, float, float, float],
        context: float,
        min_side: int,
    ) -> Letterbox:
        """A square region centred on ``extent`` (x0, y0, x1, y1), ``context`` times its longer side."""
        x0, y0, x1, y1 = extent
        side = max(context * max(x1 - x0 + 1, y1 - y0 + 1), min_side)
        side = int(math.ceil(side))
        cx, cy = (x0 + x1 + 1) / 2, (y0 + y1 + 1) / 2
        rx0, ry0 = int(round(cx - side / 2)), int(round(cy - side / 2))
        return cls(width, height, size, (rx0, ry0, rx0 + side, ry0 + side))

    # --- derived ----------------------------------------------------------------------------
    @property
    def region_size(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.region
        return x1 - x0, y1 - y0

    @property
    def scaled_size(self) -> tuple[int, int]:
        """Width and height of the region inside the S x S input (the rest is padding)."""
        rw, rh = self.region_size
        scale = self.size / max(rw, rh)
        return max(1, round(rw * scale)), max(1, round(rh * scale))

    @property
    def scale_xy(self) -> tuple[float, float]:
        (rw, rh), (sw, sh) = self.region_size, self.scaled_size
        return sw / rw, sh / rh

    # --- mapping ----------------------------------------------------------------------------
    def points_to_model(self, points: np.ndarray) -> np.ndarray:
        """(N, 2) image (x, y) -> model (x, y); pixel centres map to pixel centres."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        sx, sy = self.scale_xy
        origin = np.array(self.region[:2], dtype=np.float64)
        return (pts - origin + 0.5) * (sx, sy) - 0.5

    def image_to_model(self, image: np.ndarray) -> np.ndarray:
        """Crop the region (zeros where it leaves the image), resize and pad to S x S."""
        crop = self._crop(image)
        sw, sh = self.scaled_size
        shrinking = sw < crop.shape[1]
        resized = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        out = np.zeros((self.size, self.size) + image.shape[2:], dtype=image.dtype)
        out[:sh, :sw] = resized
        return out

    def model_to_image(self, model_map: np.ndarray) -> np.ndarray:
        """Map an S x S float map back to the image's own size (zero outside the region)."""
        sw, sh = self.scaled_size
        rw, rh = self.region_size
        inner = np.ascontiguousarray(model_map[:sh, :sw], dtype=np.float32)
        region = cv2.resize(inner, (rw, rh), interpolation=cv2.INTER_LINEAR)
        out = np.zeros((self.image_height, self.image_width), dtype=np.float32)
        (ix0, iy0, ix1, iy1), (cx0, cy0) = self._overlap()
        out[iy0:iy1, ix0:ix1] = region[cy0 : cy0 + iy1 - iy0, cx0 : cx0 + ix1 - ix0]
        return out

    # --- helpers ----------------------------------------------------------------------------
    def _overlap(self) -> tuple[tuple[int, int, int, int], tuple[int, int]]:
        """The part of the region inside the image, and where it starts inside the region."""
        x0, y0, x1, y1 = self.region
        ix0, iy0 = max(x0, 0), max(y0, 0)
        ix1, iy1 = min(x1, self.image_width), min(y1, self.image_height)
        return (ix0, iy0, max(ix0, ix1), max(iy0, iy1)), (ix0 - x0, iy0 - y0)

    def _crop(self, image: np.ndarray) -> np.ndarray:
        if self.region == (0, 0, self.image_width, self.image_height):
            return image
        rw, rh = self.region_size
        crop = np.zeros((rh, rw) + image.shape[2:], dtype=image.dtype)
        (ix0, iy0, ix1, iy1), (cx0, cy0) = self._overlap()
        crop[cy0 : cy0 + iy1 - iy0, cx0 : cx0 + ix1 - ix0] = image[iy0:iy1, ix0:ix1]
        return crop
