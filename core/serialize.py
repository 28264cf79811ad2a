"""A prediction as JSON: one place for what ``liverclick predict``, ``/segment``, ``/feedback`` and the
viewer's downloaded report say about it. Each names the keys it carries, in its own order."""

from __future__ import annotations

from .measure import Measurements
from .runtime import Prediction

# The keys of each format (documented in the README); keys are only ever added.
PREDICT_RESULT = ("class_probs", "predicted_class", "malignant_prob", "operating_points", "mask", "area_px")
SEGMENT_ANSWER = (
    "class_probs",
    "predicted_class",
    "malignant_prob",
    "operating_points",
    "area_px",
    "measurements",
    "model",
)
FEEDBACK_ANSWER = ("predicted_class", "class_probs", "area_px")
VIEWER_REPORT = ("class_probs", "predicted_class", "malignant_prob", "operating_points", "measurements", "timings_ms")


def operating_point_name(name: str) -> str:
    """``sensitivity_90`` -> "90%-sensitivity threshold"; ``youden`` -> "Youden threshold"."""
    kind, _, value = name.partition("_")
    if kind == "sensitivity" and value.isdigit():
        return f"{value}%-sensitivity threshold"
    return f"{kind.capitalize()} threshold"


def operating_points_json(prediction: Prediction) -> list[dict]:
    """Which side of each of the model's operating points (thresholds chosen on validation) the malignant
    probability falls, in words: "above the 90%-sensitivity threshold (0.19)"."""
    out = []
    for name, threshold in prediction.operating_points:
        above = prediction.malignant_prob >= threshold
        words = f"{'above' if above else 'below'} the {operating_point_name(name)} ({threshold:.2f})"
        out.append({"name": name, "threshold": threshold, "above": above, "statement": words})
    return out


def prediction_json(
    prediction: Prediction,
    keys: tuple[str, ...],
    *,
    mask: str | None = None,
    measurements: Measurements | None = None,
    model: dict | None = None,
) -> dict:
    """``keys`` of ``prediction`` as a JSON-able dict: class_probs, predicted_class, malignant_prob,
    operating_points (a list, empty for a model without them), area_px, timings_ms, and (when given) mask
    (the mask file's name), measurements and model."""
    values = {
        "class_probs": prediction.class_probs,
        "predicted_class": prediction.predicted_class,
        "malignant_prob": prediction.malignant_prob,
        "operating_points": operating_points_json(prediction),
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
