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

from webapp.feedback.store import FeedbackStore
from webapp.handlers import INTERNAL_ERROR, NO_STORE, Viewer
from webapp.session import Session

ANN = SimpleNamespace(username="ann")  # what Gradio passes as gr.Request for a signed-in reviewer
OUTPUTS = ("state", "view", "status", "classes", "malignancy", "lesion", "mask", "report", "submit", "note")


def shown(outputs) -> SimpleNamespace:
    """A model event's ten outputs by name."""
    assert len(outputs) == len(OUTPUTS)
    return SimpleNamespace(**dict(zip(OUTPUTS, outputs, strict=True)))


def at(session, x, y) -> SimpleNamespace:
    """A select event on image pixel (x, y) of the displayed (enlarged) view."""
    s = session.scale
    return SimpleNamespace(index=[(x + 0.5) * s - 0.5, (y + 0.5) * s - 0.5])


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
    """``opened(viewer, mode="lesion") -> Session``: the scan uploaded to ``viewer``."""
    return lambda viewer, mode="lesion": viewer.on_file(Session(), mode, upload(scan), ANN)[0]


def test_upload_then_click_outlines_classifies_and_offers_downloads(segmenter, scan, upload):
    viewer = Viewer(segmenter)
    path = upload(scan)
    *outputs, frames = viewer.on_file(Session(), "lesion", path, ANN)
    assert not Path(path).exists()  # read into memory and removed from disk at once
    page = shown(outputs)
    assert page.state.image.width == 200 and frames.visible is False
    assert cv2.imread(page.view).shape == (480, 800, 3) and "Click on the lesion" in page.status
    assert page.classes is None and page.mask.interactive is False and page.submit.interactive is False

    page = shown(viewer.on_select(page.state, "lesion", at(page.state, 140, 60)))
    assert page.state.prediction.mask[60, 140] and "Outlined from 1 input" in page.status
    assert set(page.classes) == set(segmenter.spec.class_names) and set(page.malignancy) == {"benign", "malignant"}
    assert "Longest diameter" in page.lesion and page.mask.interactive and page.submit.interactive
    report = json.loads(Path(page.report.value["path"]).read_text())
    assert report["prompt"] == {"clicks": [{"x": 140, "y": 60, "positive": True}]}
    mask = cv2.imread(page.mask.value["path"], cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(mask > 0, page.state.prediction.mask)

    assert shown(viewer.on_select(page.state, "lesion", SimpleNamespace(index=None))).state is page.state
    *cleared, frames = viewer.on_file(page.state, "lesion", None, ANN)  # the upload removed
    assert shown(cleared).state.image is None and shown(cleared).state.key == page.state.key


def test_mode_undo_and_clear(segmenter, opened):
    viewer = Viewer(segmenter)
    opened = opened(viewer, "box")
    corner = shown(viewer.on_select(opened, "box", at(opened, 120, 40)))
    assert corner.state.pending_corner == (120, 40) and "opposite corner" in corner.status
    assert shown(viewer.on_mode(corner.state, "lesion")).state.pending_corner is None
    boxed = shown(viewer.on_select(corner.state, "box", at(opened, 160, 80))).state
    refined = shown(viewer.on_select(boxed, "background", at(opened, 100, 60))).state
    assert shown(viewer.on_undo(refined, "background")).state.prompt == boxed.prompt
    cleared = shown(viewer.on_clear(refined, "lesion"))
    assert len(cleared.state.prompt) == 0 and cleared.classes is None


def test_a_bad_upload_is_explained_and_the_session_kept(segmenter, opened, upload, tmp_path):
    viewer = Viewer(segmenter)
    opened = opened(viewer)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    with pytest.warns(UserWarning, match="not an image file"):  # gr.Warning: a toast in the page
        *outputs, _ = viewer.on_file(opened, "lesion", upload(notes), ANN)
    page = shown(outputs)
    assert page.state is opened and "**Not an image file" in page.status


def test_slow_and_broken_models_are_answered_with_a_message(faulty_segmenter, opened, caplog):
    model = faulty_segmenter()
    viewer = Viewer(model, time_limit_s=0.3)
    opened = opened(viewer)
    model.delay = 1.0
    with pytest.warns(UserWarning, match="longer than the server's limit of 0.3 s"):
        page = shown(viewer.on_select(opened, "lesion", at(opened, 140, 60)))
    assert page.state is opened and page.classes is None
    model.delay, model.fail = 0.0, True
    with caplog.at_level(logging.ERROR, logger="liverclick.webapp"), pytest.warns(UserWarning):
        page = shown(viewer.on_select(opened, "lesion", at(opened, 140, 60)))
    assert INTERNAL_ERROR.split(" (")[0] in page.status and "a bug deep" not in page.status
    assert "a bug deep in the model code" in caplog.text


def test_submit_saves_the_review_once_and_clears_the_form(segmenter, opened, tmp_path):
    with FeedbackStore.open(tmp_path / "fb.db") as store:
        viewer = Viewer(segmenter, store)
        opened = opened(viewer)
        outlined = viewer.on_select(opened, "lesion", at(opened, 140, 60))[0]
        with pytest.warns(UserWarning, match="say whether you agree"):
            state, submit, note, *form = viewer.on_submit(outlined, None, None, 4, True, "", ANN)
        assert state is outlined and note.startswith("**Not saved:** say whether you agree") and store.count() == 0
        state, submit, note, *form = viewer.on_submit(outlined, "agree", None, 4, True, "fine", ANN)
        assert state.feedback_id == 1 and "Saved as #1" in note and submit.interactive is False
        assert form[0] is None and form[1].visible is False and form[3:] == [False, ""]  # the form starts afresh
        (record,) = store.iter_records()
        assert record.reviewer == "ann" and record.comment == "fine" and record.outline_rating == 4
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
