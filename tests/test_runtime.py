import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

from core.contract import ContractError
from core.metrics import jaccard
from core.preprocess import encode_image
from core.prompt import Prompt, PromptError
from core.runtime import Segmenter


def test_import_core_does_not_import_torch():
    code = "import sys, core, core.runtime, core.batch, core.cli, core.imageio; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize(
    "spec_json, message",
    [("", "carries no input spec"), (json.dumps({"spec_version": 99}), "not understood")],
)
def test_refuses_model_without_or_with_unknown_contract(make_model, spec_json, message):
    path = make_model(spec_json=spec_json)
    with pytest.raises(ContractError, match=message):
        Segmenter(path)


def test_refuses_a_file_that_is_not_onnx(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ContractError, match="not a loadable ONNX model"):
        Segmenter(bad)


def test_predict_on_tiny_model(tiny_model, speckle_image):
    seg = Segmenter(tiny_model, provider="cpu")
    assert seg.provider == "CPUExecutionProvider"
    assert seg.name == "tiny-test"
    pred = seg.predict(speckle_image, Prompt().add_click(140, 60))
    assert pred.mask.shape == speckle_image.shape
    # The tiny model marks pixels within 0.1 * 255 = 25.5 model pixels of the click; the 200-px-wide
    # image is scaled by 64/200, so that is a disk of ~80 image pixels radius around (140, 60),
    # cut at the image border.
    yy, xx = np.mgrid[:120, :200]
    expected = (xx - 140) ** 2 + (yy - 60) ** 2 < (25.5 * 200 / 64) ** 2
    assert jaccard(pred.mask, expected) > 0.95
    assert set(pred.class_probs) == {"benign", "malignant"}
    assert sum(pred.class_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert pred.malignant_prob == pytest.approx(pred.class_probs["malignant"])
    assert pred.area_px == int(pred.mask.sum())


def test_prepared_image_gives_the_same_result(tiny_model, speckle_image):
    seg = Segmenter(tiny_model, provider="cpu")
    prompt = Prompt().add_box(110, 30, 170, 90)
    a = seg.predict(speckle_image, prompt)
    b = seg.predict(seg.prepare(speckle_image), prompt)
    assert np.array_equal(a.mask, b.mask) and a.class_probs == b.class_probs


def test_invalid_prompt_is_refused(tiny_model, speckle_image):
    seg = Segmenter(tiny_model, provider="cpu")
    with pytest.raises(PromptError, match="outside"):
        seg.predict(speckle_image, Prompt().add_click(500, 10))


def test_zoom_in_runs_on_the_region_around_the_prompt(make_model, binary_spec, speckle_image):
    spec = dataclasses.replace(binary_spec, zoom_context=2.0, zoom_min_side=16)
    seg = Segmenter(make_model(spec), provider="cpu")
    boxed = seg.predict(speckle_image, Prompt().add_box(120, 40, 159, 79))
    assert boxed.region == (100, 20, 180, 100)
    clicked = seg.predict(speckle_image, Prompt().add_click(140, 60))
    assert "first_pass" in clicked.timings_ms
    x0, y0, x1, y1 = clicked.region
    assert x0 <= 140 < x1 and y0 <= 60 < y1
    assert clicked.mask[60, 140] and not clicked.mask[0, 0]


def test_a_prepared_image_keeps_the_encoded_channel_of_recent_regions(tiny_model, speckle_image):
    """What depends only on the image and the zoom region is computed once, not at every click."""
    from core.geometry import Letterbox
    from core.runtime import REGIONS_KEPT

    seg = Segmenter(tiny_model, provider="cpu")
    prepared = seg.prepare(speckle_image)
    assert prepared.channel(prepared.whole, seg.spec) is prepared.image_channel
    frames = [Letterbox(200, 120, 64, (10 * k, 5, 10 * k + 80, 85)) for k in range(REGIONS_KEPT + 1)]
    first = prepared.channel(frames[0], seg.spec)
    assert prepared.channel(frames[0], seg.spec) is first
    np.testing.assert_array_equal(first, encode_image(frames[0].image_to_model(speckle_image), seg.spec))
    for frame in frames[1:]:
        prepared.channel(frame, seg.spec)
    assert len(prepared.regions) == REGIONS_KEPT and frames[0].region not in prepared.regions
