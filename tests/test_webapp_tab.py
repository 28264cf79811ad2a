"""A viewer tab without a server: (tab, input) -> tab, its outline history, and what the page shows."""

import json

import cv2
import numpy as np
import pytest

from core.imageio import ImageError
from core.prompt import Prompt, PromptError
from webapp import tab, text
from webapp.feedback.record import FeedbackError
from webapp.feedback.store import FeedbackStore
from webapp.overlay import overlay, review_line


@pytest.fixture
def opened(segmenter, speckle_image, tmp_path):
    path = tmp_path / "my scan (1).png"
    cv2.imwrite(str(path), speckle_image)
    return tab.open_image(segmenter, tab.Tab(key="public/tab"), str(path))


class Recorder:
    """A model that records each pass's ``previous`` outline as the runtime uses it (wrapping the tiny model)."""

    def __init__(self, segmenter, monkeypatch):
        self.segmenter, self.previous = segmenter, []
        real = type(segmenter)._predict

        def recorded(model, prepared, prompt, previous):
            self.previous.append(None if previous is None or prompt.starts_afresh else previous.copy())
            return real(model, prepared, prompt, previous)

        monkeypatch.setattr(type(segmenter), "_predict", recorded)

    def __getattr__(self, name):
        return getattr(self.segmenter, name)


@pytest.fixture
def recorder(segmenter, monkeypatch):
    return Recorder(segmenter, monkeypatch)


def test_open_image_starts_a_fresh_prompt(segmenter, opened, tmp_path):
    assert opened.prepared is not None and opened.image.width == 200
    assert opened.name == "my_scan_1" and len(opened.prompt) == 0 and opened.prediction is None
    assert opened.history == ()
    clicked = tab.click(segmenter, opened, 140, 60)
    again = tab.open_image(segmenter, clicked, opened.source)
    assert again.key == opened.key and again.prompt == Prompt() and again.history == ()  # the same tab
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="not an image file"):
        tab.open_image(segmenter, opened, str(bad))


