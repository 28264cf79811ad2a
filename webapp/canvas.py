"""The canvas view: the ultrasound image in the browser, drawn with its outline, inputs and result at any zoom.

A ``gr.HTML`` component (no separate build): ``static/canvas.js`` (the view and its gestures) and
``static/answers.js`` (the server's answers), one script, draw its value (:func:`canvas_value`: the tab's key, the
picture, sent once per image or frame, and :func:`webapp.overlay.overlay`'s drawing) and send the inputs made on it
to the server function ``canvas_act``, outside Gradio's queue: one call, whose answer is the tab's new drawing,
words included. Inputs made faster than answers come wait in the page and go together in the next call, applied in
order. The downloads (the mask, the report) are made when asked for, by ``canvas_file``. The page keeps no prompt
of its own: the server holds the tab (webapp.tabs) and answers with what to draw.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import gradio as gr
from starlette.responses import JSONResponse

from .tab import Tab
from .text import CANVAS, NOT_UNDERSTOOD

STATIC = Path(__file__).resolve().parent / "static"
SCRIPTS = ("canvas.js", "answers.js")  # one script: the view and its gestures, then the server's answers
MAX_ACTIONS = 100  # inputs in one call
DOWNLOADS = ("mask", "report")
TEMPLATE = """
<div class="lc-viewer" tabindex="0" aria-label="Ultrasound image: click on the lesion or drag a box around it"
  {words}>
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
    <button type="button" data-download="mask" title="The outline as a PNG mask (0/255, the image's size)">
      Mask (PNG)</button>
    <button type="button" data-download="report" title="The prompt, probabilities and measurements">
      Report (JSON)</button>
    <span class="lc-busy" aria-live="polite"></span>
  </div>
  <div class="lc-stage"><canvas class="lc-canvas"></canvas></div>
  <div class="lc-message" role="alert"></div>
  <div class="lc-status"></div>
  <div class="lc-review"></div>
  <div class="lc-result"></div>
</div>
""".replace("{words}", " ".join(f'data-{name}="{html.escape(words)}"' for name, words in CANVAS.items()))


class CanvasError(ValueError):
    """A call the canvas's page would never make: the message says so."""


def canvas_component(act: Callable, download: Callable, elem_id: str = "canvas") -> gr.HTML:
    """The canvas, its inputs answered by ``act(data, request)`` and its downloads by ``download(data, request)``
    (:meth:`webapp.handlers.Viewer.on_canvas`, :meth:`webapp.handlers.Viewer.on_download`)."""

    # Answered as JSONResponse, which Gradio hands back as it is: FastAPI would otherwise walk every point of the
    # outline through jsonable_encoder in Python (4.6 ms against 0.1 ms for json.dumps, on a BUSI example's answer).
    def canvas_act(data, request: gr.Request) -> JSONResponse:
        return JSONResponse(act(data, request))

    def canvas_file(data, request: gr.Request) -> JSONResponse:
        return JSONResponse(download(data, request))

    return gr.HTML(
        value=None,
        html_template=TEMPLATE,
        css_template=(STATIC / "canvas.css").read_text(encoding="utf-8"),
        js_on_load="\n".join((STATIC / name).read_text(encoding="utf-8") for name in SCRIPTS),
        server_functions=[canvas_act, canvas_file],
        elem_id=elem_id,
        apply_default_css=False,
    )


def canvas_value(tab: Tab, drawing: dict) -> dict:
    """What the canvas shows: the tab's key, its picture (sent once per image or frame) and ``drawing`` (the
    overlay)."""
    image = None
    if tab.image is not None:
        image = {"url": picture_url(tab), "width": tab.image.width, "height": tab.image.height, "name": tab.name}
    return {"key": tab.key, "image": image, "overlay": drawing}


def picture_url(tab: Tab) -> str | None:
    """Where the page fetches the tab's picture (of its image or frame), once it has been written."""
    return f"gradio_api/file={tab.image_file}" if tab.image_file else None


def read_act(data) -> tuple[str, str | None, list]:
    """A ``canvas_act`` call: ``{"key": the tab, "picture": the picture the inputs were made on (its URL), "actions":
    [click {x, y, positive} | box {box: [x0, y0, x1, y1]} | "undo" | "clear", ...]}`` -> (key, picture, actions)."""
    if not isinstance(data, dict) or not isinstance(data.get("key"), str) or not isinstance(data.get("actions"), list):
        raise CanvasError(NOT_UNDERSTOOD)
    if len(data["actions"]) > MAX_ACTIONS:
        raise CanvasError(f"at most {MAX_ACTIONS} inputs at once")
    picture = data.get("picture")
    return data["key"], picture if isinstance(picture, str) else None, data["actions"]


def read_download(data) -> tuple[str, str]:
    """A ``canvas_file`` call: ``{"key": the tab, "kind": "mask" | "report"}`` -> (key, kind)."""
    if not isinstance(data, dict) or not isinstance(data.get("key"), str) or data.get("kind") not in DOWNLOADS:
        raise CanvasError(NOT_UNDERSTOOD)
    return data["key"], data["kind"]
