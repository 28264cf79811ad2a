"""The viewer's handlers and API called directly, as Gradio calls them, without a server or a browser."""

import base64
import json
import logging
import shutil
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import cv2
import gradio as gr
import numpy as np
import pytest
from gradio import FileData
from gradio.utils import get_upload_folder

from webapp.api import Api
from webapp.canvas import picture_url
from webapp.feedback.store import FeedbackStore
from webapp.handlers import Viewer
from webapp.text import INTERNAL_ERROR, NO_STORE

ANN = SimpleNamespace(username="ann")  # what Gradio passes as gr.Request for a signed-in reviewer


def click(x, y, positive=True) -> dict:
    return {"x": x, "y": y, "positive": positive}


def call(viewer, key, actions) -> dict:
    """The canvas's call with ``actions`` made on the picture tab ``key`` shows."""
    return {"key": key, "picture": picture_url(viewer.tabs.get(key, "ann")), "actions": actions}


def downloaded(viewer, key, kind) -> bytes:
    answer = viewer.download({"key": key, "kind": kind}, "ann")
    return base64.b64decode(answer["base64"])


@pytest.fixture
def upload(tmp_path):
    """``upload(path) -> str``: a copy of the file where the server holds an upload (Gradio's upload folder)."""
    folders = []

    def put(path) -> str:
        folders.append(Path(get_upload_folder()) / uuid.uuid4().hex)
        folders[-1].mkdir(parents=True)
        return str(shutil.copy(path, folders[-1] / Path(path).name))

    yield put
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def opened(segmenter, scan, upload):
    """``opened(viewer) -> key``: the scan uploaded to ``viewer``; the tab's key."""
    return lambda viewer: viewer.on_file("", upload(scan), ANN)[0]


