"""What one viewer tab holds, as an immutable value (:class:`Tab`), and the functions that turn (tab, input) into a
new tab.

Everything here is free of Gradio, so the viewer's behaviour is unit-tested without a server, and any page (the
viewer, a review worklist) drives a case through the same functions: :func:`open_image`, :func:`open_case`,
:func:`choose_frame`, :func:`apply` (:func:`click`, :func:`box`, :func:`undo`, :func:`clear`); the outline shown is
``Tab.prediction``. The image is prepared once when it is opened; an input then costs one network pass, fed the
outline shown before it (the model's iterative contract), and the outline shown before joins the tab's history,
so that undo restores it exactly, without predicting again. The tab's prompt is the whole history of its inputs,
read by core.prompt's one rule: a box starts a new object (what came before it is not in force) and undo steps back
one entry. Errors meant for the user are :class:`core.imageio.ImageError`, :class:`core.prompt.PromptError` and
:class:`webapp.feedback.record.FeedbackError`; a function that raises leaves the tab it was given as it was.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from core.imageio import UltrasoundImage, load_image
from core.measure import Measurements, measure
from core.prompt import Box, Click, Prompt, PromptError, parse_input
from core.runtime import Prediction, Predictor, PreparedImage
from core.serialize import VIEWER_REPORT, prediction_json

from .feedback.record import FeedbackError, FeedbackRecord
from .feedback.store import FeedbackStore
from .text import LOGIN_NEEDED, NO_IMAGE, NOTICE, SINGLE_FRAME


@dataclass(frozen=True)
class CaseRef:
    """The case of a review session a tab has open (webapp.review): its review is stored under these ids."""

    session: str
    session_id: int
    case_id: int
    position: int  # from 0, in the session's order
    size: int
    key: str = ""  # the case's id in its worklist (the image's name, or its case_id column)


@dataclass(frozen=True)
class Step:
    """What a tab showed before an input, kept for undo: the prediction (its mask packed 8 pixels a byte inside
    ``region``, a few kB whatever the image's size), the measurements and the review's ids."""

    prediction: Prediction | None  # with an empty mask: the mask is ``bits`` inside ``region``
    region: tuple[int, int, int, int]  # x0, y0, x1, y1 with exclusive ends
    bits: bytes
    measurements: Measurements | None
    request_id: str
    feedback_id: int | None

    @classmethod
    def of(cls, tab: Tab) -> Step:
        p, region, bits = tab.prediction, (0, 0, 0, 0), b""
        if p is not None:
            x, y, w, h = cv2.boundingRect(p.mask.view(np.uint8))
            region = (x, y, x + w, y + h)
            bits = np.packbits(p.mask[y : y + h, x : x + w]).tobytes()
            p = replace(p, mask=np.zeros((0, 0), bool))
        return cls(p, region, bits, tab.measurements, tab.request_id, tab.feedback_id)

    def restore(self, tab: Tab) -> Tab:
        """``tab`` one input back (its prompt undone), showing this step again exactly as it was."""
        prediction = self.prediction
        if prediction is not None:
            x0, y0, x1, y1 = self.region
            mask = np.zeros((tab.image.height, tab.image.width), bool)
            bits = np.unpackbits(np.frombuffer(self.bits, np.uint8), count=(x1 - x0) * (y1 - y0))
            mask[y0:y1, x0:x1] = bits.reshape(y1 - y0, x1 - x0)
            prediction = replace(prediction, mask=mask)
        return replace(
            tab,
            prompt=tab.prompt.undo(),
            prediction=prediction,
            measurements=self.measurements,
            request_id=self.request_id,
            feedback_id=self.feedback_id,
        )


@dataclass(frozen=True)
class Tab:
    """What one viewer tab holds: the image, the prompt's history, the outline shown and the ones before it."""

    key: str = ""  # names the tab where webapp.tabs.Tabs holds it, and its folder of served files
    image: UltrasoundImage | None = None
    prepared: PreparedImage | None = None
    source: str | bytes | None = None  # a multi-frame file (its bytes), read again for another frame
    name: str = "image"  # file stem for downloads
    prompt: Prompt = Prompt()  # every input on this image, in order
    prediction: Prediction | None = None
    measurements: Measurements | None = None
    history: tuple[Step, ...] = ()  # what was shown before each input of the prompt, for undo
    version: int = 0  # stamped by webapp.tabs.Tabs each time it holds a new state: a page shows the newest
    image_file: str = ""  # the served copy of the image the page shows (webapp.handlers), once written
    feedback_id: int | None = None  # the record this prediction was saved as; a new prediction clears it
    request_id: str = ""  # names the write of this prediction's review: a retried submit stores nothing new
    case: CaseRef | None = None  # the review-session case shown, if any


# --- opening an image ---------------------------------------------------------------------------
def open_image(predictor: Predictor, tab: Tab, source: str | bytes, *, frame: int = 0, name: str = "") -> Tab:
    """Read an image file (a path, or its bytes and ``name``; ImageError if it cannot be used) and start a fresh
    prompt on it, in the same tab (its key and folder)."""
    image = load_image(source, frame=frame, name=name)
    label = name or ("" if isinstance(source, bytes) else str(source))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(label).stem).strip("._") or "image"
    kept = source if image.n_frames > 1 or not isinstance(source, bytes) else None
    return Tab(key=tab.key, image=image, prepared=predictor.prepare(image), source=kept, name=stem[:64])