def test_lesion_click_predicts_and_measures(segmenter, opened):
    s = tab.click(segmenter, opened, 140.4, 59.6)
    assert s.prompt.to_dict() == {"clicks": [{"x": 140, "y": 60, "positive": True}]}
    assert s.prediction.mask.shape == (120, 200) and s.prediction.mask[60, 140]
    assert sum(s.prediction.class_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert s.measurements.area_px == s.prediction.area_px > 0
    assert s.measurements.area_mm2 is None  # a PNG carries no pixel spacing
    assert opened.prompt == Prompt() and opened.prediction is None  # the old session is untouched
    with pytest.raises(PromptError, match="outside"):
        tab.click(segmenter, opened, 250, 10)


def test_each_click_is_one_pass_fed_the_outline_shown(segmenter, opened, recorder):
    model = recorder
    one = tab.click(model, opened, 140, 60)
    two = tab.click(model, one, 150, 70)
    three = tab.click(model, two, 100, 60, positive=False)
    assert model.previous[0] is None  # a first click
    assert np.array_equal(model.previous[1], one.prediction.mask)
    assert np.array_equal(model.previous[2], two.prediction.mask)
    assert len(three.prompt) == 3 and len(three.history) == 3


def test_undo_restores_the_outline_shown_before_exactly_without_predicting(segmenter, opened, recorder):
    model = recorder
    one = tab.click(model, opened, 140, 60)
    two = tab.click(model, one, 160, 75)
    three = tab.click(model, two, 120, 50, positive=False)
    passes = len(model.previous)
    back = tab.undo(three)
    assert len(model.previous) == passes  # no pass: the outline comes from the history
    assert back.prompt == two.prompt and np.array_equal(back.prediction.mask, two.prediction.mask)
    assert back.prediction.class_probs == two.prediction.class_probs and back.measurements == two.measurements
    assert back.request_id == two.request_id and back.history == two.history
    first = tab.undo(back)
    assert first.prompt == one.prompt and np.array_equal(first.prediction.mask, one.prediction.mask)
    empty = tab.undo(first)
    assert len(empty.prompt) == 0 and empty.prediction is None and empty.measurements is None
    assert tab.undo(empty) == empty and empty.history == ()


def test_a_box_starts_a_new_object_and_undo_returns_to_the_clicks_before_it(segmenter, opened, recorder):
    model = recorder
    clicked = tab.click(model, tab.click(model, opened, 140, 60), 150, 65)
    boxed = tab.box(model, clicked, 160, 80, 120, 40)  # corners in any order
    assert boxed.prompt == clicked.prompt.add_box(120, 40, 160, 80)  # the history goes on ...
    assert boxed.prompt.in_force == Prompt().add_box(120, 40, 160, 80).inputs  # ... and the box starts afresh
    assert model.previous[-1] is None and boxed.prediction.mask[60, 140]
    alone = tab.box(model, opened, 120, 40, 160, 80)
    assert np.array_equal(boxed.prediction.mask, alone.prediction.mask)
    refined = tab.click(model, boxed, 100, 60, positive=False)
    assert len(refined.prompt.in_force) == 2 and refined.prompt.box is not None
    assert np.array_equal(model.previous[-1], boxed.prediction.mask)
    assert "Outlined from 2 inputs" in overlay(refined, segmenter)["status"]
    back = tab.undo(tab.undo(refined))
    assert back.prompt == clicked.prompt and np.array_equal(back.prediction.mask, clicked.prediction.mask)
    with pytest.raises(PromptError, match="zero area"):
        tab.box(model, opened, 50, 50, 50, 80)


def test_background_points_alone_wait_for_a_lesion_click(segmenter, opened, recorder):
    model = recorder
    s = tab.click(model, opened, 10, 10, positive=False)
    assert len(s.prompt) == 1 and s.prediction is None and model.previous == []
    assert "Background points only" in overlay(s, segmenter)["status"]
    s = tab.click(model, s, 140, 60)
    assert s.prediction is not None and not s.prediction.mask[10, 10] and model.previous == [None]


def test_clear_empties_the_prompt_and_the_history(segmenter, opened):
    s = tab.click(segmenter, tab.click(segmenter, opened, 140, 60), 150, 70)
    cleared = tab.clear(s)
    assert cleared.image is s.image and len(cleared.prompt) == 0 and cleared.prediction is None
    assert cleared.history == () and tab.undo(cleared) == cleared


def test_history_packs_outlines_and_holds_one_step_an_input(segmenter, opened):
    s = tab.click(segmenter, opened, 140, 60)
    step = tab.Step.of(s)
    x0, y0, x1, y1 = step.region
    assert step.prediction.mask.size == 0 and len(step.bits) <= ((x1 - x0) * (y1 - y0) + 7) // 8
    for x in range(100, 106):
        s = tab.click(segmenter, s, x, 60)
    assert len(s.history) == len(s.prompt) == 7
    assert s.prompt.add_click(1, 1).undo() == s.prompt  # undo is the prompt's undo: one entry back


def test_replay_enters_a_prompt_input_by_input(segmenter, opened, recorder):
    model = recorder
    prompt = Prompt().add_click(10, 10, False).add_click(140, 60).add_click(150, 70)
    s = tab.replay(model, opened, prompt)
    assert s.prompt == prompt and len(s.history) == 3 and model.previous[0] is None
    clicked = tab.click(segmenter, tab.click(segmenter, tab.click(segmenter, opened, 10, 10, False), 140, 60), 150, 70)
    assert np.array_equal(s.prediction.mask, clicked.prediction.mask)
    assert tab.undo(s).prompt == Prompt(prompt.inputs[:2])


def test_no_image_yet(segmenter):
    blank = tab.Tab()
    with pytest.raises(PromptError, match="upload an image first"):
        tab.click(segmenter, blank, 10, 10)
    with pytest.raises(PromptError, match="upload an image first"):
        tab.box(segmenter, blank, 1, 1, 9, 9)
    with pytest.raises(PromptError, match="upload an image first"):
        tab.choose_frame(segmenter, blank, 1)
    assert tab.undo(blank) == blank
    assert "Upload" in overlay(blank, segmenter)["status"]


def test_multiframe_dicom_frames_keep_the_prompt_and_measure_in_mm(segmenter, tmp_path, image_bytes):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, size=(3, 96, 128)).astype(np.uint8)
    path = tmp_path / "cine.dcm"
    path.write_bytes(image_bytes.dicom(frames, spacing=(0.2, 0.25)))
    s = tab.open_image(segmenter, tab.Tab(), str(path))
    assert s.image.n_frames == 3 and s.image.frame == 0
    s = tab.click(segmenter, tab.click(segmenter, s, 64, 48), 70, 50)
    second = tab.choose_frame(segmenter, replace_file(s), 2)
    assert second.image.frame == 2 and second.prompt == s.prompt and second.prediction is not None
    assert second.image_file == "" and len(second.history) == 2  # a new picture; the frame's own outlines
    assert np.array_equal(second.image.pixels, frames[2])
    m = second.measurements
    assert m.area_mm2 == pytest.approx(m.area_px * 0.2 * 0.25)
    rows = dict(overlay(second, segmenter)["result"]["rows"])
    assert "mm²" in rows["Area"] and "0.25 x 0.2 mm per pixel" in rows["Image"] and "frame 2 of 3" in rows["Image"]
    assert "CPUExecutionProvider" in rows["Time"]
    assert tab.report(second, segmenter)["image"]["frame"] == 2


def replace_file(shown):
    """``shown`` as the page has it: its picture written (the frame change must ask for a new one)."""
    from dataclasses import replace

    return replace(shown, image_file="/served/image.png")


