"""The viewer's event handlers as plain methods of :class:`Viewer`: Gradio calls them, tests call them directly.

Each page event is one method that takes the session and the widgets' values and returns the outputs the
layout (:mod:`webapp.app`) wires to it, in order. The session handlers of :mod:`webapp.session` do the work,
:mod:`webapp.render` draws the view. Model work runs on a few worker threads under a time limit; an error
meant for the user is shown in the page (and in a toast), anything else is logged and answered without
details, and the session stays as it was. ``segment`` and ``feedback`` are the public API (``gr.api``):
Gradio reads their types from the annotations, so this module keeps them evaluated (no
``from __future__ import annotations``).
"""

import concurrent.futures
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

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
from .feedback.record import FeedbackError, StoreUnavailable
from .feedback.store import FeedbackStore
from .files import Workspace
from .render import render

# The slowest request measured on a 2-core CPU (paper-size x1.0 network, 40 MP PNG: read 0.6 s, predict up to
# 1.5 s) takes about 2 s; the limit leaves ten times that for a busy machine and stops only runaway work.
TIME_LIMIT_S = 20.0
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
INTERNAL_ERROR = "Something went wrong on the server (the details are in its log). The session is unchanged."
API_INTERNAL_ERROR = "something went wrong on the server (the details are in its log); nothing was stored"
NO_STORE = "this server keeps no feedback: it was started without --feedback-db"
STORE_DOWN = "the feedback database cannot be reached right now, so nothing was saved; please try again"

log = logging.getLogger("liverclick.webapp")
T = TypeVar("T")


class RequestTimeout(RuntimeError):
    """A request ran past the time limit; its answer is dropped."""


class Deadline:
    """Runs model work on ``workers`` threads and stops waiting for it after ``seconds`` (waiting for a worker counts).

    A prediction cannot be interrupted from outside: one past the limit finishes on its worker and its answer
    is dropped. As the workers are few, abandoned work never occupies more than ``workers`` cores.
    """

    def __init__(self, seconds: float, workers: int) -> None:
        self.seconds = seconds
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="liverclick-model")

    def run(self, work: Callable[[], T]) -> T:
        future = self._pool.submit(work)
        try:
            return future.result(timeout=self.seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()  # never starts if it is still waiting for a worker
            raise RequestTimeout(
                f"the request took longer than the server's limit of {self.seconds:g} s and was given up; "
                "a smaller image may help"
            ) from None


class Viewer:
    """The page's handlers for one model (and, for reviewer feedback, one store); one method an event.

    A method returns the outputs its event updates (see :mod:`webapp.app`): every model event returns
    :meth:`present`'s ten outputs (state, view, status, classes, malignancy, lesion, the two downloads, the
    feedback panel's Submit button and note).
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

    # --- what the page shows ---------------------------------------------------------------------
    def review_widgets(self, session: sess.Session, message: str | None = None) -> tuple:
        """The feedback panel's Submit button (enabled for an unsaved prediction) and its note."""
        submit = gr.Button(interactive=session.prediction is not None and session.feedback_id is None)
        note = sess.review_note(session)
        return submit, f"**Not saved:** {message}\n\n{note}" if message else note

    def present(self, session: sess.Session, mode: str, message: str | None = None) -> tuple:
        """Every output for a session: state, view, status, classes, malignancy, lesion table, downloads, review."""
        status = sess.guidance(session, mode)
        if message:
            status = f"**{message[0].upper()}{message[1:]}**\n\n{status}"
        view = None
        if session.image is not None:
            view = self.workspace.write_served(session.key, "view.jpg", _encode(".jpg", render(session)))
        p = session.prediction
        if p is None:
            idle = gr.DownloadButton(value=None, interactive=False)
            return session, view, status, None, None, "", idle, idle, *self.review_widgets(session)
        report = json.dumps(sess.report(session, self.segmenter), indent=2).encode()
        mask_png = _encode(".png", p.mask.astype(np.uint8) * 255)
        mask = self.workspace.write_served(session.key, f"{session.name}_mask.png", mask_png)
        report_file = self.workspace.write_served(session.key, f"{session.name}_report.json", report)
        return (
            session,
            view,
            status,
            p.class_probs,
            sess.malignancy(p),
            sess.measurement_lines(session, self.segmenter.provider),
            gr.DownloadButton(value=mask, interactive=True),
            gr.DownloadButton(value=report_file, interactive=True),
            *self.review_widgets(session),
        )

    def attempt(self, session: sess.Session, mode: str, action: Callable[[], sess.Session]) -> tuple:
        """Run a model handler within the time limit; on failure keep the session as it was and say why,
        in the page and in a toast."""
        try:
            return self.present(self.deadline.run(action), mode)
        except (ImageError, PromptError, FeedbackError, RequestTimeout) as exc:
            message = str(exc)
        except Exception:
            log.exception("a viewer request failed")
            message = INTERNAL_ERROR
        gr.Warning(message)
        return self.present(session, mode, message)

    # --- the page's events -----------------------------------------------------------------------
    def on_file(self, session: sess.Session, mode: str, path: str | None, request: gr.Request) -> tuple:
        """An upload (or its removal), read into memory and removed from disk: the outputs and the frame slider."""
        if path is None:
            return (*self.present(sess.Session(key=session.key), mode), gr.Slider(visible=False))

        def work() -> sess.Session:
            data, name = self.workspace.read_upload(path, self.public)
            key = self.workspace.new_key(request.username)
            return sess.open_image(self.segmenter, session, data, name=name, key=key)

        out = self.attempt(session, mode, work)
        image = out[0].image
        n = image.n_frames if image is not None else 1
        frames = gr.Slider(minimum=0, maximum=max(1, n - 1), value=image.frame if image else 0, visible=n > 1)
        return (*out, frames)

    def on_frame(self, session: sess.Session, mode: str, frame: float) -> tuple:
        return self.attempt(session, mode, lambda: sess.choose_frame(self.segmenter, session, int(frame)))

    def on_select(self, session: sess.Session, mode: str, evt: gr.SelectData) -> tuple:
        if evt.index is None:  # a click beside the picture, inside its frame
            return self.present(session, mode)
        return self.attempt(session, mode, lambda: sess.click(self.segmenter, session, tuple(evt.index), mode))

    def on_mode(self, session: sess.Session, mode: str) -> tuple:
        return self.present(sess.set_mode(session, mode), mode)

    def on_undo(self, session: sess.Session, mode: str) -> tuple:
        return self.attempt(session, mode, lambda: sess.undo(self.segmenter, session))

    def on_clear(self, session: sess.Session, mode: str) -> tuple:
        return self.present(sess.clear(session), mode)

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


def _encode(ext: str, image: np.ndarray) -> bytes:
    """PNG or JPEG bytes of an RGB or grayscale image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(ext, image, JPEG if ext == ".jpg" else [])
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
