"""The viewer's event handlers as plain methods of :class:`Viewer`: Gradio calls them, tests call them directly.

Each page event is one method that takes the session and the widgets' values and returns the outputs the
layout (:mod:`webapp.app`) wires to it, in order. The session handlers of :mod:`webapp.session` do the work,
the canvas (:mod:`webapp.canvas`) draws the image and :mod:`webapp.overlay`'s drawing of the session. The
canvas sends its inputs to :meth:`Viewer.act`, outside Gradio's queue; a tab's newest session is kept in
:class:`webapp.tabs.Tabs`, where every handler starts. Model work runs on a few worker threads under a time
limit; an error meant for the user is shown in the page, anything else is logged and answered without details,
and the session stays as it was. ``segment`` and ``feedback`` are the public API (``gr.api``):
Gradio reads their types from the annotations, so this module keeps them evaluated (no
``from __future__ import annotations``).
"""

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
from gradio import FileData

from core.imageio import ImageError, UltrasoundImage, load_image, load_outline
from core.measure import measure
from core.prompt import Prompt, PromptError, parse_json, request_frame
from core.runtime import Prediction, Predictor
from core.serialize import FEEDBACK_ANSWER, SEGMENT_ANSWER, prediction_json

from . import session as sess
from .canvas import act, picture_url
from .deadline import INTERNAL_ERROR, TIME_LIMIT_S, Deadline, RequestTimeout
from .feedback.record import FeedbackError, StoreUnavailable
from .feedback.store import FeedbackStore
from .files import Workspace, signed_in
from .overlay import overlay
from .tabs import Tabs

SESSION_TTL_S = 3 * 3600  # a tab idle this long gives its image and prompt back
SESSION_CAPACITY = 500  # most tabs held at once (each holds one prepared image)
IMAGE_MAX_SIDE = 4096  # the picture sent to the browser, once per image or frame: larger ones are reduced
PNG_FAST = [cv2.IMWRITE_PNG_COMPRESSION, 1]
API_INTERNAL_ERROR = "something went wrong on the server (the details are in its log); nothing was stored"
NO_STORE = "this server keeps no feedback: it was started without --feedback-db"
STORE_DOWN = "the feedback database cannot be reached right now, so nothing was saved; please try again"

log = logging.getLogger("liverclick.webapp")