def test_report_is_json_and_replays(segmenter, opened):
    s = tab.box(segmenter, tab.click(segmenter, opened, 140, 60), 100, 20, 180, 100)
    s = tab.click(segmenter, s, 150, 60)
    report = json.loads(json.dumps(tab.report(s, segmenter)))
    assert Prompt.from_dict(report["prompt"]).to_dict() == s.prompt.to_dict()
    replayed = segmenter.replay(segmenter.prepare(s.image), Prompt.from_dict(report["prompt"]))
    assert np.array_equal(replayed.mask, s.prediction.mask)  # the report's prompt gives the outline shown
    assert report["model"] == {"name": "tiny-four", "version": "1.2", "provider": "CPUExecutionProvider"}
    assert set(report["class_probs"]) == {"cyst", "hemangioma", "metastasis", "hcc"}
    assert report["malignant_prob"] == pytest.approx(report["class_probs"]["metastasis"] + report["class_probs"]["hcc"])
    assert report["measurements"]["area_px"] == int(s.prediction.mask.sum())
    assert report["notice"] == text.NOTICE and report["image"]["pixel_spacing_mm"] is None
    assert "no mm" in dict(overlay(s, segmenter)["result"]["rows"])["Image"]


# --- reviewer feedback --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    with FeedbackStore.open(tmp_path / "feedback.db", store_images=True) as s:
        yield s


def test_review_form_needs_a_verdict_and_a_rating():
    with pytest.raises(FeedbackError, match="agree with the class"):
        tab.Review.from_form(None, None, 3, False, "")
    with pytest.raises(FeedbackError, match="rate the outline"):
        tab.Review.from_form("agree", None, None, False, "")
    assert tab.Review.from_form("agree", "cyst", 4, True, None) == tab.Review(
        agree=True, outline_rating=4, accepted=True
    )  # ignored
    assert tab.Review.from_form("disagree", "cyst", 2, False, "hm").corrected_class == "cyst"


def test_review_stores_the_final_outline_once_per_prediction(segmenter, opened, store):
    first = tab.click(segmenter, opened, 140, 60)
    final = tab.click(segmenter, first, 165, 60, positive=False)  # the reviewer's correction
    assert review_line(final) == "Feedback on this outline: not saved yet."
    predicted = final.prediction.predicted_class
    other = next(c for c in segmenter.spec.class_names if c != predicted)
    review = tab.Review(agree=False, outline_rating=4, accepted=True, corrected_class=other, comment="ok")
    saved = tab.submit_review(store, segmenter, final, "dr_a", review)
    assert saved.feedback_id == 1 and "saved as #1" in review_line(saved) and final.feedback_id is None
    (record,) = store.iter_records()
    assert record.reviewer == "dr_a" and (record.model_name, record.model_version) == ("tiny-four", "1.2")
    assert record.prompt == final.prompt and np.array_equal(record.mask, final.prediction.mask)
    assert record.class_probs == pytest.approx(final.prediction.class_probs) and record.reference_class == other
    assert np.array_equal(record.image, final.image.pixels) and record.created_at.endswith("+00:00")

    with pytest.raises(FeedbackError, match="already saved as #1"):  # pressing Submit again stores nothing
        tab.submit_review(store, segmenter, saved, "dr_a", review)
    for changed in (
        tab.click(segmenter, saved, 150, 70),
        tab.undo(saved),
        tab.clear(saved),
        tab.open_image(segmenter, saved, saved.source),
    ):
        assert changed.feedback_id is None
    again = tab.submit_review(
        store, segmenter, tab.undo(saved), "dr_b", tab.Review(agree=True, outline_rating=2, accepted=False)
    )
    assert again.feedback_id == 2 and store.count() == 2
    # A submit whose answer was lost (the page never learnt the id) and is sent again stores nothing new.
    assert tab.submit_review(store, segmenter, final, "dr_a", review).feedback_id == 1 and store.count() == 2


def test_review_is_refused_without_a_login_an_outline_or_a_valid_answer(segmenter, opened, store):
    outlined = tab.click(segmenter, opened, 140, 60)
    review = tab.Review(agree=True, outline_rating=3, accepted=False)
    with pytest.raises(FeedbackError, match="feedback needs a login"):
        tab.submit_review(store, segmenter, outlined, None, review)
    with pytest.raises(FeedbackError, match="outline a lesion first"):
        tab.submit_review(store, segmenter, opened, "dr_a", review)
    background_only = tab.click(segmenter, opened, 10, 10, positive=False)
    with pytest.raises(FeedbackError, match="outline a lesion first"):
        tab.submit_review(store, segmenter, background_only, "dr_a", review)
    with pytest.raises(FeedbackError, match="must give the corrected class"):
        tab.submit_review(store, segmenter, outlined, "dr_a", tab.Review(agree=False, outline_rating=3, accepted=False))
    with pytest.raises(FeedbackError, match="'benign' is not one of the model's classes"):
        tab.submit_review(
            store,
            segmenter,
            outlined,
            "dr_a",
            tab.Review(agree=False, outline_rating=3, accepted=False, corrected_class="benign"),
        )
    assert store.count() == 0 and review_line(opened) == text.NO_OUTLINE
