"""The viewer's event handlers called directly, as Gradio calls them, without a server or a browser."""

import json
import logging
import shutil
import uuid
from pathlib import Path
from types import SimpleNamespace

import cv2
import gradio as gr
import numpy as np
import pytest
from gradio import FileData
from gradio.utils import get_upload_folder

from webapp.canvas import act, picture_url
from webapp.feedback.store import FeedbackStore
from webapp.handlers import INTERNAL_ERROR, NO_STORE, Viewer
from webapp.session import Session

ANN = SimpleNamespace(username="ann")  # what Gradio passes as gr.Request for a signed-in reviewer
OUTPUTS = ("state", "canvas", "mask", "report", "submit", "note")


def shown(outputs) -> SimpleNamespace:
    """A page event's six outputs by name."""
    assert len(outputs) == len(OUTPUTS)
    return SimpleNamespace(**dict(zip(OUTPUTS, outputs, strict=True)))


def settled(outputs) -> SimpleNamespace:
    """The settle event's outputs (all but the canvas) by name."""
    return shown((outputs[0], None, *outputs[1:]))


def click(x, y, positive=True) -> dict:
    return {"kind": "click", "x": x, "y": y, "positive": positive}


def call(viewer, session, actions) -> dict:
    """The canvas's call with ``actions`` made on the picture ``session``'s tab shows."""
    tab = viewer.tabs.latest(session)
    return {"key": tab.key, "picture": picture_url(tab), "actions": actions}


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
    """``opened(viewer) -> Session``: the scan uploaded to ``viewer``."""
    return lambda viewer: viewer.on_file(Session(), upload(scan), ANN)[0]


