"""The viewer's server: the /segment endpoint driven by gradio_client, the page's wiring, `liverclick serve`."""

import json

import cv2
import numpy as np
import pytest

import core.models
from core.cli import main as cli_main
from core.runtime import Segmenter
from webapp import app as webapp
from webapp.feedback.migrations import MIGRATIONS
from webapp.feedback.store import FeedbackStore

CARD = {
    "name": "tiny-four",
    "version": "3",
    "training_data": "synthetic liver phantoms",
    "metrics": {"two_click": {"mean_ji": 0.812, "ci95": [0.79, 0.83]}, "auroc": 0.9},
    "git_revision": "abc123",
}


@pytest.fixture(scope="module")
def segmenter(make_model, four_class_spec):
    return Segmenter(make_model(four_class_spec, card=CARD), provider="cpu")


@pytest.fixture(scope="module")
def client(segmenter, start_viewer):
    from gradio_client import Client

    return Client(start_viewer(segmenter), verbose=False)


@pytest.mark.slow
def test_segment_endpoint(client, speckle_image, tmp_path, four_class_spec):
    from gradio_client import handle_file

    path = tmp_path / "scan.png"
    cv2.imwrite(str(path), speckle_image)
    assert list(client.view_api(print_info=False, return_format="dict")["named_endpoints"]) == ["/segment", "/feedback"]
    prompt = {"clicks": [{"x": 140, "y": 60, "positive": True}], "box": [110, 30, 170, 90]}
    mask_file, result = client.predict(handle_file(str(path)), json.dumps(prompt), api_name="/segment")
    mask = cv2.imread(mask_file, cv2.IMREAD_UNCHANGED)
    assert mask.shape == speckle_image.shape and set(np.unique(mask)) <= {0, 255} and mask[60, 140] == 255
    assert result["area_px"] == int((mask == 255).sum())
    assert set(result["class_probs"]) == set(four_class_spec.class_names)
    assert result["predicted_class"] == max(result["class_probs"], key=result["class_probs"].get)
    assert result["malignant_prob"] == pytest.approx(result["class_probs"]["metastasis"] + result["class_probs"]["hcc"])
    assert result["model"] == {"name": "tiny-four", "version": "3"}


@pytest.mark.slow
def test_segment_endpoint_reads_a_dicom_frame(client, tmp_path, image_bytes):
    from gradio_client import handle_file

    frames = np.stack([np.full((64, 80), v, np.uint8) for v in (10, 200)])
    path = tmp_path / "cine.dcm"
    path.write_bytes(image_bytes.dicom(frames, spacing=(0.5, 0.5)))
    prompt = {"clicks": [{"x": 40, "y": 32, "positive": True}], "frame": 1}
    _, result = client.predict(handle_file(str(path)), json.dumps(prompt), api_name="/segment")
    m = result["measurements"]
    assert m["area_mm2"] == pytest.approx(result["area_px"] * 0.25)
    with pytest.raises(Exception, match="frame 2 does not exist"):
        client.predict(handle_file(str(path)), json.dumps({**prompt, "frame": 2}), api_name="/segment")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        ("{not json", "not valid JSON"),
        (json.dumps({"clicks": [{"x": 5, "y": 5, "positive": False}]}), "at least one click on the lesion"),
        (json.dumps({"clicks": [{"x": 500, "y": 5}]}), "outside the 200 x 120 image"),
        (json.dumps({"box": [1, 2, 3]}), "'box' must be a list"),
        (json.dumps({"clicks": [{"x": 5, "y": 5}], "frame": "one"}), "'frame' must be a whole number"),
    ],
)
def test_segment_endpoint_explains_a_bad_prompt(client, speckle_image, tmp_path, prompt, message):
    from gradio_client import handle_file

    path = tmp_path / "scan.png"
    cv2.imwrite(str(path), speckle_image)
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(str(path)), prompt, api_name="/segment")


@pytest.mark.slow
def test_segment_endpoint_refuses_bad_files(client, tmp_path):
    from gradio_client import handle_file

    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    prompt = json.dumps({"clicks": [{"x": 5, "y": 5}]})
    with pytest.raises(Exception, match="not an image file"):
        client.predict(handle_file(str(notes)), prompt, api_name="/segment")
    with pytest.raises(Exception, match="send the image as a file"):  # never a path on the server
        client.predict("/etc/hostname", prompt, api_name="/segment")


def test_page_has_the_notice_model_panel_and_examples_hook(segmenter, tmp_path):
    config = webapp.build_demo(segmenter, examples_dir=tmp_path).config
    page = json.dumps(config, default=str)
    assert "Research tool, not for diagnosis." in page and "synthetic liver phantoms" in page
    assert not any(c["type"] == "dataset" for c in config["components"])  # no example images: no gallery
    cv2.imwrite(str(tmp_path / "phantom.png"), np.zeros((32, 32), np.uint8))
    config = webapp.build_demo(segmenter, examples_dir=tmp_path).config
    assert any(c["type"] == "dataset" for c in config["components"])


def test_serve_without_the_bundled_model_says_so(monkeypatch, capsys):
    monkeypatch.setitem(core.models.BUNDLED, "default", "not_installed.onnx")
    assert cli_main(["serve"]) == 2
    err = capsys.readouterr().err
    assert "cannot load the model" in err and "not installed" in err and "--model" in err
    assert cli_main(["serve", "--model", "/nonexistent/model.onnx"]) == 2
    assert "no model file at /nonexistent/model.onnx" in capsys.readouterr().err


def test_serve_launches_with_logins_limits_and_the_feedback_store(monkeypatch, capsys, segmenter, tmp_path):
    launched = {}

    def fake_launch(demo, **kw):
        launched.update(kw, demo=demo)
        with FeedbackStore.open(db, create=False) as store:  # created and migrated before the server starts
            launched["schema"] = store.schema_version

    monkeypatch.setattr(webapp, "launch", fake_launch)
    db = tmp_path / "fb.sqlite"
    serve = ["serve", "--model", str(segmenter.path), "--provider", "cpu"]
    code = cli_main([*serve, "--auth", "ann:password", "--feedback-db", str(db), "--store-images", "--port", "7999"])
    assert code == 0 and launched["schema"] == len(MIGRATIONS)
    assert launched["auth"].verify("ann", "password") and launched["port"] == 7999 and launched["max_concurrency"] == 2
    out = capsys.readouterr()
    assert "tiny-four 3" in out.out and f"feedback goes to {db}, with the images" in out.out
    assert "the password of ann is in plain text" in out.err
    assert _review_panel(launched["demo"])["visible"] is True

    assert cli_main([*serve, "--auth", "broken"]) == 2
    assert cli_main([*serve, "--feedback-db", str(db)]) == 2  # feedback names its reviewer: logins
    assert "--feedback-db needs logins" in capsys.readouterr().err
    assert cli_main([*serve, "--auth", "ann:password", "--feedback-db", "mysql://h/db"]) == 2
    assert "cannot open the feedback database: unsupported database URL" in capsys.readouterr().err

    assert cli_main([*serve, "--store-images"]) == 0  # an open demo without feedback
    assert "--store-images has no effect" in capsys.readouterr().err
    assert not launched["auth"] and _review_panel(launched["demo"])["visible"] is False


def _review_panel(demo) -> dict:
    return next(c["props"] for c in demo.config["components"] if c["props"].get("elem_id") == "review")
