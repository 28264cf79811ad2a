"""The liverclick web viewer: upload an ultrasound image, click on a lesion or draw a box, see it outlined, classified.

Thin over ``core``: the model is loaded once (:func:`serve_main`), each browser tab keeps its own
:class:`webapp.session.Session` in ``gr.State``, the handlers in :mod:`webapp.session` do the work and
:mod:`webapp.render` draws the view. ``gr.api`` adds the programmatic endpoints ``/segment`` and
``/feedback``; Gradio reads their parameter and return types from the annotations, so this module keeps
them evaluated (no ``from __future__ import annotations``).

Access: with logins (``--auth``/``--auth-file``) Gradio's login protects the whole app, page and API;
without them the segmentation demo is open and feedback is refused, since every record names its reviewer.
Hosted-demo limits: uploads over MAX_BYTES and images over core.imageio's pixel limit are refused, model
work runs on a few worker threads under a time limit, the queue is bounded, and an exception in one
request is logged and answered with a message, never passed on to the server.
"""

import concurrent.futures
import json
import logging
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import cv2
import gradio as gr
import numpy as np
from gradio import FileData
from gradio.utils import get_upload_folder

from core.imageio import MAX_BYTES, ImageError, UltrasoundImage, load_image
from core.measure import measure
from core.prompt import Prompt, PromptError, request_frame
from core.runtime import Prediction, Predictor
from core.serialize import FEEDBACK_ANSWER, SEGMENT_ANSWER, prediction_json

from . import session as sess
from .feedback.record import COMMENT_MAX_CHARS, FeedbackError, StoreUnavailable
from .feedback.store import FeedbackStore
from .render import render

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
QUEUE_SIZE = 64  # requests waiting beyond this are refused at once rather than left to time out
SESSION_TTL_S = 3 * 3600  # a tab idle this long gives its image and prompt back
SESSION_CAPACITY = 500  # most tabs held at once (each holds one prepared image)
API_FILE_TTL_S = 600  # our copy of an API answer's mask; Gradio serves the client its own copy
# The slowest request measured on a 2-core CPU (paper-size x1.0 network, 40 MP PNG: read 0.6 s, predict up to
# 1.5 s) takes about 2 s; the limit leaves ten times that for a busy machine and stops only runaway work.
TIME_LIMIT_S = 20.0
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
CSS = "#view img { cursor: crosshair; } #notice p { color: #b91c1c; }"
MODE_CHOICES = [("Lesion point (+)", "lesion"), ("Background point (-)", "background"), ("Box: two corners", "box")]
INTERNAL_ERROR = "Something went wrong on the server (the details are in its log). The session is unchanged."
API_INTERNAL_ERROR = "something went wrong on the server (the details are in its log); nothing was stored"
NO_STORE = "this server keeps no feedback: it was started without --feedback-db"
STORE_DOWN = "the feedback database cannot be reached right now, so nothing was saved; please try again"
RATINGS = [("1 poor", 1), ("2", 2), ("3", 3), ("4", 4), ("5 exact", 5)]

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


