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
        *,
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

    def image_to_model(self, image: np.ndarray, dtype: type | None = None) -> np.ndarray:
        """Crop the region (zeros where it leaves the image), resize and pad to S x S; ``dtype``: convert the crop
        (not the whole image) before resizing."""
        crop = self._crop(image)
        if dtype is not None:
            crop = crop.astype(dtype, copy=False)
        sw, sh = self.scaled_size
        shrinking = sw < crop.shape[1]
        resized = cv2.resize(crop, (sw, sh), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        out = np.zeros((self.size, self.size) + image.shape[2:], dtype=crop.dtype)
        out[:sh, :sw] = resized
        return out

    def model_to_image(self, model_map: np.ndarray, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """Map an S x S float map back to the image's own size (zero outside the region), or only the image
        pixels ``box`` = (x0, y0, x1, y1) (exclusive ends; a box inside the region, see :meth:`image_box`).

        One bilinear warp in float32, straight from the model's grid to the image pixels asked for, computed
        as ``cv2.resize`` of the region would (pixel centres to pixel centres, edges replicated)."""
        if box is not None:
            return self._warp(model_map, box)
        out = np.zeros((self.image_height, self.image_width), dtype=np.float32)
        x0, y0, x1, y1 = self._overlap()[0]
        if x1 > x0 and y1 > y0:
            out[y0:y1, x0:x1] = self._warp(model_map, (x0, y0, x1, y1))
        return out

    def image_box(self, model_box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """The image pixels (x0, y0, x1, y1), inside the image and the region, whose value :meth:`model_to_image`
        reads from model pixels in ``model_box`` (x0, y0, x1, y1, exclusive ends); a pixel or two more is harmless."""
        (sx, sy), (rx0, ry0) = self.scale_xy, self.region[:2]
        ox0, oy0, ox1, oy1 = self._overlap()[0]
        mx0, my0, mx1, my1 = model_box
        x0 = max(ox0, math.floor((mx0 - 0.5) / sx - 0.5 + rx0))
        y0 = max(oy0, math.floor((my0 - 0.5) / sy - 0.5 + ry0))
        x1 = min(ox1, math.ceil((mx1 + 0.5) / sx - 0.5 + rx0) + 1)
        y1 = min(oy1, math.ceil((my1 + 0.5) / sy - 0.5 + ry0) + 1)
        return x0, y0, max(x0, x1), max(y0, y1)

    def model_window(self) -> tuple[int, int, int, int]:
        """The model pixels (x0, y0, x1, y1, exclusive ends) that the image's pixels are read from: outside it
        the model input shows padding or what lies beyond the image's border."""
        x0, y0, x1, y1 = self._overlap()[0]
        if x1 <= x0 or y1 <= y0:
            return 0, 0, 0, 0
        (sw, sh), (rx0, ry0) = self.scaled_size, self.region[:2]
        cols = _taps(np.array([x0, x1 - 1]) - rx0, sw / self.region_size[0], sw)
        rows = _taps(np.array([y0, y1 - 1]) - ry0, sh / self.region_size[1], sh)
        return int(cols[0][0]), int(rows[0][0]), int(cols[1][1]) + 1, int(rows[1][1]) + 1

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

    def _warp(self, model_map: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
        """Bilinear values of the model map at the image pixels of ``box``: columns first, then rows."""
        x0, y0, x1, y1 = box
        (sw, sh), (rw, rh), (rx0, ry0) = self.scaled_size, self.region_size, self.region[:2]
        c0, c1, cw = _taps(np.arange(x0, x1) - rx0, sw / rw, sw)
        r0, r1, rw_ = _taps(np.arange(y0, y1) - ry0, sh / rh, sh)
        top, bottom = (int(r0[0]), int(r1[-1]) + 1) if len(r0) else (0, 0)
        rows = np.asarray(model_map[top:bottom], dtype=np.float32)
        across = rows[:, c0] * (1 - cw) + rows[:, c1] * cw
        return across[r0 - top] * (1 - rw_)[:, None] + across[r1 - top] * rw_[:, None]


def _taps(dst: np.ndarray, scale: float, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of linear interpolation at destination pixels ``dst`` (region pixels),
    ``scale`` source pixels per destination pixel, ``n`` source pixels: cv2.resize's INTER_LINEAR rule."""
    f = ((dst + 0.5) * scale - 0.5).astype(np.float32)
    i0 = np.floor(f)
    w = f - i0
    i0 = i0.astype(np.intp)
    w[i0 < 0] = 0
    i0[i0 < 0] = 0
    last = i0 >= n - 1
    w[last] = 0
    i0[last] = n - 1
    return i0, np.minimum(i0 + 1, n - 1), w
