"""One viewer session as an immutable value, and the functions that turn (session, input) into a new session.

Everything here is free of Gradio, so the viewer's behaviour is unit-tested without a server, and any page (the
viewer, a review worklist) drives a case through the same functions: :func:`open_image`, :func:`open_case`,
:func:`choose_frame`, :func:`click`, :func:`box`, :func:`undo`, :func:`clear`; the outline shown is
``session.prediction``. The image is prepared once when it is opened; a click then costs one network pass, fed
the outline shown before it (the model's iterative contract), and its outline joins the session's history, so
that undo restores the outline shown before exactly, without predicting again. A box starts a new prompt (the
inputs before it stay in the history). Errors meant for the user are :class:`core.imageio.ImageError`,
:class:`core.prompt.PromptError` and :class:`webapp.feedback.record.FeedbackError`; a function that raises leaves
the session it was given as it was.
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
from core.prompt import Prompt, PromptError
from core.runtime import Prediction, Predictor, PreparedImage
from core.serialize import VIEWER_REPORT, prediction_json

from .feedback.record import FeedbackError, FeedbackRecord
from .feedback.store import FeedbackStore

NOTICE = "Research tool, not for diagnosis."
NO_IMAGE = "upload an image first, then click on the lesion"
HISTORY_KEPT = 200  # inputs undo can take back (boxes start new prompts, so the history outlives a prompt)
LOGIN_NEEDED = "feedback needs a login: the server must be started with --auth or --auth-file, and you signed in"


@dataclass(frozen=True)
class CaseRef:
    """The case of a review session a tab has open (webapp.review): its review is stored under these ids."""

    session: str
    session_id: int
    case_id: int
    position: int  # from 0, in the session's order
    size: int


@dataclass(frozen=True)
class Step:
    """What a session showed before an input, kept for undo: the prompt, the prediction (its mask packed 8 pixels a
    byte inside its bounding box, a few kB whatever the image's size), the measurements and the review's ids."""

    prompt: Prompt
    prediction: Prediction | None  # with an empty mask: the mask is ``bits`` inside ``box``
    box: tuple[int, int, int, int]  # x, y, width, height
    bits: bytes
    measurements: Measurements | None
    request_id: str
    feedback_id: int | None

    @classmethod
    def of(cls, session: Session) -> Step:
        p, box, bits = session.prediction, (0, 0, 0, 0), b""
        if p is not None:
            box = cv2.boundingRect(p.mask.view(np.uint8))
            x, y, w, h = box
            bits = np.packbits(p.mask[y : y + h, x : x + w]).tobytes()
            p = replace(p, mask=np.zeros((0, 0), bool))
        return cls(session.prompt, p, box, bits, session.measurements, session.request_id, session.feedback_id)

    def restore(self, session: Session) -> Session:
        """``session`` showing this step again, exactly as it was."""
        prediction = self.prediction
        if prediction is not None:
            x, y, w, h = self.box
            mask = np.zeros((session.image.height, session.image.width), bool)
            mask[y : y + h, x : x + w] = np.unpackbits(np.frombuffer(self.bits, np.uint8), count=w * h).reshape(h, w)
            prediction = replace(prediction, mask=mask)
        return replace(
            session,
            prompt=self.prompt,
            prediction=prediction,
            measurements=self.measurements,
            request_id=self.request_id,
            feedback_id=self.feedback_id,
        )


@dataclass(frozen=True)
class Session:
    """What one viewer tab holds: the image, the prompt so far, the outline shown and the ones before it."""

    key: str = ""  # names this tab's folder of served files; given when its first image is opened
    image: UltrasoundImage | None = None
    prepared: PreparedImage | None = None
    source: str | bytes | None = None  # a multi-frame file (its bytes), read again for another frame
    name: str = "image"  # file stem for downloads
    prompt: Prompt = Prompt()
    prediction: Prediction | None = None
    measurements: Measurements | None = None
    history: tuple[Step, ...] = ()  # what was shown before each input, for undo
    version: int = 0  # counts the session's changes: a page shows the newest it was given
    image_file: str = ""  # the served copy of the image the page shows (webapp.handlers), once written
    feedback_id: int | None = None  # the record this prediction was saved as; a new prediction clears it
    request_id: str = ""  # names the write of this prediction's review: a retried submit stores nothing new
    case: CaseRef | None = None  # the review-session case shown, if any


# --- opening an image ---------------------------------------------------------------------------
def open_image(
    segmenter: Predictor, session: Session, source: str | bytes, frame: int = 0, name: str = "", key: str = ""
) -> Session:
    """Read an image file (a path, or its bytes and ``name``; ImageError if it cannot be used) and start a fresh
    prompt on it. The tab keeps its folder of served files (``key`` names a new one)."""
    image = load_image(source, frame=frame, name=name)
    label = name or ("" if isinstance(source, bytes) else str(source))
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(label).stem).strip("._") or "image"
    kept = source if image.n_frames > 1 or not isinstance(source, bytes) else None
    return Session(
        key=session.key or key or uuid.uuid4().hex,
        image=image,
        prepared=segmenter.prepare(image),
        source=kept,
        name=stem[:64],
        version=session.version + 1,
    )


def open_case(
    segmenter: Predictor, session: Session, image: UltrasoundImage, case: CaseRef, prompt: Prompt, key: str = ""
) -> Session:
    """Show a review session's case (its pixels from the database) with the model's outline for ``prompt``."""
    opened = Session(
        key=session.key or key or uuid.uuid4().hex,
        image=image,
        prepared=segmenter.prepare(image),
        name=f"case_{case.position + 1}",
        case=case,
        version=session.version + 1,
    )
    return replay(segmenter, opened, prompt)


def choose_frame(segmenter: Predictor, session: Session, frame: int) -> Session:
    """Show another frame of a multi-frame image with the same prompt, its outlines predicted on that frame."""
    if session.image is None:
        raise PromptError(NO_IMAGE)
    if session.source is None:
        raise PromptError("this image has a single frame")
    image = load_image(session.source, frame=int(frame))
    moved = replace(session, image=image, prepared=segmenter.prepare(image), image_file="")
    return replay(segmenter, moved, session.prompt)


# --- inputs -------------------------------------------------------------------------------------
def click(segmenter: Predictor, session: Session, x: float, y: float, positive: bool = True) -> Session:
    """A lesion (``positive``) or background point at image pixel (x, y): one pass fed the outline shown."""
    if session.prepared is None:
        raise PromptError(NO_IMAGE)
    prompt = session.prompt.add_click(round(x), round(y), positive=positive)
    previous = None if session.prediction is None else session.prediction.mask
    return _predicted(segmenter, session, prompt, previous)


def box(segmenter: Predictor, session: Session, x0: float, y0: float, x1: float, y1: float) -> Session:
    """A box (corners in any order, image pixels): a new prompt, predicted afresh; undo returns to the inputs before."""
    if session.prepared is None:
        raise PromptError(NO_IMAGE)
    return _predicted(segmenter, session, Prompt().add_box(round(x0), round(y0), round(x1), round(y1)), None)


def undo(session: Session) -> Session:
    """Show again what was shown before the last input (its outline exactly, not predicted again)."""
    if not session.history:
        return session
    restored = session.history[-1].restore(session)
    return replace(restored, history=session.history[:-1], version=session.version + 1)


def clear(session: Session) -> Session:
    """Forget every input on this image, and the history."""
    return replace(
        session,
        prompt=Prompt(),
        prediction=None,
        measurements=None,
        history=(),
        feedback_id=None,
        version=session.version + 1,
    )


def replay(segmenter: Predictor, session: Session, prompt: Prompt) -> Session:
    """``session`` with ``prompt`` entered input by input, as if clicked (:meth:`core.runtime.Predictor.replay_steps`):
    the history holds every step (a review case's first prompt, a frame's outlines)."""
    shown = replace(session, prompt=Prompt(), prediction=None, measurements=None, history=(), feedback_id=None)
    for part, prediction in segmenter.replay_steps(session.prepared, prompt):
        _check(shown, part)
        shown = _advance(shown, part, prediction)
    return replace(shown, version=session.version + 1)


def _predicted(segmenter: Predictor, session: Session, prompt: Prompt, previous: np.ndarray | None) -> Session:
    """``session`` after an input that made ``prompt``: one pass fed ``previous`` (none while no lesion click or
    box is given)."""
    _check(session, prompt)
    has_lesion = len(prompt.points(True)) > 0
    return _advance(session, prompt, segmenter.predict(session.prepared, prompt, previous) if has_lesion else None)


def _check(session: Session, prompt: Prompt) -> None:
    """The prompt's points lie on the image (background points alone, so far: the last one as it comes)."""
    width, height = session.prepared.width, session.prepared.height
    if len(prompt.points(True)):
        prompt.validate(width, height)
    else:
        x, y = prompt.points(False)[-1]
        if not (0 <= x < width and 0 <= y < height):
            raise PromptError(f"background click at (x={x:g}, y={y:g}) lies outside the {width} x {height} image")


def _advance(session: Session, prompt: Prompt, prediction: Prediction | None) -> Session:
    """The session with ``prompt`` in force and its prediction, the state before it added to the history."""
    base = replace(
        session,
        prompt=prompt,
        prediction=None,
        measurements=None,
        history=(*session.history, Step.of(session))[-HISTORY_KEPT:],
        version=session.version + 1,
        feedback_id=None,
    )
    if prediction is None:
        return base
    measurements = measure(prediction.mask, session.image.pixel_spacing_mm)
    return replace(base, prediction=prediction, measurements=measurements, request_id=uuid.uuid4().hex)


# --- reviewer feedback -----------------------------------------------------------------------
@dataclass(frozen=True)
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
        return cls(agree, rating, bool(accepted), None if agree else corrected, comment or "")


def feedback_record(
    segmenter: Predictor,
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


def submit_review(
    store: FeedbackStore, segmenter: Predictor, session: Session, reviewer: str | None, review: Review
) -> Session:
    """Store the review of the current outline; the session remembers the id, so it is not saved twice."""
    if session.feedback_id is not None:
        raise FeedbackError(
            f"this outline is already saved as #{session.feedback_id}; change it (a click, undo) to review it again"
        )
    if session.prediction is None:
        raise FeedbackError("outline a lesion first: the feedback is about the current outline and class")
    record = feedback_record(
        segmenter,
        session.image,
        session.prompt,
        session.prediction,
        reviewer,
        review,
        session.request_id or None,
        session.case,
    )
    return replace(session, feedback_id=store.add(record))


def review_note(session: Session) -> str:
    """What the feedback panel says about the current outline."""
    if session.feedback_id is not None:
        return f"**Saved as #{session.feedback_id}.** Change the outline (a click, undo) to review it again."
    if session.prediction is None:
        return "Outline a lesion to review it."
    return "Not saved yet."


# --- what the page shows ----------------------------------------------------------------------
def guidance(session: Session) -> str:
    """One line telling the user what the viewer is waiting for."""
    if session.image is None:
        return "Upload an ultrasound image (PNG, JPEG, BMP, TIFF or DICOM)."
    if not len(session.prompt):
        return (
            "Click on the lesion, or drag a box around it. Shift-click or right-click marks background; "
            "the wheel zooms, a middle-button or space drag pans; z undoes, Esc clears."
        )
    if session.prediction is None:
        return "Background points only so far: click on the lesion, or draw a box, to outline it."
    n = len(session.prompt)
    return (
        f"Outlined from {n} input{'s' if n > 1 else ''}. Add lesion or background points to refine it; "
        "Undo (z) takes back the last one."
    )


def lesion_rows(session: Session, provider: str) -> list[tuple[str, str]]:
    """Area, longest diameter (mm when the spacing is known), class, image and timing, as (label, value) rows."""
    m, p = session.measurements, session.prediction
    if m is None or p is None:
        return []
    area, diameter = f"{m.area_px:,} px²", f"{m.diameter_px:.1f} px"
    if m.area_mm2 is not None:
        area += f" · {m.area_mm2:.1f} mm²"
        diameter += f" · {m.diameter_mm:.1f} mm"
    spacing = session.image.pixel_spacing_mm
    scale = f"{spacing[1]:.3g} x {spacing[0]:.3g} mm per pixel" if spacing else "pixel spacing unknown: no mm"
    total, network = (_duration(p.timings_ms.get(k, 0)) for k in ("total", "inference"))
    return [
        ("Area", area),
        ("Longest diameter", diameter),
        ("Most likely class", f"{p.predicted_class} ({p.class_probs[p.predicted_class]:.0%})"),
        ("Image", f"{session.image.description}; {session.image.width} x {session.image.height} px; {scale}"),
        ("Time", f"{total} for this input ({network} network) on {provider}"),
    ]


def _duration(value: float) -> str:
    """Milliseconds as the page shows them: '7.4 ms', '26 ms'."""
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"


def report(session: Session, segmenter: Predictor) -> dict:
    """The JSON report of the current prediction: prompt, probabilities, measurements, model, image."""
    image = session.image
    return {
        "notice": NOTICE,
        "model": {"name": segmenter.name, "version": segmenter.version, "provider": segmenter.provider},
        "image": {
            "description": image.description,
            "width": image.width,
            "height": image.height,
            "frame": image.frame,
            "n_frames": image.n_frames,
            "pixel_spacing_mm": list(image.pixel_spacing_mm) if image.pixel_spacing_mm else None,
        },
        "prompt": session.prompt.to_dict(),
        **prediction_json(session.prediction, VIEWER_REPORT, measurements=session.measurements),
    }