class Workspace:
    """Files the viewer serves (the view, the downloads, API masks): one folder per session, removed with it."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="liverclick-")
        self.root = Path(self._tmp.name)

    def write(self, folder: str, name: str, data: bytes) -> str:
        """Write ``data`` to ``folder/name`` atomically (a reader never sees half a file); return the path."""
        target = self.root / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{uuid.uuid4().hex}")
        partial.write_bytes(data)
        os.replace(partial, target)
        return str(target)

    def write_once(self, name: str, data: bytes) -> str:
        """A file for one API answer; those older than API_FILE_TTL_S are removed as new ones come."""
        api = self.root / "api"
        if api.is_dir():
            for old in api.iterdir():
                if time.time() - old.stat().st_mtime > API_FILE_TTL_S:
                    shutil.rmtree(old, ignore_errors=True)
        return self.write(f"api/{uuid.uuid4().hex}", name, data)

    def remove(self, session: sess.Session) -> None:
        if session.key:
            shutil.rmtree(self.root / session.key, ignore_errors=True)


def build_demo(
    segmenter: Predictor,
    examples_dir: Path = EXAMPLES_DIR,
    store: FeedbackStore | None = None,
    time_limit_s: float = TIME_LIMIT_S,
    workers: int = 2,
) -> gr.Blocks:
    """The page, wired to ``segmenter`` (and to ``store`` for reviewer feedback); launch it with :func:`launch`.

    Model work runs on ``workers`` threads, each request within ``time_limit_s``.
    """
    workspace = Workspace()
    deadline = Deadline(time_limit_s, workers)
    spec = segmenter.spec

    def review_widgets(session: sess.Session, message: str | None = None) -> tuple:
        """The feedback panel's Submit button (enabled for an unsaved prediction) and its note."""
        submit = gr.Button(interactive=session.prediction is not None and session.feedback_id is None)
        note = sess.review_note(session)
        return submit, f"**Not saved:** {message}\n\n{note}" if message else note

    def present(session: sess.Session, mode: str, message: str | None = None) -> tuple:
        """Every output for a session: state, view, status, classes, malignancy, lesion table, downloads, review."""
        status = sess.guidance(session, mode)
        if message:
            status = f"**{message[0].upper()}{message[1:]}**\n\n{status}"
        view = None
        if session.image is not None:
            view = workspace.write(session.key, "view.jpg", _encode(".jpg", render(session)))
        p = session.prediction
        if p is None:
            idle = gr.DownloadButton(value=None, interactive=False)
            return session, view, status, None, None, "", idle, idle, *review_widgets(session)
        report = json.dumps(sess.report(session, segmenter), indent=2).encode()
        mask = workspace.write(session.key, f"{session.name}_mask.png", _encode(".png", p.mask.astype(np.uint8) * 255))
        report_file = workspace.write(session.key, f"{session.name}_report.json", report)
        return (
            session,
            view,
            status,
            p.class_probs,
            sess.malignancy(p),
            sess.measurement_lines(session, segmenter.provider),
            gr.DownloadButton(value=mask, interactive=True),
            gr.DownloadButton(value=report_file, interactive=True),
            *review_widgets(session),
        )

    def attempt(session: sess.Session, mode: str, action: Callable[[], sess.Session]) -> tuple:
        """Run a model handler within the time limit; on failure keep the session as it was and say why,
        in the page and in a toast."""
        try:
            return present(deadline.run(action), mode)
        except (ImageError, PromptError, RequestTimeout) as exc:
            message = str(exc)
        except Exception:
            log.exception("a viewer request failed")
            message = INTERNAL_ERROR
        gr.Warning(message)
        return present(session, mode, message)

    def on_file(session: sess.Session, mode: str, path: str | None) -> tuple:
        if path is None:
            return (*present(sess.Session(key=session.key), mode), gr.Slider(visible=False))
        out = attempt(session, mode, lambda: sess.open_image(segmenter, session, path))
        image = out[0].image
        n = image.n_frames if image is not None else 1
        frames = gr.Slider(minimum=0, maximum=max(1, n - 1), value=image.frame if image else 0, visible=n > 1)
        return (*out, frames)

    def on_frame(session: sess.Session, mode: str, frame: float) -> tuple:
        return attempt(session, mode, lambda: sess.choose_frame(segmenter, session, int(frame)))

    def on_select(session: sess.Session, mode: str, evt: gr.SelectData) -> tuple:
        if evt.index is None:  # a click beside the picture, inside its frame
            return present(session, mode)
        return attempt(session, mode, lambda: sess.click(segmenter, session, tuple(evt.index), mode))

    def on_mode(session: sess.Session, mode: str) -> tuple:
        return present(sess.set_mode(session, mode), mode)

    def on_undo(session: sess.Session, mode: str) -> tuple:
        return attempt(session, mode, lambda: sess.undo(segmenter, session))

    def on_clear(session: sess.Session, mode: str) -> tuple:
        return present(sess.clear(session), mode)

    def the_store() -> FeedbackStore:
        if store is None:
            raise FeedbackError(NO_STORE)
        return store

    def on_submit(
        session: sess.Session,
        verdict: str | None,
        corrected: str | None,
        rating: int | None,
        accepted: bool,
        comment: str | None,
        request: gr.Request,
    ) -> tuple:
        """Save the review of the current outline; the form is cleared once the store has acknowledged it."""
        try:
            review = sess.Review.from_form(verdict, corrected, rating, accepted, comment)
            saved = sess.submit_review(the_store(), segmenter, session, request.username, review)
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
            return (saved, *review_widgets(saved), *blank)
        gr.Warning(message)
        return (session, *review_widgets(session, message), *(gr.skip(),) * 5)

    def on_verdict(verdict: str | None) -> gr.Dropdown:
        return gr.Dropdown(visible=verdict == "disagree")

    def on_load(request: gr.Request) -> str:
        if request.username:
            return f"Reviewing as **{request.username}**."
        return f"Not signed in: {sess.LOGIN_NEEDED}."

    def answer(image: FileData, prompt: str) -> tuple[UltrasoundImage, Prompt, Prediction]:
        """Read an API call's upload (the prompt's frame) and predict, within the time limit."""

        def work() -> tuple[UltrasoundImage, Prompt, Prediction]:
            try:
                request = json.loads(prompt)
            except (TypeError, json.JSONDecodeError) as exc:
                raise PromptError(f"the prompt is not valid JSON: {exc}") from None
            picture = load_image(_uploaded_path(image), frame=request_frame(request))
            p = Prompt.from_dict(request)
            return picture, p, segmenter.predict(picture, p)

        return deadline.run(work)

    def segment(image: FileData, prompt: str) -> tuple[FileData, dict]:
        """Segment and classify the lesion a prompt points at.

        image: an ultrasound image (PNG, JPEG, BMP, TIFF or DICOM). prompt: JSON in the request format of
        `liverclick predict`, e.g. {"clicks": [{"x": 120, "y": 88, "positive": true}], "box": [x0, y0, x1, y1],
        "frame": 0}. Returns the mask (PNG, 0/255, at the image's own size) and the probabilities.
        """
        with _api_errors("segment"):
            picture, _, p = answer(image, prompt)
            mask = workspace.write_once("mask.png", _encode(".png", p.mask.astype(np.uint8) * 255))
            measurements = measure(p.mask, picture.pixel_spacing_mm)
            model = {"name": segmenter.name, "version": segmenter.version}
            result = prediction_json(p, SEGMENT_ANSWER, measurements=measurements, model=model)
        return FileData(path=mask), result

    def feedback(
        image: FileData,
        prompt: str,
        agree: bool,
        outline_rating: int,
        accepted: bool,
        request: gr.Request,
        corrected_class: str | None = None,
        comment: str = "",
    ) -> dict:
        """Store a reviewer's feedback on the model's answer to a prompt (needs a login).

        image and prompt: as for /segment, with the reviewer's final prompt (their corrective clicks included);
        the server predicts again, so the stored outline and probabilities are the model's own. agree: whether
        the predicted class is right; corrected_class: the right class when not (one of the model's classes);
        outline_rating: 1 (poor) to 5 (exact); accepted: the outline is good enough to train on; comment: free
        text. Returns {"id": the record's id, once stored, "predicted_class", "class_probs", "area_px"}.
        """
        with _api_errors("feedback"):
            target = the_store()
            if not request.username:
                raise FeedbackError(sess.LOGIN_NEEDED)
            picture, p, prediction = answer(image, prompt)
            review = sess.Review(agree, outline_rating, accepted, corrected_class, comment)
            record = sess.feedback_record(segmenter, picture.pixels, p, prediction, request.username, review)
            feedback_id = target.add(record)
        return {"id": feedback_id, **prediction_json(prediction, FEEDBACK_ANSWER)}

    examples = sorted(examples_dir.glob("*.png")) if examples_dir.is_dir() else []
    with gr.Blocks(title="liverclick", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# liverclick\nClick on a lesion in an ultrasound image, or draw a box around it, "
            "to see it outlined and classified."
        )
        gr.Markdown(f"**{sess.NOTICE}** Model: {segmenter.name} {segmenter.version}.", elem_id="notice")
        state = gr.State(sess.Session(), time_to_live=SESSION_TTL_S, delete_callback=workspace.remove)
        with gr.Row():
            with gr.Column(scale=3):
                view = gr.Image(
                    label="Ultrasound: click to prompt",
                    type="filepath",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                    elem_id="view",
                )
                status = gr.Markdown(sess.guidance(sess.Session(), "lesion"), elem_id="status")
            with gr.Column(scale=2):
                upload = gr.File(label="Ultrasound image: PNG, JPEG, BMP, TIFF or DICOM", elem_id="upload")
                frame = gr.Slider(0, 1, value=0, step=1, label="DICOM frame (0 = first)", visible=False)
                mode = gr.Radio(MODE_CHOICES, value="lesion", label="A click adds", elem_id="mode")
                with gr.Row():
                    undo = gr.Button("Undo last input", size="sm")
                    clear = gr.Button("Clear all", size="sm")
                classes = gr.Label(num_top_classes=spec.num_classes, label="Class probabilities", elem_id="classes")
                # A benign/malignant model's class probabilities already say it all.
                binary = set(spec.class_names) == {"benign", "malignant"}
                malignant = gr.Label(label="Benign or malignant", elem_id="malignancy", visible=not binary)
                lesion = gr.Markdown(elem_id="lesion")
                with gr.Row():
                    mask_file = gr.DownloadButton("Mask (PNG)", interactive=False, size="sm")
                    report_file = gr.DownloadButton("Report (JSON)", interactive=False, size="sm")
                with gr.Accordion("Feedback on this outline", open=True, visible=store is not None, elem_id="review"):
                    reviewer = gr.Markdown(elem_id="reviewer")
                    verdict = gr.Radio(
                        [("Agree", "agree"), ("Disagree", "disagree")],
                        label="The most likely class is right",
                        elem_id="verdict",
                    )
                    corrected = gr.Dropdown(
                        list(spec.class_names), value=None, label="Correct class", visible=False, elem_id="corrected"
                    )
                    rating = gr.Radio(RATINGS, label="Outline quality", elem_id="rating")
                    accepted = gr.Checkbox(
                        label="Accept the final outline (with my corrective clicks) as reference", elem_id="accepted"
                    )
                    comment = gr.Textbox(label="Comment", lines=2, max_length=COMMENT_MAX_CHARS, elem_id="comment")
                    submit = gr.Button("Submit feedback", variant="primary", interactive=False, elem_id="submit")
                    review_note = gr.Markdown(sess.review_note(sess.Session()), elem_id="review-note")
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[upload], label="Examples")
        with gr.Accordion(f"Model: {segmenter.name} {segmenter.version}", open=False):
            gr.Markdown(model_card_markdown(segmenter), elem_id="model-card")

        outputs = [state, view, status, classes, malignant, lesion, mask_file, report_file, submit, review_note]
        ui = dict(api_visibility="private")  # the page's own events; the public API is /segment and /feedback
        model = dict(ui, concurrency_id="model", show_progress="minimal")
        upload.change(on_file, [state, mode, upload], [*outputs, frame], **model)
        # A slider moved while a frame loads is read again when it is done (always_last); a click made while the
        # previous one is served is dropped (once), as it would otherwise run on a stale session or, deferred,
        # without its position.
        frame.input(on_frame, [state, mode, frame], outputs, trigger_mode="always_last", **model)
        view.select(on_select, [state, mode], outputs, trigger_mode="once", **model)
        mode.change(on_mode, [state, mode], outputs, show_progress="hidden", **ui)
        undo.click(on_undo, [state, mode], outputs, **model)
        clear.click(on_clear, [state, mode], outputs, show_progress="hidden", **ui)
        form = [verdict, corrected, rating, accepted, comment]
        verdict.change(on_verdict, verdict, corrected, show_progress="hidden", **ui)
        # Once: a second press while the first is being stored is dropped; after it, Submit stays disabled.
        submit.click(on_submit, [state, *form], [state, submit, review_note, *form], trigger_mode="once", **ui)
        demo.load(on_load, None, reviewer, **ui)
        gr.api(segment, api_name="segment", concurrency_id="model")
        gr.api(feedback, api_name="feedback", concurrency_id="model")
    return demo


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_concurrency: int = 2,
    auth: list[tuple[str, str]] | None = None,
    queue_size: int = QUEUE_SIZE,
    max_file_size: int = MAX_BYTES,
    **kwargs,
):
    """Queue (``max_concurrency`` requests at once, ``queue_size`` waiting) and start the server; uploads over
    ``max_file_size`` bytes are refused. Returns what ``Blocks.launch`` does."""
    demo.queue(default_concurrency_limit=max_concurrency, max_size=queue_size)
    return demo.launch(
        server_name=host,
        server_port=port,
        auth=auth or None,
        max_file_size=max_file_size,
        allowed_paths=[str(EXAMPLES_DIR)],
        state_session_capacity=SESSION_CAPACITY,
        css=CSS,
        **kwargs,
    )


