"""The viewer's handlers as plain methods of :class:`Viewer`: Gradio calls them, tests call them directly.

Every tab's state is held by :class:`webapp.tabs.Tabs`, by key; the page keeps the key alone (``gr.State``). The
canvas's inputs come to :meth:`Viewer.on_canvas` (a server function, outside Gradio's queue), which answers with the
tab's whole drawing: one round trip per input. The page's events (an upload, a frame, a submitted review, a review
case: webapp.review.panel) return the key and the canvas's new value. The functions of :mod:`webapp.tab` do the
work; model work runs on a few worker threads under a time limit; an error meant for the user is shown in the
page, anything else is logged and answered without details, and the tab stays as it was.
"""

import base64
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import cv2
import gradio as gr
import numpy as np

from core.imageio import ImageError
from core.prompt import PromptError
from core.runtime import Predictor

from .canvas import CanvasError, canvas_value, picture_url, read_act, read_download
from .deadline import TIME_LIMIT_S, Deadline, OneStepAtATime, RequestTimeout
from .feedback.record import FeedbackError, StoreUnavailable
from .feedback.store import FeedbackStore
from .files import Workspace, signed_in
from .overlay import overlay
from .tab import CaseRef, Review, Tab, apply, choose_frame, open_image, report, submit_review
from .tabs import TabError, Tabs
from .text import CASE_LEFT, IMAGE_CHANGED, INTERNAL_ERROR, NO_DOWNLOAD, NO_STORE, STORE_DOWN, signed_in_line

TAB_TTL_S = 3 * 3600  # a tab idle this long gives its image and prompt back
TAB_CAPACITY = 500  # most tabs held at once (each holds one prepared image)
IMAGE_MAX_SIDE = 4096  # the picture sent to the browser, once per image or frame: larger ones are reduced
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]
USER_ERRORS = (ImageError, PromptError, FeedbackError, RequestTimeout, TabError)

log = logging.getLogger("liverclick.webapp")


