"""The prompt: foreground/background clicks and boxes in original-image pixels.

Coordinates are x = column, y = row, origin at the top-left pixel (what Gradio's
``SelectData.index`` gives). A box is ``[x0, y0, x1, y1]``: two opposite corner pixels, both inside it. A prompt
is immutable: adding or undoing an input returns a new one. A box stands for the paper's two-click mode (Fig. 3d):
one foreground click at its centre and four background clicks at its corners.

A prompt is an ordered history, read by one rule everywhere (the viewer, the runtime's replay, ``/segment``,
``liverclick predict``, stored reviews): a box starts a new object, so the inputs before the last box are dropped
(:attr:`Prompt.in_force`) and the clicks after it refine it; undo steps back one entry of the history, so undoing
a box brings back what was there before it. Its JSON (``liverclick predict``'s requests, the API, the feedback store) is
``{"clicks": [...], "box": [...]}`` when that says it all (a box, if any, came first), else
``{"inputs": [click or {"box": [...]}, ...]}`` in the order given. Text from outside is parsed by
:func:`parse_json`, which bounds its size, nesting and numbers before and while parsing.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

import numpy as np

MAX_JSON_CHARS = 65_536  # a prompt or request line; a long click history is a few kB
MAX_JSON_DEPTH = 8  # {"inputs": [{"box": [...]}]} nests 4 deep
MAX_NUMBER_CHARS = 40  # digits (and sign, point, exponent) of one number
MAX_INPUTS = 100  # clicks and boxes in one prompt: the runtime replays each one
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')


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
    """An ordered history of inputs (clicks and boxes); what the model sees is the part in force: from the last
    box on (every input when there is no box)."""

    inputs: tuple[PromptInput, ...] = ()

    # --- building ------------------------------------------------------------------------
    def add_click(self, x: float, y: float, positive: bool = True) -> Prompt:
        return Prompt((*self.inputs, Click(float(x), float(y), bool(positive))))

    def add_box(self, x0: float, y0: float, x1: float, y1: float) -> Prompt:
        return Prompt((*self.inputs, Box(float(x0), float(y0), float(x1), float(y1))))

    def undo(self) -> Prompt:
        return Prompt(self.inputs[:-1])

    # --- reading: the history's one rule ---------------------------------------------------
    @property
    def in_force(self) -> tuple[PromptInput, ...]:
        """The inputs that outline the object: from the last box on (a box starts a new object), else all."""
        for k in range(len(self.inputs) - 1, -1, -1):
            if isinstance(self.inputs[k], Box):
                return self.inputs[k:]
        return self.inputs

    @property
    def starts_afresh(self) -> bool:
        """The last input is a box: its outline is predicted without the outline shown before it."""
        return bool(self.inputs) and isinstance(self.inputs[-1], Box)

    @property
    def box(self) -> Box | None:
        """The box in force, if any."""
        first = self.in_force[:1]
        return first[0] if first and isinstance(first[0], Box) else None

    @property
    def clicks(self) -> tuple[Click, ...]:
        """The clicks in force, without those a box stands for."""
        return tuple(i for i in self.in_force if isinstance(i, Click))

    def all_clicks(self) -> tuple[Click, ...]:
        """What the model sees: the box in force as five clicks (if any), then the clicks in force."""
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
        """Raise PromptError with a clear message unless this prompt can outline a lesion on the image."""
        self.check_inputs(width, height)
        if not any(c.positive for c in self.all_clicks()):
            raise PromptError("give at least one click on the lesion (or a box around it)")
        return self

    def check_inputs(self, width: int, height: int) -> Prompt:
        """Raise PromptError unless every input lies on the image (background clicks alone may wait for a lesion
        click: this is all a history without one needs)."""
        _check_count(len(self.inputs))
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
        return self

    # --- (de)serialisation: the request format of `liverclick predict` -------------------
    def to_dict(self) -> dict:
        """``{"clicks", "box"}`` when a box, if any, is the first input; else the ordered ``{"inputs"}`` (the whole
        history: undo after a reopened prompt steps back through it)."""
        boxes = [i for i, item in enumerate(self.inputs) if isinstance(item, Box)]
        if boxes and boxes != [0]:
            return {"inputs": [input_dict(item) for item in self.inputs]}
        out: dict = {"clicks": [c.to_dict() for c in self.clicks]}
        if self.box is not None:
            out["box"] = self.box.to_list()
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Prompt:
        """Build from ``{"clicks": [{"x", "y", "positive"}], "box": [x0, y0, x1, y1]}`` (either or both; the box
        comes first) or from the ordered ``{"inputs": [{"x", "y", "positive"} or {"box": [...]}, ...]}``."""
        if not isinstance(data, dict):
            raise PromptError("a prompt must be a JSON object with 'clicks' and/or 'box', or 'inputs'")
        if "inputs" in data:
            if "clicks" in data or "box" in data:
                raise PromptError("give either 'inputs' (the ordered history) or 'clicks' and 'box', not both")
            items = data["inputs"]
            if not isinstance(items, list):
                raise PromptError("'inputs' must be a list of clicks {x, y, positive} and boxes {box: [...]}")
        else:
            clicks = data.get("clicks") or []
            if not isinstance(clicks, list):
                raise PromptError("'clicks' must be a list of {x, y, positive} objects")
            items = ([{"box": data["box"]}] if data.get("box") is not None else []) + clicks
        _check_count(len(items))
        return cls(tuple(parse_input(item) for item in items))


def input_dict(item: PromptInput) -> dict:
    """One input as JSON: a click ``{x, y, positive}`` or a box ``{box: [x0, y0, x1, y1]}``."""
    return item.to_dict() if isinstance(item, Click) else {"box": item.to_list()}


def parse_input(item) -> PromptInput:
    """One input of a prompt's JSON (:func:`input_dict`), its types checked; PromptError otherwise."""
    if isinstance(item, dict) and "box" in item:
        box = item["box"]
        if not isinstance(box, (list, tuple)) or len(box) != 4:
            raise PromptError("'box' must be a list [x0, y0, x1, y1]")
        return Box(*(_number(v, "box coordinate") for v in box))
    if not isinstance(item, dict) or "x" not in item or "y" not in item:
        raise PromptError(f"each click needs 'x' and 'y', got {_short(item)}")
    positive = item.get("positive", True)
    if not isinstance(positive, bool):
        raise PromptError(f"'positive' must be true or false, got {_short(positive)}")
    return Click(_number(item["x"], "click x"), _number(item["y"], "click y"), positive)