def test_upload_shows_the_picture_once_then_clicks_outline_classify_and_offer_downloads(segmenter, scan, upload):
    viewer = Viewer(segmenter)
    path = upload(scan)
    *outputs, frames = viewer.on_file(Session(), path, ANN)
    assert not Path(path).exists()  # read into memory and removed from disk at once
    page = shown(outputs)
    assert page.state.image.width == 200 and frames.visible is False
    image = page.canvas["image"]
    assert (image["width"], image["height"]) == (200, 120) and image[
        "url"
    ] == f"gradio_api/file={page.state.image_file}"
    assert np.array_equal(cv2.imread(page.state.image_file, cv2.IMREAD_GRAYSCALE), page.state.image.pixels)
    assert page.canvas["key"] == page.state.key and page.canvas["overlay"]["result"] is None
    assert page.mask.interactive is False and page.submit.interactive is False

    answer = act(viewer, call(viewer, page.state, [click(140, 60)]), "ann")
    overlay = answer["overlay"]
    assert overlay["inputs"] == [{"x": 140, "y": 60, "positive": True}] and overlay["outline"]
    assert "Outlined from 1 input" in overlay["status"] and overlay["result"]["rows"][0][0] == "Area"
    page = settled(viewer.on_settle(page.state))
    assert page.state.prediction.mask[60, 140] and page.mask.interactive and page.submit.interactive
    report = json.loads(Path(page.report.value["path"]).read_text())
    assert report["prompt"] == {"clicks": [{"x": 140, "y": 60, "positive": True}]}
    mask = cv2.imread(page.mask.value["path"], cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(mask > 0, page.state.prediction.mask)
    assert viewer.canvas_value(page.state)["image"]["url"] == image["url"]  # the picture is not sent again

    *cleared, frames = viewer.on_file(page.state, None, ANN)  # the upload removed
    assert shown(cleared).state.image is None and shown(cleared).state.key == page.state.key


def test_canvas_inputs_apply_in_order_to_the_newest_session(segmenter, opened):
    viewer = Viewer(segmenter)
    stale = opened(viewer)
    actions = [click(140, 60), click(150, 70), click(100, 60, False), {"kind": "undo"}, click(160, 50)]
    overlay = act(viewer, call(viewer, stale, actions), "ann")["overlay"]
    assert [(i["x"], i["positive"]) for i in overlay["inputs"]] == [(140, True), (150, True), (160, True)]
    newest = viewer.tabs.latest(stale)
    assert len(newest.history) == 3 and newest.version == overlay["version"] > stale.version
    boxed = act(viewer, call(viewer, stale, [{"kind": "box", "box": [120, 40, 160, 80]}]), "ann")
    assert boxed["overlay"]["inputs"] == [{"box": [120, 40, 160, 80]}] and boxed["overlay"]["can_undo"]
    assert act(viewer, call(viewer, stale, [{"kind": "undo"}]), "ann")["overlay"]["inputs"][2]["x"] == 160
    cleared = act(viewer, call(viewer, stale, [{"kind": "clear"}]), "ann")["overlay"]
    assert cleared["inputs"] == [] and cleared["outline"] == [] and not cleared["can_undo"]
    # A page event given the stale gr.State value starts from the newest session.
    assert settled(viewer.on_settle(stale)).state.version == cleared["version"]


def test_canvas_calls_are_checked_and_errors_said_in_the_overlay(segmenter, opened):
    viewer = Viewer(segmenter)
    tab = opened(viewer)
    assert "another login" in act(viewer, call(viewer, tab, []), None)["error"]
    assert "another login" in act(viewer, call(viewer, tab, []), "bob")["error"]
    assert "expired" in act(viewer, {"key": "public/nope", "actions": []}, "ann")["error"]
    elsewhere = {**call(viewer, tab, [click(140, 60)]), "picture": "gradio_api/file=another/image.png"}
    assert "image changed" in act(viewer, elsewhere, "ann")["error"]  # made on a picture no longer shown
    assert viewer.tabs.latest(tab).prompt == tab.prompt
    assert "does not understand" in act(viewer, ["not", "a", "dict"], "ann")["error"]
    assert "at most 100" in act(viewer, call(viewer, tab, [{"kind": "undo"}] * 101), "ann")["error"]
    out = act(viewer, call(viewer, tab, [click(140, 60), click(500, 5), click(150, 70)]), "ann")
    overlay = out["overlay"]  # applied up to the click outside the image, which is explained
    assert len(overlay["inputs"]) == 1 and "outside the 200 x 120 image" in overlay["message"]
    for bad, message in (
        ({"kind": "click", "x": "1", "y": 2}, "finite numbers"),
        ({"kind": "box", "box": [1, 2]}, "four numbers"),
        ({"kind": "zoom"}, "unknown input"),
        ({"kind": "box", "box": [5, 5, 5, 30]}, "zero area"),
    ):
        assert message in act(viewer, call(viewer, tab, [bad]), "ann")["overlay"]["message"]


def test_a_bad_upload_is_explained_and_the_session_kept(segmenter, opened, upload, tmp_path):
    viewer = Viewer(segmenter)
    opened = opened(viewer)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    with pytest.warns(UserWarning, match="not an image file"):  # gr.Warning: a toast in the page
        *outputs, _ = viewer.on_file(opened, upload(notes), ANN)
    page = shown(outputs)
    assert page.state.version == opened.version and page.state.image is opened.image
    assert "not an image file" in page.canvas["overlay"]["message"]


def test_slow_and_broken_models_are_answered_with_a_message(faulty_segmenter, opened, caplog):
    model = faulty_segmenter()
    viewer = Viewer(model, time_limit_s=0.3)
    opened = opened(viewer)
    model.delay = 1.0
    overlay = act(viewer, call(viewer, opened, [click(140, 60)]), "ann")["overlay"]
    assert "longer than the server's limit of 0.3 s" in overlay["message"] and overlay["inputs"] == []
    model.delay, model.fail = 0.0, True
    with caplog.at_level(logging.ERROR, logger="liverclick.webapp"):
        overlay = act(viewer, call(viewer, opened, [click(140, 60)]), "ann")["overlay"]
    assert INTERNAL_ERROR.split(" (")[0] in overlay["message"] and "a bug deep" not in overlay["message"]
    assert "a bug deep in the model code" in caplog.text and overlay["inputs"] == []


def test_submit_saves_the_review_once_and_clears_the_form(segmenter, opened, tmp_path):
    with FeedbackStore.open(tmp_path / "fb.db") as store:
        viewer = Viewer(segmenter, store)
        opened = opened(viewer)
        act(viewer, call(viewer, opened, [click(140, 60)]), "ann")
        outlined = viewer.tabs.latest(opened)
        with pytest.warns(UserWarning, match="say whether you agree"):
            state, submit, note, *form = viewer.on_submit(opened, None, None, 4, True, "", ANN)
        assert state is outlined and note.startswith("**Not saved:** say whether you agree") and store.count() == 0
        state, submit, note, *form = viewer.on_submit(opened, "agree", None, 4, True, "fine", ANN)  # a stale state
        assert state.feedback_id == 1 and "Saved as #1" in note and submit.interactive is False
        assert form[0] is None and form[1].visible is False and form[3:] == [False, ""]  # the form starts afresh
        (record,) = store.iter_records()
        assert record.reviewer == "ann" and record.comment == "fine" and record.prompt == outlined.prompt
    with pytest.warns(UserWarning, match="keeps no feedback"):
        _, _, note, *_ = Viewer(segmenter).on_submit(outlined, "agree", None, 4, True, "", ANN)
    assert NO_STORE in note


def test_verdict_and_sign_in_line():
    assert Viewer.on_verdict("disagree").visible is True and Viewer.on_verdict("agree").visible is False
    assert Viewer.on_load(ANN) == "Reviewing as **ann**."
    assert Viewer.on_load(SimpleNamespace(username=None)).startswith("Not signed in")


def test_segment_and_feedback_endpoints(segmenter, scan, upload, tmp_path):
    prompt = json.dumps({"clicks": [{"x": 140, "y": 60, "positive": True}]})
    viewer = Viewer(segmenter)  # its workspace holds the mask file while it lives
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
        viewer = Viewer(segmenter, store)
        with pytest.raises(gr.Error, match="feedback needs a login"):
            viewer.feedback(FileData(path=upload(scan)), prompt, True, 4, True, SimpleNamespace(username=None))
        saved = viewer.feedback(FileData(path=upload(scan)), prompt, True, 4, True, ANN, comment="ok")
        assert list(saved) == ["id", "predicted_class", "class_probs", "area_px"] and saved["id"] == 1
        assert saved["predicted_class"] == result["predicted_class"] and store.count() == 1
