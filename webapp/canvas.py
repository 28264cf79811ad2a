"""The canvas view: the ultrasound image in the browser, drawn with its outline, inputs and result at any zoom.

A ``gr.HTML`` component (no separate build): ``static/canvas.js`` draws its value (the tab's key, the picture,
sent once per image or frame, and :func:`webapp.overlay.overlay`'s drawing) and sends every input to the server
function ``canvas_act``, which runs :func:`act` outside Gradio's queue. Inputs made faster than answers come are
queued in the page and sent together, applied here in order; after each answer has been drawn, the page fires
the component's ``settle`` event, so that the rest of the page (downloads, feedback panel) catches up. Any page
can show a session in it: give the component :meth:`webapp.handlers.Viewer.canvas_value` of the session.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import gradio as gr
import numpy as np

from core.imageio import ImageError
from core.prompt import PromptError

from . import session as sess
from .deadline import INTERNAL_ERROR, RequestTimeout
from .overlay import overlay
from .tabs import TabError

STATIC = Path(__file__).resolve().parent / "static"
MAX_ACTIONS = 100  # inputs in one call
NOT_UNDERSTOOD = "the viewer sent a request this server does not understand; reload the page"
IMAGE_CHANGED = "the image changed before these inputs reached the server, so they were dropped; click again"
TEMPLATE = """
<div class="lc-viewer" tabindex="0" aria-label="Ultrasound image: click on the lesion or drag a box around it">
  <div class="lc-toolbar" role="toolbar">
    <span class="lc-modes" role="radiogroup" aria-label="A click adds">
      <button type="button" data-mode="lesion" aria-pressed="true" title="A click adds a lesion point">
        Lesion point (+)</button>
      <button type="button" data-mode="background" aria-pressed="false"
        title="A click adds a background point (also shift-click or right-click)">Background point (&minus;)</button>
      <button type="button" data-mode="box" aria-pressed="false"
        title="Drag a box, or click two opposite corners">Box</button>
    </span>
    <button type="button" data-act="undo" title="Undo the last input (z, Ctrl-Z)">Undo</button>
    <button type="button" data-act="clear" title="Clear every input (Esc)">Clear</button>
    <button type="button" data-act="zoom-out" title="Zoom out (-)">&minus;</button>
    <span class="lc-zoom" title="Image pixels to screen pixels">100%</span>
    <button type="button" data-act="zoom-in" title="Zoom in (+)">+</button>
    <button type="button" data-act="fit" title="Fit the image (0)">Fit</button>
    <button type="button" data-act="save" title="Save the view as PNG">Save view</button>
    <button type="button" data-act="fullscreen" title="Full screen">Full screen</button>
    <span class="lc-busy" aria-live="polite"></span>
  </div>
  <div class="lc-stage"><canvas class="lc-canvas"></canvas></div>
  <div class="lc-message" role="alert"></div>
  <div class="lc-status"></div>
  <div class="lc-result"></div>
</div>
"""


def canvas_component(act_fn: Callable, elem_id: str = "canvas") -> gr.HTML:
    """The canvas, its inputs answered by ``act_fn(data, request)`` (:meth:`webapp.handlers.Viewer.on_canvas`)."""

    def canvas_act(data, request: gr.Request) -> dict:
        return act_fn(data, request)

    return gr.HTML(
        value=None,
        html_template=TEMPLATE,
        css_template=(STATIC / "canvas.css").read_text(encoding="utf-8"),
        js_on_load=(STATIC / "canvas.js").read_text(encoding="utf-8"),
        server_functions=[canvas_act],
        elem_id=elem_id,
        apply_default_css=False,
    )


def picture_url(session: sess.Session) -> str | None:
    """Where the page fetches the session's picture (of its image or frame), once it has been written."""
    return f"gradio_api/file={session.image_file}" if session.image_file else None


def act(viewer, data, username: str | None) -> dict:
    """Apply a canvas's inputs to its tab, in order: ``{"key": tab, "picture": the picture they were made on (its
    URL), "actions": [{"kind": "click", "x", "y", "positive"} | {"kind": "box", "box": [x0, y0, x1, y1]} |
    {"kind": "undo"} | {"kind": "clear"}, ...]}``. Each click is a network pass fed the outline before it.
    Answers ``{"overlay": ...}`` for the session after the inputs (up to the first that failed, whose message the
    overlay carries), or ``{"error": ...}``; inputs made on a picture the tab no longer shows (another image or
    frame opened meanwhile) are refused. ``viewer``: a :class:`webapp.handlers.Viewer`."""
    if not isinstance(data, dict) or not isinstance(data.get("key"), str) or not isinstance(data.get("actions"), list):
        return {"error": NOT_UNDERSTOOD}
    if len(data["actions"]) > MAX_ACTIONS:
        return {"error": f"at most {MAX_ACTIONS} inputs at once"}
    try:
        session = viewer.tabs.get(data["key"], username)
    except TabError as exc:
        return {"error": str(exc)}
    message = None
    with viewer.tabs.turn(session.key):
        session = viewer.tabs.latest(session)
        if data.get("picture") != picture_url(session):
            return {"error": IMAGE_CHANGED}
        for action in data["actions"]:
            try:
                session = viewer.deadline.run(lambda s=session, a=action: apply(viewer.segmenter, s, a))
            except (ImageError, PromptError, RequestTimeout) as exc:
                message = str(exc)
            except Exception:
                logging.getLogger("liverclick.webapp").exception("a canvas input failed")
                message = INTERNAL_ERROR
            if message:
                break
        session = viewer.tabs.put(session)
    return {"overlay": overlay(session, viewer.segmenter, message)}


def apply(segmenter, session: sess.Session, action) -> sess.Session:
    """One canvas input (see :func:`act`) applied to ``session``."""
    kind = action.get("kind") if isinstance(action, dict) else None
    if kind == "click":
        x, y = _numbers([action.get("x"), action.get("y")])
        return sess.click(segmenter, session, x, y, bool(action.get("positive", True)))
    if kind == "box":
        corners = action.get("box")
        if not isinstance(corners, list) or len(corners) != 4:
            raise PromptError("a box needs four numbers [x0, y0, x1, y1]")
        return sess.box(segmenter, session, *_numbers(corners))
    if kind == "undo":
        return sess.undo(session)
    if kind == "clear":
        return sess.clear(session)
    raise PromptError(f"unknown input {str(kind)[:40]!r}")


def _numbers(values: list) -> list[float]:
    """Finite numbers (an input's coordinates), or a PromptError."""
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in values):
        raise PromptError("an input's coordinates must be finite numbers")
    return [float(v) for v in values]