def _check_count(n: int) -> None:
    if n > MAX_INPUTS:
        raise PromptError(f"a prompt holds at most {MAX_INPUTS} clicks and boxes, got {n}: undo some, or clear")


def parse_json(text, what: str = "the prompt"):
    """JSON text from outside (a prompt, a request line) -> its value, refused with a PromptError naming the
    reason when it is too long, nested too deep, has an over-long number or NaN/Infinity, or is not JSON."""
    if not isinstance(text, str):
        raise PromptError(f"{what} must be JSON text, got {type(text).__name__}")
    if len(text) > MAX_JSON_CHARS:
        raise PromptError(f"{what} is {len(text):,} characters long; the limit is {MAX_JSON_CHARS:,}")
    depth, deepest = 0, 0
    for ch in _STRING.sub("", text):
        if ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    if deepest > MAX_JSON_DEPTH:
        raise PromptError(f"{what} nests {deepest} levels deep; the limit is {MAX_JSON_DEPTH}")
    try:
        return json.loads(text, parse_int=_bounded(int), parse_float=_bounded(float), parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise PromptError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None


def _bounded(kind):
    def parse(digits: str):
        if len(digits) > MAX_NUMBER_CHARS:
            raise PromptError(f"a number of {len(digits)} characters; the limit is {MAX_NUMBER_CHARS}")
        return kind(digits)

    return parse


def _no_constant(name: str):
    raise PromptError(f"{name} is not a number a prompt can hold")


def request_frame(request) -> int:
    """The frame of a multi-frame image (DICOM cine, multi-page TIFF) a request (``liverclick predict``'s line,
    an API call's prompt) asks for; 0 by default."""
    frame = request.get("frame", 0) if isinstance(request, dict) else 0
    if not isinstance(frame, int) or isinstance(frame, bool) or frame < 0:
        raise PromptError(f"'frame' must be a whole number from 0, got {_short(frame)}")
    return frame


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PromptError(f"{what} must be a number, got {_short(value)}")
    try:
        return float(value)
    except OverflowError:
        raise PromptError(f"{what} is too large: {_short(value)}") from None


def _short(value, limit: int = 60) -> str:
    """A value as a message shows it: repr, cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _plain(v: float) -> float | int:
    """Write whole numbers as ints in JSON (clicks from a UI are pixel indices)."""
    return int(v) if float(v).is_integer() else float(v)
