"""The prompt: foreground/background clicks and boxes in original-image pixels.

Coordinates are x = column, y = row, origin at the top-left pixel (what Gradio's
``SelectData.index`` gives). A prompt is immutable: adding or undoing an input returns a new one.
A box stands for the paper's two-click mode (Fig. 3d): one foreground click at its centre and four
background clicks at its corners; clicks given after a box refine it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


class PromptError(ValueError):
    """A prompt that cannot be used, with a message meant for the person who gave it."""


@dataclass(frozen=True)
class Click:
    x: float
    y: float
    positive: bool = True

    def to_dict(self) -> dict:
        return {"x": _plain(self.x), "y": _plain(self.y), "positive": self.positive}


@dataclass(frozen=True)
class Box:
    """An axis-aligned box given by two opposite corners, in any order."""

    x0: float
    y0: float
    x1: float
    y1: float

    def __post_init__(self) -> None:
        x0, x1 = sorted((self.x0, self.x1))
        y0, y1 = sorted((self.y0, self.y1))
        for name, value in zip(("x0", "y0", "x1", "y1"), (x0, y0, x1, y1), strict=True):
            object.__setattr__(self, name, value)

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.x0 + self.x1) / 2, (self.y0 + self.y1) / 2)

    @property
    def corners(self) -> tuple[tuple[float, float], ...]:
        return ((self.x0, self.y0), (self.x1, self.y0), (self.x0, self.y1), (self.x1, self.y1))

    def to_clicks(self) -> tuple[Click, ...]:
        """One foreground click at the centre and four background clicks at the corners."""
        return (Click(*self.centre, True), *(Click(x, y, False) for x, y in self.corners))

    def to_list(self) -> list:
        return [_plain(v) for v in (self.x0, self.y0, self.x1, self.y1)]


PromptInput = Click | Box


@dataclass(frozen=True)
class Prompt:
    """An ordered sequence of inputs (clicks and boxes); the last box given is the one in force."""

    inputs: tuple[PromptInput, ...] = ()

    # --- building ------------------------------------------------------------------------
    def add_click(self, x: float, y: float, positive: bool = True) -> Prompt:
        return Prompt((*self.inputs, Click(float(x), float(y), bool(positive))))

    def add_box(self, x0: float, y0: float, x1: float, y1: float) -> Prompt:
        return Prompt((*self.inputs, Box(float(x0), float(y0), float(x1), float(y1))))

    def undo(self) -> Prompt:
        return Prompt(self.inputs[:-1])

    # --- reading -------------------------------------------------------------------------
    @property
    def box(self) -> Box | None:
        boxes = [i for i in self.inputs if isinstance(i, Box)]
        return boxes[-1] if boxes else None

    @property
    def clicks(self) -> tuple[Click, ...]:
        """The clicks the user placed, without those a box stands for."""
        return tuple(i for i in self.inputs if isinstance(i, Click))

    def all_clicks(self) -> tuple[Click, ...]:
        """What the model sees: the box as five clicks (if any), then the user's clicks."""
        box = self.box
        return (box.to_clicks() if box else ()) + self.clicks

    def points(self, positive: bool) -> np.ndarray:
        """(N, 2) float array of the (x, y) of all foreground or all background clicks."""
        pts = [(c.x, c.y) for c in self.all_clicks() if c.positive == positive]
        return np.asarray(pts, dtype=np.float64).reshape(-1, 2)

    def __len__(self) -> int:
        return len(self.inputs)

    # --- checking ------------------------------------------------------------------------
    def validate(self, width: int, height: int) -> Prompt:
        """Raise PromptError with a clear message unless this prompt can be used on the image."""
        for item in self.inputs:
            values = (item.x, item.y) if isinstance(item, Click) else (item.x0, item.y0, item.x1, item.y1)
            if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values):
                raise PromptError(f"coordinates must be finite numbers, got {item}")
            if isinstance(item, Click):
                if not (0 <= item.x < width and 0 <= item.y < height):
                    kind = "lesion" if item.positive else "background"
                    raise PromptError(
                        f"{kind} click at (x={item.x:g}, y={item.y:g}) lies outside the {width} x {height} image"
                    )
            else:
                if item.x1 - item.x0 < 1 or item.y1 - item.y0 < 1:
                    raise PromptError(f"the box {item.to_list()} has zero area: give two different corners")
                if item.x0 < 0 or item.y0 < 0 or item.x1 >= width or item.y1 >= height:
                    raise PromptError(f"the box {item.to_list()} extends outside the {width} x {height} image")
        if not any(c.positive for c in self.all_clicks()):
            raise PromptError("give at least one click on the lesion (or a box around it)")
        return self

    # --- (de)serialisation: the request format of `liverclick predict` -------------------
    def to_dict(self) -> dict:
        out: dict = {"clicks": [c.to_dict() for c in self.clicks]}
        if self.box is not None:
            out["box"] = self.box.to_list()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Prompt:
        """Build from ``{"clicks": [{"x", "y", "positive"}], "box": [x0, y0, x1, y1]}`` (either or both)."""
        if not isinstance(data, dict):
            raise PromptError("a prompt must be a JSON object with 'clicks' and/or 'box'")
        inputs: list[PromptInput] = []
        box = data.get("box")
        if box is not None:
            if not isinstance(box, (list, tuple)) or len(box) != 4:
                raise PromptError("'box' must be a list [x0, y0, x1, y1]")
            inputs.append(Box(*(_number(v, "box coordinate") for v in box)))
        clicks = data.get("clicks") or []
        if not isinstance(clicks, list):
            raise PromptError("'clicks' must be a list of {x, y, positive} objects")
        for c in clicks:
            if not isinstance(c, dict) or "x" not in c or "y" not in c:
                raise PromptError(f"each click needs 'x' and 'y', got {c!r}")
            positive = c.get("positive", True)
            if not isinstance(positive, bool):
                raise PromptError(f"'positive' must be true or false, got {positive!r}")
            inputs.append(Click(_number(c["x"], "click x"), _number(c["y"], "click y"), positive))
        return cls(tuple(inputs))


def request_frame(request) -> int:
    """The DICOM frame a request (``liverclick predict``'s line, an API call's prompt) asks for; 0 by default."""
    frame = request.get("frame", 0) if isinstance(request, dict) else 0
    if not isinstance(frame, int) or isinstance(frame, bool):
        raise PromptError("'frame' must be an integer")
    return frame


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PromptError(f"{what} must be a number, got {value!r}")
    return float(value)


def _plain(v: float) -> float | int:
    """Write whole numbers as ints in JSON (clicks from a UI are pixel indices)."""
    return int(v) if float(v).is_integer() else float(v)
