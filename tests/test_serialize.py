"""One serializer for a prediction: each format's keys, in its order, with the values from one place."""

import json
from dataclasses import replace

import numpy as np
import pytest

from core.measure import measure
from core.runtime import Prediction
from core.serialize import FEEDBACK_ANSWER, PREDICT_RESULT, SEGMENT_ANSWER, VIEWER_REPORT, prediction_json


@pytest.fixture
def prediction():
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:7] = True
    probs = {"benign": 0.25, "malignant": 0.75}
    return Prediction(mask, probs, 0.75, (0, 0, 12, 10), {"inference": 3.5, "total": 4.0})


def test_each_format_has_its_keys_in_its_order(prediction):
    m = measure(prediction.mask, (0.5, 0.5))
    result = prediction_json(prediction, PREDICT_RESULT, mask="a1.png")
    assert list(result) == ["class_probs", "predicted_class", "malignant_prob", "operating_points", "mask", "area_px"]
    assert result["operating_points"] == []  # a model without operating points
    assert result["predicted_class"] == "malignant" and result["area_px"] == 12 and result["mask"] == "a1.png"
    answer = prediction_json(prediction, SEGMENT_ANSWER, measurements=m, model={"name": "n", "version": "1"})
    assert list(answer) == [
        "class_probs",
        "predicted_class",
        "malignant_prob",
        "operating_points",
        "area_px",
        "measurements",
        "model",
    ]
    assert answer["measurements"]["area_mm2"] == pytest.approx(3.0)
    assert list(prediction_json(prediction, FEEDBACK_ANSWER)) == ["predicted_class", "class_probs", "area_px"]
    report = prediction_json(prediction, VIEWER_REPORT, measurements=m)
    assert list(report) == [
        "class_probs",
        "predicted_class",
        "malignant_prob",
        "operating_points",
        "measurements",
        "timings_ms",
    ]
    assert report["timings_ms"] == {"inference": 3.5, "total": 4.0}
    json.dumps([result, answer, report], allow_nan=False)


def test_a_key_without_its_value_is_an_error(prediction):
    with pytest.raises(ValueError, match="mask"):
        prediction_json(prediction, PREDICT_RESULT)


def test_operating_points_are_said_in_words(prediction):
    points = (("sensitivity_90", 0.2), ("sensitivity_95", 0.1), ("youden", 0.8))
    flagged = replace(prediction, operating_points=points)
    said = prediction_json(flagged, PREDICT_RESULT, mask="a1.png")["operating_points"]
    assert [p["above"] for p in said] == [True, True, False]  # malignant_prob is 0.75
    assert said[0]["statement"] == "above the 90%-sensitivity threshold (0.20)"
    assert said[2]["statement"] == "below the Youden threshold (0.80)"