def model_card_markdown(segmenter: Predictor) -> str:
    """The model panel: name, version, provider, classes and every entry of the model card."""
    spec, card = segmenter.spec, segmenter.card
    classes = ", ".join(f"{c} (malignant)" if c in spec.malignant_classes else c for c in spec.class_names)
    lines = [
        f"**{segmenter.name}**, version {segmenter.version}, running on {segmenter.provider}.",
        "",
        f"**{sess.NOTICE}**",
        "",
        f"- **Classes**: {classes}",
        f"- **Input**: {spec.input_size} x {spec.input_size}, "
        + ("zoomed in around the prompt" if spec.zoom_in else "the whole image"),
    ]
    for key, value in card.items():
        if key not in ("name", "version"):
            lines += _card_entry(key.replace("_", " ").capitalize(), value)
    return "\n".join(lines)


def _card_entry(title: str, value, depth: int = 0) -> list[str]:
    pad = "  " * depth
    if isinstance(value, dict):
        return [f"{pad}- **{title}**:"] + [line for k, v in value.items() for line in _card_entry(str(k), v, depth + 1)]
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return [f"{pad}- **{title}**:"] + [f"{pad}  - {json.dumps(v)}" for v in value]
    if isinstance(value, list):
        value = ", ".join(_plain(v) for v in value)
    return [f"{pad}- **{title}**: {_plain(value)}"]


def _plain(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _encode(ext: str, image: np.ndarray) -> bytes:
    """PNG or JPEG bytes of an RGB or grayscale image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(ext, image, JPEG if ext == ".jpg" else [])
    if not ok:
        raise RuntimeError(f"cannot encode the image as {ext}")
    return data.tobytes()


@contextmanager
def _api_errors(endpoint: str) -> Iterator[None]:
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


def _uploaded_path(image) -> str:
    """The server path of a file the API client uploaded; any other path is refused."""
    path = image.get("path") if isinstance(image, dict) else getattr(image, "path", image)
    if not isinstance(path, str) or not Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve()):
        raise _refusal("send the image as a file (gradio_client.handle_file), not as a path on the server")
    return path
