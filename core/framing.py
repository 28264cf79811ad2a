"""The framing policy: which region of the image the model sees for a prompt.

Without zoom-in the model sees the whole image. With zoom-in (the contract's ``zoom_context`` > 0) it
sees a square around the prompt, ``zoom_context`` times the longer side of its extent: the box and the
lesion clicks when the prompt holds a box; for a corrective click, the previous outline together with
every click (FocalClick's focus view: one pass); for a first click, the outline of a first, whole-image
prediction together with the lesion clicks. The runtime, the training dataset (which imitates the first
pass with the reference outline) and the export's parity inputs all frame through :func:`frame_for`.
"""

from __future__ import annotations

import cv2
import numpy as np

from .contract import InputSpec
from .geometry import Letterbox
from .prompt import Prompt

Extent = tuple[float, float, float, float]  # x0, y0, x1, y1 in image pixels, inclusive


def needs_first_pass(prompt: Prompt, spec: InputSpec, previous: np.ndarray | None = None) -> bool:
    """A first click under zoom-in (no box, no previous outline): the region comes from a whole-image pass."""
    return spec.zoom_in and prompt.box is None and previous is None


def points_extent(points: np.ndarray) -> Extent:
    """Bounding box of (N, 2) image points (x, y)."""
    pts = np.asarray(points).reshape(-1, 2)
    return (*pts.min(axis=0), *pts.max(axis=0))


def outline_extent(mask: np.ndarray, fg_points: np.ndarray) -> Extent:
    """Bounding box of an outline together with the lesion clicks."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask, dtype=bool).view(np.uint8))
    corners = np.array([[x, y], [x + w - 1, y + h - 1]]) if w else np.empty((0, 2))
    return points_extent(np.vstack([corners, np.asarray(fg_points).reshape(-1, 2)]))


def correction_extent(previous: np.ndarray, prompt: Prompt) -> Extent:
    """What a corrective click zooms on: the previous outline with every click, lesion and background."""
    return outline_extent(previous, np.vstack([prompt.points(True), prompt.points(False)]))


def frame_for(prompt: Prompt, width: int, height: int, spec: InputSpec, outline: Extent | None = None) -> Letterbox:
    """The region the model sees: the whole image without zoom-in; a box prompt: zoomed around the box and
    the lesion clicks; clicks only: zoomed around ``outline`` (the extent of the previous outline or of the
    first pass's, with the clicks), or the whole image when ``outline`` is None (the first pass itself)."""
    if not spec.zoom_in:
        return Letterbox.whole(width, height, spec.input_size)
    if prompt.box is not None:
        extent = points_extent(np.vstack([np.array(prompt.box.corners), prompt.points(True)]))
    elif outline is not None:
        extent = outline
    else:
        return Letterbox.whole(width, height, spec.input_size)
    return Letterbox.around(
        width, height, spec.input_size, extent=extent, context=spec.zoom_context, min_side=spec.zoom_min_side
    )
