"""The feedback record: one reviewed case, every field validated on construction (FeedbackError names it)."""

from __future__ import annotations

import hashlib
import math
import numbers
import re
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from core.prompt import Prompt, PromptError

COMMENT_MAX_CHARS = 2000
NAME_MAX_CHARS = 200  # reviewer, model name and version, class names
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,100}")  # a client's id for one write: a UUID, a counter


class FeedbackError(ValueError):
    """Feedback that cannot be stored (or a store that cannot be used), with a message for a person."""


class StoreUnavailable(FeedbackError):
    """The database could not be reached or written: the record was not acknowledged."""


def pixel_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of an 8-bit grayscale image's size and pixels: equal for the same image from any file."""
    pixels = np.ascontiguousarray(pixels)
    header = f"{pixels.shape[0]}x{pixels.shape[1]}\n".encode()
    return hashlib.sha256(header + pixels.tobytes()).hexdigest()


@dataclass(frozen=True)
class FeedbackRecord:
    """One reviewed case. Construction validates every field and raises FeedbackError naming it.

    ``mask`` is the final outline (after the reviewer's own corrective clicks) at the image's own
    size; ``image`` the 8-bit grayscale pixels, kept only by a store opened with ``store_images``;
    ``frame`` the frame of a multi-frame file they come from. ``request_id``: the client's id for this
    write; the store keeps one record per reviewer and id, so a retry stores nothing new.
    ``id`` and ``created_at`` (UTC, ISO 8601) are set by the store.
    """

    reviewer: str
    model_name: str
    model_version: str
    prompt: Prompt
    mask: np.ndarray
    class_probs: dict[str, float]
    malignant_prob: float
    predicted_class: str
    agree: bool
    outline_rating: int
    accepted: bool
    image_sha256: str
    image_width: int
    image_height: int
    corrected_class: str | None = None
    comment: str = ""
    image: np.ndarray | None = field(default=None, repr=False)
    frame: int = 0
    request_id: str | None = None
    session_id: int | None = None  # the review session and case this review belongs to (webapp.review)
    case_id: int | None = None
    created_at: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        for name in ("reviewer", "model_name", "model_version"):
            self._set(name, _text(getattr(self, name), name, NAME_MAX_CHARS, required=True))
        self._set("comment", _text(self.comment, "comment", COMMENT_MAX_CHARS, required=False))
        width, height = _positive_int(self.image_width, "image_width"), _positive_int(self.image_height, "image_height")
        self._set("image_width", width)
        self._set("image_height", height)
        self._set("prompt", _prompt(self.prompt, width, height))
        self._set("mask", _mask(self.mask, width, height))
        probs = _class_probs(self.class_probs)
        self._set("class_probs", probs)
        self._set("malignant_prob", _probability(self.malignant_prob, "malignant_prob"))
        if not isinstance(self.predicted_class, str) or self.predicted_class not in probs:
            raise FeedbackError(
                f"predicted_class {self.predicted_class!r} is not one of the model's classes {list(probs)}"
            )
        self._set("agree", _flag(self.agree, "agree"))
        self._set("accepted", _flag(self.accepted, "accepted"))
        self._set("corrected_class", self._checked_correction(probs))
        rating = self.outline_rating
        if isinstance(rating, (bool, np.bool_)) or not isinstance(rating, numbers.Integral) or not 1 <= rating <= 5:
            raise FeedbackError(f"outline_rating must be a whole number from 1 to 5, got {rating!r}")
        self._set("outline_rating", int(rating))
        if self.accepted and not self.mask.any():
            raise FeedbackError("an empty outline cannot be accepted as reference")
        if not isinstance(self.image_sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.image_sha256):
            raise FeedbackError("image_sha256 must be 64 lowercase hexadecimal digits")
        if self.image is not None:
            self._set("image", _image(self.image, width, height, self.image_sha256))
        if isinstance(self.frame, (bool, np.bool_)) or not isinstance(self.frame, numbers.Integral) or self.frame < 0:
            raise FeedbackError(f"frame must be a whole number from 0, got {self.frame!r}")
        self._set("frame", int(self.frame))
        if (self.session_id is None) != (self.case_id is None):
            raise FeedbackError("a review of a session's case names both the session and the case")
        if self.request_id is not None and not (
            isinstance(self.request_id, str) and REQUEST_ID.fullmatch(self.request_id)
        ):
            raise FeedbackError("request_id must be 1 to 100 letters, digits or . _ : -")
        self._set("created_at", _timestamp(self.created_at) if self.created_at else "")

    @classmethod
    def from_prediction(cls, prediction, prompt: Prompt, pixels: np.ndarray, **review) -> FeedbackRecord:
        """Build from a runtime ``Prediction`` of ``prompt`` on the grayscale ``pixels``; ``review`` holds
        the reviewer, model name and version, and the reviewer's answers (agree, corrected_class, ...)."""
        pixels = np.asarray(pixels)
        if pixels.ndim != 2:
            raise FeedbackError(f"pixels must be a 2-D grayscale image, got shape {pixels.shape}")
        return cls(
            prompt=prompt,
            mask=prediction.mask,
            class_probs=dict(prediction.class_probs),
            malignant_prob=prediction.malignant_prob,
            predicted_class=prediction.predicted_class,
            image_sha256=pixel_sha256(pixels),
            image_width=pixels.shape[1],
            image_height=pixels.shape[0],
            image=pixels,
            **review,
        )

    @property
    def reference_class(self) -> str:
        """The class the reviewer stands behind: the correction when disagreeing, else the prediction."""
        return self.predicted_class if self.agree else self.corrected_class

    def _checked_correction(self, probs: dict[str, float]) -> str | None:
        corrected = self.corrected_class or None
        if self.agree:
            if corrected is not None and corrected != self.predicted_class:
                raise FeedbackError(f"corrected_class {corrected!r} given although the reviewer agreed with the model")
            return None
        if corrected is None:
            raise FeedbackError("a reviewer who disagrees must give the corrected class")
        if not isinstance(corrected, str) or corrected not in probs:
            raise FeedbackError(f"corrected_class {corrected!r} is not one of the model's classes {list(probs)}")
        if corrected == self.predicted_class:
            raise FeedbackError(f"corrected_class {corrected!r} equals the predicted class: mark 'agree' instead")
        return corrected

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)


