"""One viewer session as an immutable value, and the handlers that turn (session, event) into a new session.

Everything here is free of Gradio, so the viewer's behaviour is unit-tested without a server: the
app only maps widgets to these functions. The image is prepared once when it is opened (grayscale,
letterbox, normalisation); every click then costs only distance maps, inference and post-processing.
Errors meant for the user are :class:`core.imageio.ImageError`, :class:`core.prompt.PromptError` and
:class:`webapp.feedback.record.FeedbackError`; a handler that raises leaves the session it was given as it was.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from core.imageio import UltrasoundImage, load_image
from core.measure import Measurements, measure
from core.prompt import Prompt, PromptError
from core.runtime import Prediction, Predictor, PreparedImage
from core.serialize import VIEWER_REPORT, prediction_json

from .feedback.record import FeedbackError, FeedbackRecord
from .feedback.store import FeedbackStore

ClickMode = Literal["lesion", "background", "box"]
CLICK_MODES: tuple[ClickMode, ...] = ("lesion", "background", "box")
NOTICE = "Research tool, not for diagnosis."
NO_IMAGE = "upload an image first, then click on the lesion"
LOGIN_NEEDED = "feedback needs a login: the server must be started with --auth or --auth-file, and you signed in"

DISPLAY_MIN = 640  # a smaller image is shown enlarged by a whole factor, so that it can be clicked precisely
DISPLAY_MAX = 1280  # a larger one is shown reduced, which keeps each click's round trip short


def display_scale(width: int, height: int) -> float:
    """Display pixels per image pixel for an image of this size."""
    longest = max(width, height)
    if longest < DISPLAY_MIN:
        return float(math.ceil(DISPLAY_MIN / longest))
    if longest > DISPLAY_MAX:
        return DISPLAY_MAX / longest
    return 1.0


@dataclass(frozen=True)
class CaseRef:
    """The case of a review session a tab has open (webapp.review): its review is stored under these ids."""

    session: str
    session_id: int
    case_id: int
    position: int  # from 0, in the session's order
    size: int


@dataclass(frozen=True)
class Session:
    """What one viewer tab holds: the image, the prompt so far, a pending box corner, the last prediction."""

    key: str = ""  # names this tab's folder of served files; given when its first image is opened
    image: UltrasoundImage | None = None
    prepared: PreparedImage | None = None
    source: str | bytes | None = None  # a multi-frame file (its bytes), read again for another frame
    name: str = "image"  # file stem for downloads
    prompt: Prompt = Prompt()
    pending_corner: tuple[int, int] | None = None  # first corner of a box being drawn
    prediction: Prediction | None = None
    measurements: Measurements | None = None
    feedback_id: int | None = None  # the record this prediction was saved as; a new prediction clears it
    request_id: str = ""  # names the write of this prediction's review: a retried submit stores nothing new
    case: CaseRef | None = None  # the review-session case shown, if any

    @property
    def scale(self) -> float:
        return display_scale(self.image.width, self.image.height) if self.image else 1.0

    def image_point(self, index: tuple[float, float] | list[float]) -> tuple[int, int]:
        """A position in the displayed image (Gradio's ``SelectData.index``) -> the image pixel (x, y) under it."""
        if self.image is None:
            raise PromptError(NO_IMAGE)
        s = self.scale
        x = min(max(round((index[0] + 0.5) / s - 0.5), 0), self.image.width - 1)
        y = min(max(round((index[1] + 0.5) / s - 0.5), 0), self.image.height - 1)
        return int(x), int(y)


# --- handlers ---------------------------------------------------------------------------------
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
    )
    return _predict(segmenter, opened, prompt)


def choose_frame(segmenter: Predictor, session: Session, frame: int) -> Session:
    """Show another frame of a multi-frame image, keeping the prompt (frames share one geometry)."""
    if session.image is None:
        raise PromptError(NO_IMAGE)
    if session.source is None:
        raise PromptError("this image has a single frame")
    image = load_image(session.source, frame=int(frame))
    moved = replace(session, image=image, prepared=segmenter.prepare(image), pending_corner=None)
    return _predict(segmenter, moved, session.prompt)