class Viewer:
    """The page's handlers for one model (and, for reviewer feedback, one store); one method an event."""

    def __init__(
        self,
        predictor: Predictor,
        store: FeedbackStore | None = None,
        *,
        time_limit_s: float = TIME_LIMIT_S,
        workers: int = 2,
        public: tuple[Path, ...] = (),
    ) -> None:
        self.predictor, self.store = OneStepAtATime(predictor), store
        self.public = public  # folders of files anyone may open (the examples)
        self.workspace = Workspace()
        self.deadline = Deadline(time_limit_s, workers)
        self.tabs = Tabs(TAB_CAPACITY, TAB_TTL_S)

    # --- what the page shows ---------------------------------------------------------------------
    def drawing(self, tab: Tab, message: str | None = None) -> dict:
        """The canvas's drawing of ``tab`` (:func:`webapp.overlay.overlay`), with ``message`` shown in it."""
        return overlay(tab, self.predictor, message, reviews=self.store is not None)

    def outputs(self, tab: Tab, message: str | None = None) -> tuple[str, dict]:
        """A page event's outputs: the tab's key (the page's state) and the canvas's value."""
        return tab.key, canvas_value(tab, self.drawing(tab, message))

    def attempt(self, key: str, username: str | None, change: Callable[[Tab], Tab]) -> tuple[Tab, str | None]:
        """Apply ``change`` to tab ``key`` within the time limit and hold the result with its picture written; on
        failure keep the tab as it was and say why (in the page, and in a toast)."""
        tab = Tab(key=key)
        try:
            with self._held(key, username) as tab:
                return self.shown(self.deadline.run(lambda: change(tab), owner=username or tab.key)), None
        except USER_ERRORS as exc:
            message = str(exc)
        except Exception:
            log.exception("a viewer request failed")
            message = INTERNAL_ERROR
        gr.Warning(message)
        return tab, message

    @contextmanager
    def _held(self, key: str, username: str | None) -> Iterator[Tab]:
        """Tab ``key`` held for a change, or a new tab when the page has none yet (or its tab expired)."""
        try:
            self.tabs.get(key, username)
        except TabError:
            key = self.tabs.put(Tab(key=self.workspace.new_key(username))).key
        with self.tabs.hold(key, username) as tab:
            yield tab

    def shown(self, tab: Tab) -> Tab:
        """``tab`` with its picture written for the browser (once per image or frame), held as its key's newest."""
        if tab.image is not None and not tab.image_file:
            pixels = tab.image.pixels
            scale = IMAGE_MAX_SIDE / max(pixels.shape)
            if scale < 1:
                size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
                pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
            path = self.workspace.write_served(tab.key, "image.png", encode(".png", pixels, PNG_FAST))
            tab = replace(tab, image_file=path)
        return self.tabs.put(tab)

    def forget(self, key: str) -> None:
        """A page gone (its state expired): its tab and files."""
        if key:
            self.tabs.drop(key)
            self.workspace.remove(Tab(key=key))

    # --- the page's events -----------------------------------------------------------------------
    def on_file(self, key: str, path: str | None, request: gr.Request) -> tuple:
        """An upload (or its removal), read into memory and removed from disk at once: the key, the canvas and the
        frame slider."""

        def opened(tab: Tab) -> Tab:
            if path is None:
                return Tab(key=tab.key)
            data, name = self.workspace.read_upload(path, self.public)
            return open_image(self.predictor, tab, data, name=name)

        left = self._unsaved_case(key, request.username)
        tab, message = self.attempt(key, request.username, opened)
        if left is not None and message is None:  # never silently: its review would go as plain feedback
            message = CASE_LEFT.format(k=left.position + 1, name=left.session)
            gr.Warning(message)
        image = tab.image
        n = image.n_frames if image is not None else 1
        frames = gr.Slider(minimum=0, maximum=max(1, n - 1), value=image.frame if image else 0, visible=n > 1)
        return (*self.outputs(tab, message), frames)

    def _unsaved_case(self, key: str, username: str | None) -> CaseRef | None:
        """The review case tab ``key`` shows, if its review is not saved."""
        try:
            tab = self.tabs.get(key, username)
        except TabError:
            return None
        return tab.case if tab.case is not None and tab.feedback_id is None else None

    def on_frame(self, key: str, frame: float, request: gr.Request) -> tuple:
        return self.outputs(
            *self.attempt(key, request.username, lambda tab: choose_frame(self.predictor, tab, int(frame)))
        )

    def on_submit(
        self,
        key: str,
        verdict: str | None,
        corrected: str | None,
        rating: int | None,
        accepted: bool,
        comment: str | None,
        request: gr.Request,
    ) -> tuple:
        """Save the review of the outline shown; the form is cleared once the store has acknowledged it. Returns
        the canvas (which says whether the outline's review is saved) and the five form widgets."""
        try:
            review = Review.from_form(verdict, corrected, rating, accepted, comment)
            with self.tabs.hold(key, request.username) as tab:
                saved = submit_review(self.the_store(), self.predictor, tab, request.username, review)
                tab = self.tabs.put(saved)
        except StoreUnavailable:
            log.exception("feedback was not saved")
            message = STORE_DOWN
        except USER_ERRORS as exc:
            message = str(exc)
        except Exception:
            log.exception("saving feedback failed")
            message = INTERNAL_ERROR
        else:
            blank = (None, gr.Dropdown(value=None, visible=False), None, False, "")
            return (self.outputs(tab)[1], *blank)
        gr.Warning(message)
        return (self._canvas_of(key, request.username, f"Not saved: {message}"), *(gr.skip(),) * 5)

    def _canvas_of(self, key: str, username: str | None, message: str) -> dict:
        """The canvas showing tab ``key`` as it is, with ``message``; a blank one if the tab is gone."""
        try:
            tab = self.tabs.get(key, username)
        except TabError:
            tab = Tab(key=key)
        return self.outputs(tab, message)[1]

    @staticmethod
    def on_verdict(verdict: str | None) -> gr.Dropdown:
        return gr.Dropdown(visible=verdict == "disagree")

    @staticmethod
    def on_load(request: gr.Request) -> str:
        return signed_in_line(request.username)

    def the_store(self) -> FeedbackStore:
        if self.store is None:
            raise FeedbackError(NO_STORE)
        return self.store

    # --- the canvas's server functions -----------------------------------------------------------
    def on_canvas(self, data, request: gr.Request) -> dict:
        """``canvas_act``: :meth:`act` for the signed-in user (Gradio hands server functions the HTTP request itself,
        and answers them only for a signed-in user when the server has logins)."""
        return self.act(data, signed_in(request.scope))

    def on_download(self, data, request: gr.Request) -> dict:
        """``canvas_file``: :meth:`download` for the signed-in user."""
        return self.download(data, signed_in(request.scope))

    def act(self, data, username: str | None) -> dict:
        """The canvas's inputs (webapp.canvas.read_act) applied to their tab in order, each a network pass fed the
        outline before it, up to the first that fails (its message goes with the drawing); the tab's drawing,
        ``{"overlay": ...}``, or ``{"error": ...}``. Inputs made on a picture the tab no longer shows are refused."""
        try:
            key, picture, actions = read_act(data)
            with self.tabs.hold(key, username) as tab:
                if picture != picture_url(tab):
                    return {"error": IMAGE_CHANGED}
                tab, message = self._apply(tab, actions, owner=username or key)
                tab = self.tabs.put(tab)
        except (CanvasError, TabError) as exc:
            return {"error": str(exc)}
        return {"overlay": self.drawing(tab, message)}

    def _apply(self, tab: Tab, actions: list, *, owner: str) -> tuple[Tab, str | None]:
        """``tab`` after ``actions``, each within the time limit and in ``owner``'s turn (webapp.deadline), up to the
        first that failed, and why it did."""
        for action in actions:
            try:
                tab = self.deadline.run(lambda t=tab, a=action: apply(self.predictor, t, a), owner=owner)
            except (ImageError, PromptError, RequestTimeout) as exc:
                return tab, str(exc)
            except Exception:
                log.exception("a canvas input failed")
                return tab, INTERNAL_ERROR
        return tab, None

    def download(self, data, username: str | None) -> dict:
        """The outline shown as a PNG mask (0/255, the image's size) or its JSON report, made when asked for:
        ``{"name", "type", "base64"}``, or ``{"error": ...}``."""
        try:
            key, kind = read_download(data)
            tab = self.tabs.get(key, username)
        except (CanvasError, TabError) as exc:
            return {"error": str(exc)}
        if tab.prediction is None:
            return {"error": NO_DOWNLOAD}
        if kind == "mask":
            name, mime, content = "mask.png", "image/png", encode(".png", tab.prediction.mask.astype(np.uint8) * 255)
        else:
            content = json.dumps(report(tab, self.predictor), indent=2).encode()
            name, mime = "report.json", "application/json"
        return {"name": f"{tab.name}_{name}", "type": mime, "base64": base64.b64encode(content).decode()}


def encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    """PNG bytes of a grayscale image."""
    ok, data = cv2.imencode(ext, image, params or [])
    if not ok:
        raise RuntimeError(f"cannot encode the image as {ext}")
    return data.tobytes()