def open_case(predictor: Predictor, tab: Tab, image: UltrasoundImage, case: CaseRef, prompt: Prompt) -> Tab:
    """Show a review session's case (its pixels from the database) with the model's outline for ``prompt``."""
    opened = Tab(key=tab.key, image=image, prepared=predictor.prepare(image), name=f"case_{case.position + 1}")
    return replay(predictor, replace(opened, case=case), prompt)


def choose_frame(predictor: Predictor, tab: Tab, frame: int) -> Tab:
    """Show another frame of a multi-frame image with the same prompt, its outlines predicted on that frame."""
    if tab.image is None:
        raise PromptError(NO_IMAGE)
    if tab.source is None:
        raise PromptError(SINGLE_FRAME)
    image = load_image(tab.source, frame=int(frame))
    return replay(predictor, replace(tab, image=image, prepared=predictor.prepare(image), image_file=""), tab.prompt)


# --- inputs -------------------------------------------------------------------------------------
def apply(predictor: Predictor, tab: Tab, action) -> Tab:
    """One input from the page: ``"undo"``, ``"clear"``, or a prompt input's JSON (a click or a box, checked by
    core.prompt's parser)."""
    if action == "undo":
        return undo(tab)
    if action == "clear":
        return clear(tab)
    item = parse_input(action)
    if isinstance(item, Click):
        return click(predictor, tab, item.x, item.y, item.positive)
    return box(predictor, tab, item.x0, item.y0, item.x1, item.y1)


def click(predictor: Predictor, tab: Tab, x: float, y: float, positive: bool = True) -> Tab:
    """A lesion (``positive``) or background point at image pixel (x, y): one pass fed the outline shown."""
    return _entered(predictor, tab, Click(round(x), round(y), bool(positive)))


def box(predictor: Predictor, tab: Tab, x0: float, y0: float, x1: float, y1: float) -> Tab:
    """A box (corners in any order, image pixels): a new object, predicted afresh; undo brings back the inputs
    before it."""
    return _entered(predictor, tab, Box(round(x0), round(y0), round(x1), round(y1)))


def undo(tab: Tab) -> Tab:
    """Show again what was shown before the last input (its outline exactly, not predicted again)."""
    if not tab.history:
        return tab
    return replace(tab.history[-1].restore(tab), history=tab.history[:-1])


def clear(tab: Tab) -> Tab:
    """Forget every input on this image, and the history."""
    return replace(tab, prompt=Prompt(), prediction=None, measurements=None, history=(), feedback_id=None)


def replay(predictor: Predictor, tab: Tab, prompt: Prompt) -> Tab:
    """``tab`` with ``prompt`` entered input by input, as if clicked (:meth:`core.runtime.Predictor.replay_steps`):
    the history holds every step (a review case's first prompt, a frame's outlines)."""
    shown = clear(tab)
    for part, prediction in predictor.replay_steps(tab.prepared, prompt):
        shown = _advance(shown, part, prediction)
    return shown


def _entered(predictor: Predictor, tab: Tab, item: Click | Box) -> Tab:
    """``tab`` after ``item``: one pass fed the outline shown (core.runtime leaves it out after a box); background
    points alone, so far, are only checked to lie on the image."""
    if tab.prepared is None:
        raise PromptError(NO_IMAGE)
    prompt = Prompt((*tab.prompt.inputs, item))
    if not len(prompt.points(True)):
        prompt.check_inputs(tab.prepared.width, tab.prepared.height)
        return _advance(tab, prompt, None)
    previous = None if tab.prediction is None else tab.prediction.mask
    return _advance(tab, prompt, predictor.predict(tab.prepared, prompt, previous))


