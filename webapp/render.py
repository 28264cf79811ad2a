"""The image the user clicks on: the ultrasound with the lesion outline, the clicks and the box drawn over it.

Drawn with OpenCV at the session's display scale (see :func:`webapp.session.display_scale`); image
coordinates map to display pixels here and nowhere else in the viewer. Markers carry a sign (+ for
lesion, - for background) so that they read without colour.
"""

from __future__ import annotations

import cv2
import numpy as np

from .session import Session

FILL_ALPHA = 0.3
LESION = (255, 196, 0)  # amber: mask fill and contour
POSITIVE = (0, 200, 90)
NEGATIVE = (235, 50, 50)
BOX = (80, 170, 255)
WHITE = (255, 255, 255)


def render(session: Session) -> np.ndarray:
    """(h, w, 3) uint8 RGB view of the session at display size."""
    image, s = session.image, session.scale
    size = (round(image.width * s), round(image.height * s))
    gray = image.pixels if s == 1 else cv2.resize(image.pixels, size, interpolation=_interpolation(s))
    view = cv2.cvtColor(gray, cv2.COLOR_GRAY2RGB)
    radius = max(4, round(max(size) / 110))
    if session.prediction is not None:
        _draw_mask(view, session.prediction.mask, s, radius)
    if session.measurements is not None and session.measurements.diameter_endpoints is not None:
        p, q = (_to_display(pt, s) for pt in session.measurements.diameter_endpoints)
        cv2.line(view, p, q, WHITE, 1, cv2.LINE_AA)
    box = session.prompt.box
    if box is not None:
        cv2.rectangle(view, _to_display((box.x0, box.y0), s), _to_display((box.x1, box.y1), s), BOX, 2, cv2.LINE_AA)
    for c in session.prompt.clicks:
        _draw_marker(view, _to_display((c.x, c.y), s), radius, c.positive)
    if session.pending_corner is not None:
        _draw_corner(view, _to_display(session.pending_corner, s), radius)
    return view


def _interpolation(scale: float) -> int:
    return cv2.INTER_NEAREST if scale > 1 else cv2.INTER_AREA


def _to_display(point, scale: float) -> tuple[int, int]:
    """Image (x, y), pixel centres at integers -> the display pixel at that point."""
    return round((point[0] + 0.5) * scale - 0.5), round((point[1] + 0.5) * scale - 0.5)


def _draw_mask(view: np.ndarray, mask: np.ndarray, scale: float, radius: int) -> None:
    h, w = view.shape[:2]
    shown = mask.astype(np.uint8)
    if scale != 1:
        shown = cv2.resize(shown * 255, (w, h), interpolation=_interpolation(scale)) >= 128
    inside = shown.astype(bool)
    view[inside] = (view[inside] * (1 - FILL_ALPHA) + np.array(LESION) * FILL_ALPHA).astype(np.uint8)
    contours, _ = cv2.findContours(inside.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(view, contours, -1, LESION, max(1, radius // 3), cv2.LINE_AA)


def _draw_marker(view: np.ndarray, centre: tuple[int, int], radius: int, positive: bool) -> None:
    cv2.circle(view, centre, radius + 1, WHITE, -1, cv2.LINE_AA)
    cv2.circle(view, centre, radius, POSITIVE if positive else NEGATIVE, -1, cv2.LINE_AA)
    x, y = centre
    arm = max(2, radius * 3 // 5)
    cv2.line(view, (x - arm, y), (x + arm, y), WHITE, 1 + radius // 6)
    if positive:
        cv2.line(view, (x, y - arm), (x, y + arm), WHITE, 1 + radius // 6)


def _draw_corner(view: np.ndarray, centre: tuple[int, int], radius: int) -> None:
    """A crosshair where the first corner of a box was clicked."""
    x, y = centre
    arm = radius * 3
    for colour, width in ((WHITE, 3), (BOX, 1)):
        cv2.line(view, (x - arm, y), (x + arm, y), colour, width)
        cv2.line(view, (x, y - arm), (x, y + arm), colour, width)