def click(segmenter: Predictor, session: Session, index: tuple[float, float], mode: ClickMode) -> Session:
    """A click on the displayed image at ``index``: a lesion or background point, or a box corner."""
    if session.prepared is None:
        raise PromptError(NO_IMAGE)
    if mode not in CLICK_MODES:
        raise ValueError(f"unknown mode {mode!r}")
    x, y = session.image_point(index)
    if mode != "box":
        previous = None if session.prediction is None else session.prediction.mask  # a correction: one pass
        return _predict(segmenter, session, session.prompt.add_click(x, y, positive=mode == "lesion"), previous)
    if session.pending_corner is None:
        return replace(session, pending_corner=(x, y))
    x0, y0 = session.pending_corner
    return _predict(segmenter, session, session.prompt.add_box(x0, y0, x, y))


def set_mode(session: Session, mode: ClickMode) -> Session:
    """Switching mode abandons a half-drawn box."""
    return session if mode == "box" else replace(session, pending_corner=None)


def undo(segmenter: Predictor, session: Session) -> Session:
    """Take back a pending box corner, else the last input, and predict again."""
    if session.pending_corner is not None:
        return replace(session, pending_corner=None)
    if session.prepared is None or not len(session.prompt):
        return session
    return _predict(segmenter, session, session.prompt.undo())


def clear(session: Session) -> Session:
    """Forget every input on this image."""
    return replace(session, prompt=Prompt(), pending_corner=None, prediction=None, measurements=None, feedback_id=None)


def _predict(segmenter: Predictor, session: Session, prompt: Prompt, previous=None) -> Session:
    """The session with ``prompt`` in force and its prediction (none while no lesion click or box is given):
    given the outline before the prompt's last click, one pass; otherwise the prompt's history replayed."""
    base = replace(session, prompt=prompt, pending_corner=None, prediction=None, measurements=None, feedback_id=None)
    if len(prompt.points(True)) == 0:
        return base
    prompt.validate(session.prepared.width, session.prepared.height)
    prediction = segmenter.replay(session.prepared, prompt, previous)
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
def guidance(session: Session, mode: ClickMode) -> str:
    """One line telling the user what the viewer is waiting for."""
    if session.image is None:
        return "Upload an ultrasound image (PNG, JPEG, BMP, TIFF or DICOM)."
    if session.pending_corner is not None:
        x, y = session.pending_corner
        return f"Box: first corner at (x={x}, y={y}). Now click the opposite corner."
    if not len(session.prompt):
        if mode == "box":
            return "Click one corner of a box around the lesion, then the opposite corner."
        if mode == "background":
            return "Click on the background to mark what is not lesion, or switch to *Lesion point*."
        return "Click on the lesion, or choose *Box* and click two opposite corners around it."
    if session.prediction is None:
        return "Background points only so far: click on the lesion, or draw a box, to outline it."
    n = len(session.prompt)
    return (
        f"Outlined from {n} input{'s' if n > 1 else ''}. Add lesion or background points to refine it; "
        "*Undo* takes back the last one."
    )


def malignancy(prediction: Prediction) -> dict[str, float]:
    return {"malignant": prediction.malignant_prob, "benign": 1.0 - prediction.malignant_prob}


def measurement_lines(session: Session, provider: str) -> str:
    """Area, longest diameter (mm when the spacing is known), class and timing as a Markdown table."""
    m, p = session.measurements, session.prediction
    if m is None or p is None:
        return ""
    area, diameter = f"{m.area_px:,} px²", f"{m.diameter_px:.1f} px"
    if m.area_mm2 is not None:
        area += f" · {m.area_mm2:.1f} mm²"
        diameter += f" · {m.diameter_mm:.1f} mm"
    spacing = session.image.pixel_spacing_mm
    scale = f"{spacing[1]:.3g} x {spacing[0]:.3g} mm per pixel" if spacing else "pixel spacing unknown: no mm"
    total, inference = (_duration(p.timings_ms.get(k, 0)) for k in ("total", "inference"))
    return "\n".join(
        [
            "| Lesion | |",
            "|---|---|",
            f"| Area | {area} |",
            f"| Longest diameter | {diameter} |",
            f"| Most likely class | {p.predicted_class} ({p.class_probs[p.predicted_class]:.0%}) |",
            f"| Image | {session.image.description}; {session.image.width} x {session.image.height} px; {scale} |",
            f"| Time | {total} per click ({inference} inference) on {provider} |",
        ]
    )


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