def test_upload_shows_the_picture_once_then_each_click_answers_with_everything_and_downloads_on_demand(
    segmenter, scan, upload
):
    viewer = Viewer(segmenter)
    path = upload(scan)
    key, canvas, frames = viewer.on_file("", path, ANN)
    assert not Path(path).exists()  # read into memory and removed from disk at once
    tab = viewer.tabs.get(key, "ann")
    assert tab.image.width == 200 and frames.visible is False and canvas["key"] == key
    image = canvas["image"]
    assert (image["width"], image["height"]) == (200, 120) and image["url"] == f"gradio_api/file={tab.image_file}"
    assert np.array_equal(cv2.imread(tab.image_file, cv2.IMREAD_GRAYSCALE), tab.image.pixels)
    assert canvas["overlay"]["result"] is None and "error" in viewer.download({"key": key, "kind": "mask"}, "ann")

    overlay = viewer.act(call(viewer, key, [click(140, 60)]), "ann")["overlay"]
    assert overlay["inputs"] == [{"x": 140, "y": 60, "positive": True}] and overlay["outline"]
    assert "Outlined from 1 input" in overlay["status"] and overlay["result"]["rows"][0][0] == "Area"
    assert overlay["review"] is None  # no store: nothing to say about reviews
    tab = viewer.tabs.get(key, "ann")
    assert tab.prediction.mask[60, 140] and not list(Path(tab.image_file).parent.parent.glob("*/*mask*"))
    report = json.loads(downloaded(viewer, key, "report"))  # made when asked for, not per input
    assert report["prompt"] == {"clicks": [{"x": 140, "y": 60, "positive": True}]}
    mask = cv2.imdecode(np.frombuffer(downloaded(viewer, key, "mask"), np.uint8), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(mask > 0, tab.prediction.mask)
    assert viewer.download({"key": key, "kind": "mask"}, "ann")["name"] == "scan_mask.png"
    assert "does not understand" in viewer.download({"key": key, "kind": "secrets"}, "ann")["error"]
    assert "another login" in viewer.download({"key": key, "kind": "mask"}, "bob")["error"]

    key2, cleared, _ = viewer.on_file(key, None, ANN)  # the upload removed
    assert key2 == key and viewer.tabs.get(key, "ann").image is None and cleared["image"] is None


def test_canvas_inputs_apply_in_order_and_undo_steps_back_through_the_one_history(segmenter, opened):
    viewer = Viewer(segmenter)
    key = opened(viewer)
    actions = [click(140, 60), click(150, 70), click(100, 60, False), "undo", click(160, 50)]
    overlay = viewer.act(call(viewer, key, actions), "ann")["overlay"]
    assert [(i["x"], i["positive"]) for i in overlay["inputs"]] == [(140, True), (150, True), (160, True)]
    tab = viewer.tabs.get(key, "ann")
    assert len(tab.history) == 3 and tab.version == overlay["version"]
    boxed = viewer.act(call(viewer, key, [{"box": [120, 40, 160, 80]}]), "ann")["overlay"]
    assert boxed["inputs"] == [{"box": [120, 40, 160, 80]}] and boxed["can_undo"] and boxed["version"] > tab.version
    assert viewer.act(call(viewer, key, ["undo"]), "ann")["overlay"]["inputs"][2]["x"] == 160
    cleared = viewer.act(call(viewer, key, ["clear"]), "ann")["overlay"]
    assert cleared["inputs"] == [] and cleared["outline"] == [] and not cleared["can_undo"]


def test_canvas_calls_are_checked_and_errors_said_in_the_overlay(segmenter, opened):
    viewer = Viewer(segmenter)
    key = opened(viewer)
    tab = viewer.tabs.get(key, "ann")
    assert "another login" in viewer.act(call(viewer, key, []), None)["error"]
    assert "another login" in viewer.act(call(viewer, key, []), "bob")["error"]
    assert "expired" in viewer.act({"key": "public/nope", "actions": []}, "ann")["error"]
    elsewhere = {**call(viewer, key, [click(140, 60)]), "picture": "gradio_api/file=another/image.png"}
    assert "image changed" in viewer.act(elsewhere, "ann")["error"]  # made on a picture no longer shown
    assert viewer.tabs.get(key, "ann").prompt == tab.prompt
    assert "does not understand" in viewer.act(["not", "a", "dict"], "ann")["error"]
    assert "at most 100" in viewer.act(call(viewer, key, ["undo"] * 101), "ann")["error"]
    out = viewer.act(call(viewer, key, [click(140, 60), click(500, 5), click(150, 70)]), "ann")
    overlay = out["overlay"]  # applied up to the click outside the image, which is explained
    assert len(overlay["inputs"]) == 1 and "outside the 200 x 120 image" in overlay["message"]
    for bad, message in (
        ({"x": "1", "y": 2}, "must be a number"),
        ({"box": [1, 2]}, r"\[x0, y0, x1, y1\]"),
        ({"kind": "zoom"}, "needs 'x' and 'y'"),
        ({"box": [5, 5, 5, 30]}, "zero area"),
    ):
        assert message.replace("\\", "") in viewer.act(call(viewer, key, [bad]), "ann")["overlay"]["message"]


def test_a_bad_upload_is_explained_and_the_tab_kept(segmenter, opened, upload, tmp_path):
    viewer = Viewer(segmenter)
    key = opened(viewer)
    before = viewer.tabs.get(key, "ann")
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    with pytest.warns(UserWarning, match="not an image file"):  # gr.Warning: a toast in the page
        key2, canvas, _ = viewer.on_file(key, upload(notes), ANN)
    assert key2 == key and viewer.tabs.get(key, "ann") is before
    assert "not an image file" in canvas["overlay"]["message"]


def test_slow_and_broken_models_are_answered_with_a_message(faulty_segmenter, opened, caplog):
    model = faulty_segmenter()
    viewer = Viewer(model, time_limit_s=0.3)
    key = opened(viewer)
    model.delay = 1.0
    overlay = viewer.act(call(viewer, key, [click(140, 60)]), "ann")["overlay"]
    assert "longer than the server's limit of 0.3 s" in overlay["message"] and overlay["inputs"] == []
    time.sleep(1.0)  # the abandoned pass ends: until then it holds her turn (webapp.deadline)
    model.delay, model.fail = 0.0, True
    with caplog.at_level(logging.ERROR, logger="liverclick.webapp"):
        overlay = viewer.act(call(viewer, key, [click(140, 60)]), "ann")["overlay"]
    assert INTERNAL_ERROR.split(" (")[0] in overlay["message"] and "a bug deep" not in overlay["message"]
    assert "a bug deep in the model code" in caplog.text and overlay["inputs"] == []


def test_submit_saves_the_review_once_and_clears_the_form(segmenter, opened, tmp_path):
    with FeedbackStore.open(tmp_path / "fb.db") as store:
        viewer = Viewer(segmenter, store)
        key = opened(viewer)
        assert viewer.act(call(viewer, key, [click(140, 60)]), "ann")["overlay"]["review"].endswith("not saved yet.")
        outlined = viewer.tabs.get(key, "ann")
        with pytest.warns(UserWarning, match="say whether you agree"):
            canvas, *form = viewer.on_submit(key, None, None, 4, True, "", ANN)
        assert canvas["overlay"]["message"].startswith("Not saved: say whether you agree") and store.count() == 0
        canvas, *form = viewer.on_submit(key, "agree", None, 4, True, "fine", ANN)
        assert viewer.tabs.get(key, "ann").feedback_id == 1 and "saved as #1" in canvas["overlay"]["review"]
        assert form[0] is None and form[1].visible is False and form[3:] == [False, ""]  # the form starts afresh
        (record,) = store.iter_records()
        assert record.reviewer == "ann" and record.comment == "fine" and record.prompt == outlined.prompt
        with pytest.warns(UserWarning, match="already saved as #1"):  # pressing Submit again stores nothing
            viewer.on_submit(key, "agree", None, 4, True, "fine", ANN)
        assert store.count() == 1
    storeless = Viewer(segmenter)
    key = opened(storeless)
    with pytest.warns(UserWarning, match="keeps no feedback"):
        canvas, *_ = storeless.on_submit(key, "agree", None, 4, True, "", ANN)
    assert NO_STORE in canvas["overlay"]["message"]


def test_verdict_and_sign_in_line():
    assert Viewer.on_verdict("disagree").visible is True and Viewer.on_verdict("agree").visible is False
    assert Viewer.on_load(ANN) == "Reviewing as **ann**."
    assert Viewer.on_load(SimpleNamespace(username=None)).startswith("Not signed in")


def test_segment_and_feedback_endpoints(segmenter, scan, upload, tmp_path):
    prompt = json.dumps({"clicks": [{"x": 140, "y": 60, "positive": True}]})
    viewer = Api(Viewer(segmenter))  # its workspace holds the mask file while it lives
    mask_file, result = viewer.segment(FileData(path=upload(scan)), prompt, ANN)
    assert cv2.imread(mask_file.path, cv2.IMREAD_GRAYSCALE)[60, 140] == 255
    keys = ["class_probs", "predicted_class", "malignant_prob", "operating_points", "area_px", "measurements", "model"]
    assert list(result) == keys
    history = json.dumps({"clicks": [{"x": 140, "y": 60, "positive": True}, {"x": 20, "y": 20, "positive": False}]})
    before = tmp_path / "before.png"
    shutil.copy(mask_file.path, before)
    replayed = viewer.segment(FileData(path=upload(scan)), history, ANN)[0]
    one_pass = viewer.segment(FileData(path=upload(scan)), history, ANN, FileData(path=upload(str(before))))[0]
    assert np.array_equal(cv2.imread(replayed.path), cv2.imread(one_pass.path))  # the history, replayed or not
    with pytest.raises(gr.Error, match="send the image as a file"):
        viewer.segment(FileData(path="/etc/hostname"), prompt, ANN)
    with pytest.raises(gr.Error, match="send the image as a file"):  # not even a file the server made
        viewer.segment(FileData(path=mask_file.path), prompt, ANN)
    with pytest.raises(gr.Error, match="keeps no feedback"):
        viewer.feedback(FileData(path=upload(scan)), prompt, True, 4, True, ANN)
    with FeedbackStore.open(tmp_path / "fb.db") as store:
        viewer = Api(Viewer(segmenter, store))
        with pytest.raises(gr.Error, match="feedback needs a login"):
            viewer.feedback(FileData(path=upload(scan)), prompt, True, 4, True, SimpleNamespace(username=None))
        saved = viewer.feedback(FileData(path=upload(scan)), prompt, True, 4, True, ANN, comment="ok")
        assert list(saved) == ["id", "predicted_class", "class_probs", "area_px"] and saved["id"] == 1
        assert saved["predicted_class"] == result["predicted_class"] and store.count() == 1
