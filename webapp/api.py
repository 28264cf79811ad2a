"""The viewer's public API (``gr.api``): ``/segment`` and ``/feedback``, served with the viewer's model, store, time
limit and files. Gradio reads the endpoints' types from the annotations, so this module keeps them evaluated (no
``from __future__ import annotations``).

A prompt is JSON in the request format of ``liverclick predict``, read once at this boundary (bounded, parsed, and
checked against the image by the runtime); its clicks are an ordered history under core.prompt's one rule, so the
answer is the outline the viewer shows after the last of them.
"""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import gradio as gr
import numpy as np
from gradio import FileData

from core.imageio import ImageError, UltrasoundImage, load_image, load_outline
from core.measure import measure
from core.prompt import Prompt, PromptError, parse_json, request_frame
from core.runtime import Prediction
from core.serialize import FEEDBACK_ANSWER, SEGMENT_ANSWER, prediction_json

from .deadline import RequestTimeout
from .feedback.record import FeedbackError, StoreUnavailable
from .handlers import Viewer, encode
from .tab import Review, feedback_record
from .text import LOGIN_NEEDED, STORE_DOWN

API_INTERNAL_ERROR = "something went wrong on the server (the details are in its log); nothing was stored"

log = logging.getLogger("liverclick.webapp")


class Api:
    """The endpoints, on ``viewer``'s model, store, time limit and files."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer

    def answer(
        self, image: FileData, prompt: str, request: gr.Request, previous_mask: FileData | None = None
    ) -> tuple[UltrasoundImage, Prompt, Prediction]:
        """Read an API call's upload (removed from disk at once; the prompt's frame) and answer its click history
        (one pass with the previous outline when one is uploaded), within the time limit and in the caller's turn
        (their login, else their Gradio session: webapp.deadline)."""
        viewer = self.viewer

        def work() -> tuple[UltrasoundImage, Prompt, Prediction]:
            request = parse_json(prompt)
            data, name = viewer.workspace.read_upload(file_path(image))
            picture = load_image(data, frame=request_frame(request), name=name)
            p = Prompt.from_dict(request)
            previous = None
            if previous_mask is not None:
                outline, _ = viewer.workspace.read_upload(file_path(previous_mask))
                previous = load_outline(outline, picture.width, picture.height)
            return picture, p, viewer.predictor.replay(picture, p, previous)

        return viewer.deadline.run(work, owner=request.username or getattr(request, "session_hash", None))

    def segment(
        self, image: FileData, prompt: str, request: gr.Request, previous_mask: FileData | None = None
    ) -> tuple[FileData, dict]:
        """Segment and classify the lesion a prompt points at.

        image: an ultrasound image (PNG, JPEG, BMP, TIFF or DICOM). prompt: JSON in the request format of
        `liverclick predict`, e.g. {"clicks": [{"x": 120, "y": 88, "positive": true}], "box": [x0, y0, x1, y1],
        "frame": 0}, or the ordered {"inputs": [...]}; the clicks are an ordered history (a box starts a new
        object) and the answer is the outline after the last of them. previous_mask (optional): the outline before
        the last click (PNG, 0/255, the image's size), which makes it one pass. Returns the mask (PNG, 0/255, at the
        image's own size) and the probabilities.
        """
        with api_errors("segment"):
            picture, _, p = self.answer(image, prompt, request, previous_mask)
            png = encode(".png", p.mask.astype(np.uint8) * 255)
            mask = self.viewer.workspace.write_once(request.username, "mask.png", png)
            measurements = measure(p.mask, picture.pixel_spacing_mm)
            model = {"name": self.viewer.predictor.name, "version": self.viewer.predictor.version}
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
            store = self.viewer.the_store()
            if not request.username:
                raise FeedbackError(LOGIN_NEEDED)
            picture, p, prediction = self.answer(image, prompt, request)
            review = Review(
                agree=agree,
                outline_rating=outline_rating,
                accepted=accepted,
                corrected_class=corrected_class,
                comment=comment,
            )
            record = feedback_record(
                self.viewer.predictor,
                image=picture,
                prompt=p,
                prediction=prediction,
                reviewer=request.username,
                review=review,
                request_id=request_id,
            )
            feedback_id = store.add(record)
        return {"id": feedback_id, **prediction_json(prediction, FEEDBACK_ANSWER)}


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


def file_path(upload) -> str:
    """The server path of an API client's upload (a FileData or its dict)."""
    return upload.get("path") if isinstance(upload, dict) else getattr(upload, "path", upload)