def _text(value, name: str, limit: int, required: bool) -> str:
    if not isinstance(value, str):
        raise FeedbackError(f"{name} must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise FeedbackError(f"{name} is empty")
    if len(value) > limit:
        raise FeedbackError(f"{name} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise FeedbackError(f"{name} contains a NUL character")
    return value


def _positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise FeedbackError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise FeedbackError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _probability(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise FeedbackError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _class_probs(probs) -> dict[str, float]:
    if not isinstance(probs, dict) or len(probs) < 2:
        raise FeedbackError("class_probs must map at least two class names to probabilities")
    out = {
        _text(k, "a class name", NAME_MAX_CHARS, True): _probability(v, f"class_probs[{k!r}]") for k, v in probs.items()
    }
    if len(out) != len(probs):
        raise FeedbackError("class_probs has duplicate class names")
    if not math.isclose(sum(out.values()), 1.0, abs_tol=1e-3):
        raise FeedbackError(f"class_probs must sum to 1, got {sum(out.values()):.4f}")
    return out


def _prompt(prompt, width: int, height: int) -> Prompt:
    try:
        prompt = Prompt.from_dict(prompt) if isinstance(prompt, dict) else prompt
        if not isinstance(prompt, Prompt):
            raise PromptError(f"expected a Prompt or its dict, got {type(prompt).__name__}")
        return prompt.validate(width, height)
    except PromptError as exc:
        raise FeedbackError(f"prompt: {exc}") from None


def _mask(mask, width: int, height: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (height, width):
        raise FeedbackError(f"the mask is {mask.shape[::-1]} (width, height); the image is ({width}, {height})")
    if mask.dtype == bool:
        return mask.copy()
    integer = np.issubdtype(mask.dtype, np.integer)
    if not integer or mask.min(initial=0) < 0 or (mask.max(initial=0) > 1 and ((mask != 0) & (mask != 255)).any()):
        raise FeedbackError("the mask must be boolean, 0/1 or 0/255")
    return mask > 0


def _image(image, width: int, height: int, sha256: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.shape != (height, width):
        raise FeedbackError(
            f"image must be 8-bit grayscale pixels of {width} x {height}, got {image.dtype} {image.shape}"
        )
    if pixel_sha256(image) != sha256:
        raise FeedbackError("image_sha256 does not match the image's pixels")
    return image.copy()


def _timestamp(value) -> str:
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise FeedbackError(f"created_at must be an ISO 8601 time stamp, got {value!r}") from None
    if stamp.utcoffset() is None or stamp.utcoffset().total_seconds() != 0:
        raise FeedbackError(f"created_at must be in UTC, got {value!r}")
    return stamp.isoformat(timespec="milliseconds")


def encode_png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise FeedbackError("could not encode a PNG")
    return buf.tobytes()


def decode_png(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
