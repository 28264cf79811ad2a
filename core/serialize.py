"""A prediction as JSON: one place for what ``liverclick predict``, ``/segment``, ``/feedback`` and the
viewer's downloaded report say about it. Each names the keys it carries, in its own order."""

from __future__ import annotations

from .measure import Measurements
from .runtime import Prediction

# The keys of each format (documented in the README); a format's keys never change.
PREDICT_RESULT = ("class_probs", "predicted_class", "malignant_prob", "mask", "area_px")
SEGMENT_ANSWER = ("class_probs", "predicted_class", "malignant_prob", "area_px", "measurements", "model")
FEEDBACK_ANSWER = ("predicted_class", "class_probs", "area_px")
VIEWER_REPORT = ("class_probs", "predicted_class", "malignant_prob", "measurements", "timings_ms")


def prediction_json(
    prediction: Prediction,
    keys: tuple[str, ...],
    *,
    mask: str | None = None,
    measurements: Measurements | None = None,
    model: dict | None = None,
) -> dict:
    """``keys`` of ``prediction`` as a JSON-able dict: class_probs, predicted_class, malignant_prob, area_px,
    timings_ms, and (when given) mask (the mask file's name), measurements and model."""
    values = {
        "class_probs": prediction.class_probs,
        "predicted_class": prediction.predicted_class,
        "malignant_prob": prediction.malignant_prob,
        "area_px": prediction.area_px,
        "timings_ms": prediction.timings_ms,
        "mask": mask,
        "measurements": None if measurements is None else measurements.to_dict(),
        "model": model,
    }
    missing = [k for k in keys if values.get(k) is None]
    if missing:
        raise ValueError(f"no value for {missing}")
    return {k: values[k] for k in keys}