def _advance(tab: Tab, prompt: Prompt, prediction: Prediction | None) -> Tab:
    """The tab with ``prompt`` in force and its prediction, the state before it added to the history."""
    base = replace(
        tab,
        prompt=prompt,
        prediction=None,
        measurements=None,
        history=(*tab.history, Step.of(tab)),
        feedback_id=None,
    )
    if prediction is None:
        return base
    measurements = measure(prediction.mask, tab.image.pixel_spacing_mm)
    return replace(base, prediction=prediction, measurements=measurements, request_id=uuid.uuid4().hex)


# --- reviewer feedback -----------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Review:
    """A reviewer's answers about one prediction (validated with the rest of the record by FeedbackRecord)."""

    agree: bool
    outline_rating: int
    accepted: bool
    corrected_class: str | None = None
    comment: str = ""

    @classmethod
    def from_form(
        cls, verdict: str | None, corrected: str | None, rating: int | None, accepted: bool, comment: str | None
    ) -> Review:
        """The feedback panel's widgets -> a Review; a question left unanswered is a FeedbackError."""
        if verdict not in ("agree", "disagree"):
            raise FeedbackError("say whether you agree with the class")
        if rating is None:
            raise FeedbackError("rate the outline from 1 (poor) to 5 (exact)")
        agree = verdict == "agree"
        return cls(
            agree=agree,
            outline_rating=rating,
            accepted=bool(accepted),
            corrected_class=None if agree else corrected,
            comment=comment or "",
        )


def feedback_record(
    segmenter: Predictor,
    *,
    image: UltrasoundImage,
    prompt: Prompt,
    prediction: Prediction,
    reviewer: str | None,
    review: Review,
    request_id: str | None = None,
    case: CaseRef | None = None,
) -> FeedbackRecord:
    """The record of ``review`` on ``prediction`` (of ``prompt`` on ``image``, a frame of its file) by
    ``reviewer``; ``request_id`` names the write, so that a retry stores nothing new; ``case``: the review
    session's case it is a review of."""
    if not reviewer:
        raise FeedbackError(LOGIN_NEEDED)
    return FeedbackRecord.from_prediction(
        prediction,
        prompt,
        image.pixels,
        frame=image.frame,
        request_id=request_id,
        session_id=case.session_id if case else None,
        case_id=case.case_id if case else None,
        reviewer=reviewer,
        model_name=segmenter.name,
        model_version=segmenter.version,
        agree=review.agree,
        corrected_class=review.corrected_class,
        outline_rating=review.outline_rating,
        accepted=review.accepted,
        comment=review.comment,
    )


def submit_review(store: FeedbackStore, predictor: Predictor, tab: Tab, reviewer: str | None, review: Review) -> Tab:
    """Store the review of the outline shown; the tab remembers the id, so it is not saved twice."""
    if tab.feedback_id is not None:
        raise FeedbackError(
            f"this outline is already saved as #{tab.feedback_id}; change it (a click, undo) to review it again"
        )
    if tab.prediction is None:
        raise FeedbackError("outline a lesion first: the feedback is about the current outline and class")
    record = feedback_record(
        predictor,
        image=tab.image,
        prompt=tab.prompt,
        prediction=tab.prediction,
        reviewer=reviewer,
        review=review,
        request_id=tab.request_id or None,
        case=tab.case,
    )
    return replace(tab, feedback_id=store.add(record))


# --- downloads ----------------------------------------------------------------------------------
def report(tab: Tab, predictor: Predictor) -> dict:
    """The JSON report of the outline shown: prompt (the whole history), probabilities, measurements, model, image."""
    image = tab.image
    return {
        "notice": NOTICE,
        "model": {"name": predictor.name, "version": predictor.version, "provider": predictor.provider},
        "image": {
            "description": image.description,
            "width": image.width,
            "height": image.height,
            "frame": image.frame,
            "n_frames": image.n_frames,
            "pixel_spacing_mm": list(image.pixel_spacing_mm) if image.pixel_spacing_mm else None,
        },
        "prompt": tab.prompt.to_dict(),
        **prediction_json(tab.prediction, VIEWER_REPORT, measurements=tab.measurements),
    }