class Viewer:
    """The page's handlers for one model (and, for reviewer feedback, one store); one method an event.

    A page event returns the outputs its event updates (see :mod:`webapp.app`): every event that changes the
    session returns :meth:`present`'s six outputs (state, canvas, the two downloads, the feedback panel's Submit
    button and note). The canvas's inputs go to :meth:`on_canvas`.
    """

    def __init__(
        self,
        segmenter: Predictor,
        store: FeedbackStore | None = None,
        time_limit_s: float = TIME_LIMIT_S,
        workers: int = 2,
        public: tuple[Path, ...] = (),
    ) -> None:
        self.segmenter, self.store = segmenter, store
        self.public = public  # folders of files anyone may open (the examples)
        self.workspace = Workspace()
        self.deadline = Deadline(time_limit_s, workers)
        self.tabs = Tabs(SESSION_CAPACITY, SESSION_TTL_S)

    # --- what the page shows ---------------------------------------------------------------------
    def review_widgets(self, session: sess.Session, message: str | None = None) -> tuple:
        """The feedback panel's Submit button (enabled for an unsaved prediction) and its note."""
        submit = gr.Button(interactive=session.prediction is not None and session.feedback_id is None)
        note = sess.review_note(session)
        return submit, f"**Not saved:** {message}\n\n{note}" if message else note

    def canvas_value(self, session: sess.Session, message: str | None = None) -> dict:
        """What the canvas shows: the tab's key, its picture (sent once per image or frame) and the overlay."""
        image = None
        if session.image is not None:
            image = {
                "url": picture_url(session),
                "width": session.image.width,
                "height": session.image.height,
                "name": session.name,
            }
        return {"key": session.key, "image": image, "overlay": overlay(session, self.segmenter, message)}

    def present(self, session: sess.Session, message: str | None = None) -> tuple:
        """Every output for a session: state, canvas (with ``message``, an error, shown in it), downloads, review."""
        return (session, self.canvas_value(session, message), *self.downloads(session))

    def downloads(self, session: sess.Session) -> tuple:
        """The mask and report downloads of the outline shown, and the feedback panel's widgets."""
        p = session.prediction
        if p is None:
            idle = gr.DownloadButton(value=None, interactive=False)
            return idle, idle, *self.review_widgets(session)
        report = json.dumps(sess.report(session, self.segmenter), indent=2).encode()
        mask_png = _encode(".png", p.mask.astype(np.uint8) * 255)
        mask = self.workspace.write_served(session.key, f"{session.name}_mask.png", mask_png)
        report_file = self.workspace.write_served(session.key, f"{session.name}_report.json", report)
        return (
            gr.DownloadButton(value=mask, interactive=True),
            gr.DownloadButton(value=report_file, interactive=True),
            *self.review_widgets(session),
        )

    def shown(self, session: sess.Session) -> sess.Session:
        """``session`` with its picture written for the browser (once per image or frame) and held as its tab's."""
        if session.image is not None and not session.image_file:
            pixels = session.image.pixels
            scale = IMAGE_MAX_SIDE / max(pixels.shape)
            if scale < 1:
                size = (round(pixels.shape[1] * scale), round(pixels.shape[0] * scale))
                pixels = cv2.resize(pixels, size, interpolation=cv2.INTER_AREA)
            path = self.workspace.write_served(session.key, "image.png", _encode(".png", pixels, PNG_FAST))
            session = replace(session, image_file=path)
        return self.tabs.put(session)

    def attempt(self, session: sess.Session, action: Callable[[], sess.Session]) -> tuple:
        """Run a model handler within the time limit, one at a time per tab; on failure keep the session as it
        was and say why, in the page and in a toast."""
        session = self.tabs.latest(session)
        try:
            with self.tabs.turn(session.key):
                return self.present(self.shown(self.deadline.run(action)))
        except (ImageError, PromptError, FeedbackError, RequestTimeout) as exc:
            message = str(exc)
        except Exception:
            log.exception("a viewer request failed")
            message = INTERNAL_ERROR
        gr.Warning(message)
        return self.present(self.tabs.latest(session), message)

    def forget(self, session: sess.Session) -> None:
        """A tab gone (its state expired): its session and files."""
        self.tabs.drop(session.key)
        self.workspace.remove(session)

    # --- the page's events -----------------------------------------------------------------------
    def on_file(self, session: sess.Session, path: str | None, request: gr.Request) -> tuple:
        """An upload (or its removal), read into memory and removed from disk at once: the outputs, the frame slider."""
        session = self.tabs.latest(session)
        if path is None:
            blank = sess.Session(key=session.key, version=session.version + 1)
            return (*self.present(self.tabs.put(blank)), gr.Slider(visible=False))

        def work() -> sess.Session:
            data, name = self.workspace.read_upload(path, self.public)
            key = self.workspace.new_key(request.username)
            return sess.open_image(self.segmenter, session, data, name=name, key=key)

        out = self.attempt(session, work)
        image = out[0].image
        n = image.n_frames if image is not None else 1
        frames = gr.Slider(minimum=0, maximum=max(1, n - 1), value=image.frame if image else 0, visible=n > 1)
        return (*out, frames)

    def on_frame(self, session: sess.Session, frame: float) -> tuple:
        session = self.tabs.latest(session)
        return self.attempt(session, lambda: sess.choose_frame(self.segmenter, session, int(frame)))

    def on_settle(self, session: sess.Session) -> tuple:
        """The canvas has drawn the answer to its inputs: the page's other outputs catch up (state, downloads,
        review)."""
        session = self.tabs.latest(session)
        return (session, *self.downloads(session))

    def on_canvas(self, data, request: gr.Request) -> dict:
        """The canvas's server function: :meth:`act` for the signed-in user (Gradio hands server functions the
        HTTP request itself, and answers them only for a signed-in user when the server has logins)."""
        return act(self, data, signed_in(request.scope))

    def on_submit(
        self,
        session: sess.Session,
        verdict: str | None,
        corrected: str | None,
        rating: int | None,
        accepted: bool,
        comment: str | None,
        request: gr.Request,
    ) -> tuple:
        """Save the review of the current outline; the form is cleared once the store has acknowledged it.
        Returns the state, Submit, the note and the five form widgets."""
        session = self.tabs.latest(session)
        try:
            review = sess.Review.from_form(verdict, corrected, rating, accepted, comment)
            saved = sess.submit_review(self.the_store(), self.segmenter, session, request.username, review)
        except StoreUnavailable:
            log.exception("feedback was not saved")
            message = STORE_DOWN
        except FeedbackError as exc:
            message = str(exc)
        except Exception:
            log.exception("saving feedback failed")
            message = INTERNAL_ERROR
        else:
            saved = self.tabs.put(saved)
            blank = (None, gr.Dropdown(value=None, visible=False), None, False, "")
            return (saved, *self.review_widgets(saved), *blank)
        gr.Warning(message)
        return (session, *self.review_widgets(session, message), *(gr.skip(),) * 5)

    @staticmethod
    def on_verdict(verdict: str | None) -> gr.Dropdown:
        return gr.Dropdown(visible=verdict == "disagree")

    @staticmethod
    def on_load(request: gr.Request) -> str:
        if request.username:
            return f"Reviewing as **{request.username}**."
        return f"Not signed in: {sess.LOGIN_NEEDED}."

    # --- the API ---------------------------------------------------------------------------------
    def the_store(self) -> FeedbackStore:
        if self.store is None:
            raise FeedbackError(NO_STORE)
        return self.store

    def answer(
        self, image: FileData, prompt: str, previous_mask: FileData | None = None
    ) -> tuple[UltrasoundImage, Prompt, Prediction]:
        """Read an API call's upload (removed from disk at once; the prompt's frame) and answer its click history
        (one pass with the previous outline when one is uploaded), within the time limit."""

        def work() -> tuple[UltrasoundImage, Prompt, Prediction]:
            request = parse_json(prompt)
            data, name = self.workspace.read_upload(_file_path(image))
            picture = load_image(data, frame=request_frame(request), name=name)
            p = Prompt.from_dict(request)
            previous = None
            if previous_mask is not None:
                outline, _ = self.workspace.read_upload(_file_path(previous_mask))
                previous = load_outline(outline, picture.width, picture.height)
            return picture, p, self.segmenter.replay(picture, p, previous)

        return self.deadline.run(work)

    def segment(
        self, image: FileData, prompt: str, request: gr.Request, previous_mask: FileData | None = None
    ) -> tuple[FileData, dict]:
        """Segment and classify the lesion a prompt points at.

        image: an ultrasound image (PNG, JPEG, BMP, TIFF or DICOM). prompt: JSON in the request format of
        `liverclick predict`, e.g. {"clicks": [{"x": 120, "y": 88, "positive": true}], "box": [x0, y0, x1, y1],
        "frame": 0}; the clicks are an ordered history and the answer is the outline after the last of them.
        previous_mask (optional): the outline before the last click (PNG, 0/255, the image's size), which makes
        it one pass. Returns the mask (PNG, 0/255, at the image's own size) and the probabilities.
        """
        with api_errors("segment"):
            picture, _, p = self.answer(image, prompt, previous_mask)
            png = _encode(".png", p.mask.astype(np.uint8) * 255)
            mask = self.workspace.write_once(request.username, "mask.png", png)
            measurements = measure(p.mask, picture.pixel_spacing_mm)
            model = {"name": self.segmenter.name, "version": self.segmenter.version}
            result = prediction_json(p, SEGMENT_ANSWER, measurements=measurements, model=model)
        return FileData(path=mask), result

    def feedback(
        self,
        image: FileData,
        prompt: str,
        agree: bool,
        outline_rating: int,
        accepted: bool,
        request: gr.Request,
        corrected_class: str | None = None,
        comment: str = "",
        request_id: str | None = None,
    ) -> dict:
        """Store a reviewer's feedback on the model's answer to a prompt (needs a login).

        image and prompt: as for /segment, with the reviewer's final prompt (their corrective clicks included);
        the server predicts again, so the stored outline and probabilities are the model's own. agree: whether
        the predicted class is right; corrected_class: the right class when not (one of the model's classes);
        outline_rating: 1 (poor) to 5 (exact); accepted: the outline is good enough to train on; comment: free
        text; request_id: the client's id for this write (e.g. a UUID): a retry with the same id stores nothing
        new and returns the first record's id. Returns {"id": the record's id, once stored, "predicted_class",
        "class_probs", "area_px"}.
        """
        with api_errors("feedback"):
            store = self.the_store()
            if not request.username:
                raise FeedbackError(sess.LOGIN_NEEDED)
            picture, p, prediction = self.answer(image, prompt)
            review = sess.Review(agree, outline_rating, accepted, corrected_class, comment)
            record = sess.feedback_record(self.segmenter, picture, p, prediction, request.username, review, request_id)
            feedback_id = store.add(record)
        return {"id": feedback_id, **prediction_json(prediction, FEEDBACK_ANSWER)}


def _encode(ext: str, image: np.ndarray, params: list[int] | None = None) -> bytes:
    """PNG bytes of a grayscale image."""
    ok, data = cv2.imencode(ext, image, params or [])
    if not ok:
        raise RuntimeError(f"cannot encode the image as {ext}")
    return data.tobytes()


@contextmanager
def api_errors(endpoint: str) -> Iterator[None]:
    """An API call's bad input -> its message for the client; anything else is logged and answered without
    details. Either way the server goes on serving, and expected refusals print no traceback."""
    try:
        yield
    except gr.Error:
        raise
    except StoreUnavailable:
        log.exception("/%s: feedback was not saved", endpoint)
        raise _refusal(STORE_DOWN) from None
    except (ImageError, PromptError, FeedbackError, RequestTimeout) as exc:
        raise _refusal(str(exc)) from None
    except Exception:
        log.exception("/%s failed", endpoint)
        raise _refusal(API_INTERNAL_ERROR) from None


def _refusal(message: str) -> gr.Error:
    return gr.Error(message, print_exception=False)


def _file_path(upload) -> str:
    """The server path of an API client's upload (a FileData or its dict)."""
    return upload.get("path") if isinstance(upload, dict) else getattr(upload, "path", upload)
