"""The viewer's handlers, without a server: (session, event) -> session, and what the page shows of it."""

import json

import cv2
import numpy as np
import pytest

from core.imageio import ImageError
from core.prompt import Prompt, PromptError
from webapp import session as sess
from webapp.feedback.record import FeedbackError
from webapp.feedback.store import FeedbackStore
from webapp.render import BOX, LESION, NEGATIVE, POSITIVE, render


@pytest.fixture
def opened(segmenter, speckle_image, tmp_path):
    path = tmp_path / "my scan (1).png"
    cv2.imwrite(str(path), speckle_image)
    return sess.open_image(segmenter, sess.Session(), str(path))


def at(session, x, y):
    """The display position of image pixel (x, y): the centre of its enlarged block."""
    s = session.scale
    return ((x + 0.5) * s - 0.5, (y + 0.5) * s - 0.5)


def box(segmenter, session, p, q):
    """Two clicks in box mode at image pixels p and q."""
    return sess.click(segmenter, sess.click(segmenter, session, at(session, *p), "box"), at(session, *q), "box")


def test_display_scale_and_click_mapping(opened):
    assert sess.display_scale(200, 120) == 4.0  # small images are enlarged by a whole factor
    assert sess.display_scale(800, 600) == 1.0
    assert sess.display_scale(2560, 1000) == 0.5
    assert opened.scale == 4.0
    assert opened.image_point((0, 0)) == (0, 0) and opened.image_point((3, 3)) == (0, 0)
    assert opened.image_point((4, 7)) == (1, 1)
    assert opened.image_point((799, 479)) == (199, 119)
    assert opened.image_point((5000, -3)) == (199, 0)  # clamped into the image


def test_open_image_starts_a_fresh_prompt(segmenter, opened, tmp_path):
    assert opened.prepared is not None and opened.image.width == 200
    assert opened.name == "my_scan_1" and len(opened.prompt) == 0 and opened.prediction is None
    assert opened.key and sess.open_image(segmenter, opened, opened.source).key == opened.key  # the tab's folder
    assert sess.open_image(segmenter, sess.Session(), opened.source).key != opened.key
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    with pytest.raises(ImageError, match="not an image file"):
        sess.open_image(segmenter, opened, str(bad))


def test_lesion_click_predicts_and_measures(segmenter, opened):
    s = sess.click(segmenter, opened, at(opened, 140, 60), "lesion")
    assert s.prompt.to_dict() == {"clicks": [{"x": 140, "y": 60, "positive": True}]}
    assert s.prediction.mask.shape == (120, 200) and s.prediction.mask[60, 140]
    assert sum(s.prediction.class_probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert s.measurements.area_px == s.prediction.area_px > 0
    assert s.measurements.area_mm2 is None  # a PNG carries no pixel spacing
    assert opened.prompt == Prompt() and opened.prediction is None  # the old session is untouched


def test_box_takes_two_corners_then_clicks_refine_it(segmenter, opened):
    first = sess.click(segmenter, opened, at(opened, 120, 40), "box")
    assert first.pending_corner == (120, 40) and len(first.prompt) == 0 and first.prediction is None
    assert "opposite corner" in sess.guidance(first, "box")
    boxed = sess.click(segmenter, first, at(opened, 160, 80), "box")
    assert boxed.pending_corner is None and boxed.prompt.box.to_list() == [120, 40, 160, 80]
    assert boxed.prediction.mask[60, 140]
    refined = sess.click(segmenter, boxed, at(opened, 100, 60), "background")
    assert len(refined.prompt) == 2 and refined.prompt.box is not None
    assert refined.prediction is not None
    # corners in any order
    assert box(segmenter, opened, (160, 80), (120, 40)).prompt.box.to_list() == [120, 40, 160, 80]


def test_zero_area_box_is_refused_and_the_session_goes_on(segmenter, opened):
    first = sess.click(segmenter, opened, at(opened, 50, 50), "box")
    with pytest.raises(PromptError, match="zero area"):
        sess.click(segmenter, first, at(opened, 50, 50), "box")
    assert first.pending_corner == (50, 50)  # still waiting for a proper second corner


def test_background_points_alone_wait_for_a_lesion_click(segmenter, opened):
    s = sess.click(segmenter, opened, at(opened, 10, 10), "background")
    assert len(s.prompt) == 1 and s.prediction is None
    assert "Background points only" in sess.guidance(s, "background")
    s = sess.click(segmenter, s, at(opened, 140, 60), "lesion")
    assert s.prediction is not None and not s.prediction.mask[10, 10]


def test_undo_takes_back_the_pending_corner_then_inputs(segmenter, opened):
    one = sess.click(segmenter, opened, at(opened, 140, 60), "lesion")
    two = sess.click(segmenter, one, at(opened, 30, 30), "background")
    pending = sess.click(segmenter, two, at(opened, 5, 5), "box")
    assert sess.undo(segmenter, pending).prompt == two.prompt
    back = sess.undo(segmenter, two)
    assert back.prompt == one.prompt and np.array_equal(back.prediction.mask, one.prediction.mask)
    empty = sess.undo(segmenter, back)
    assert len(empty.prompt) == 0 and empty.prediction is None and empty.measurements is None
    assert sess.undo(segmenter, empty) == empty


def test_clear_and_mode_switch(segmenter, opened):
    s = sess.click(segmenter, opened, at(opened, 140, 60), "lesion")
    cleared = sess.clear(s)
    assert cleared.image is s.image and len(cleared.prompt) == 0 and cleared.prediction is None
    pending = sess.click(segmenter, s, at(opened, 5, 5), "box")
    assert sess.set_mode(pending, "box").pending_corner == (5, 5)
    assert sess.set_mode(pending, "lesion").pending_corner is None


def test_no_image_yet(segmenter):
    blank = sess.Session()
    with pytest.raises(PromptError, match="upload an image first"):
        sess.click(segmenter, blank, (10, 10), "lesion")
    with pytest.raises(PromptError, match="upload an image first"):
        sess.choose_frame(segmenter, blank, 1)
    assert sess.undo(segmenter, blank) == blank
    assert "Upload" in sess.guidance(blank, "lesion")


def test_multiframe_dicom_frames_keep_the_prompt_and_measure_in_mm(segmenter, tmp_path, image_bytes):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, size=(3, 96, 128)).astype(np.uint8)
    path = tmp_path / "cine.dcm"
    path.write_bytes(image_bytes.dicom(frames, spacing=(0.2, 0.25)))
    s = sess.open_image(segmenter, sess.Session(), str(path))
    assert s.image.n_frames == 3 and s.image.frame == 0
    s = sess.click(segmenter, s, at(s, 64, 48), "lesion")
    second = sess.choose_frame(segmenter, s, 2)
    assert second.image.frame == 2 and second.prompt == s.prompt and second.prediction is not None
    assert np.array_equal(second.image.pixels, frames[2])
    m = second.measurements
    assert m.area_mm2 == pytest.approx(m.area_px * 0.2 * 0.25)
    lines = sess.measurement_lines(second, "CPUExecutionProvider")
    assert "mm²" in lines and "0.25 x 0.2 mm per pixel" in lines and "CPUExecutionProvider" in lines
    assert "frame 2 of 3" in lines
    assert sess.report(second, segmenter)["image"]["frame"] == 2


def test_report_is_json_and_replays(segmenter, opened):
    s = sess.click(segmenter, opened, at(opened, 140, 60), "lesion")
    s = box(segmenter, s, (100, 20), (180, 100))
    report = json.loads(json.dumps(sess.report(s, segmenter)))
    assert Prompt.from_dict(report["prompt"]).to_dict() == s.prompt.to_dict()
    assert report["model"] == {"name": "tiny-four", "version": "1.2", "provider": "CPUExecutionProvider"}
    assert set(report["class_probs"]) == {"cyst", "hemangioma", "metastasis", "hcc"}
    assert report["malignant_prob"] == pytest.approx(report["class_probs"]["metastasis"] + report["class_probs"]["hcc"])
    assert report["measurements"]["area_px"] == int(s.prediction.mask.sum())
    assert report["notice"] == sess.NOTICE and report["image"]["pixel_spacing_mm"] is None
    assert sess.malignancy(s.prediction)["benign"] == pytest.approx(1 - report["malignant_prob"])
    assert "no mm" in sess.measurement_lines(s, "cpu")


def _has(view, colour, tol=30):
    return bool((np.abs(view.astype(int) - colour).max(axis=-1) <= tol).any())


def test_render_draws_mask_markers_box_and_pending_corner(segmenter, opened):
    plain = render(opened)
    assert plain.shape == (480, 800, 3) and (plain[..., 0] == plain[..., 2]).all()  # gray, enlarged 4x
    s = sess.click(segmenter, opened, at(opened, 140, 60), "lesion")
    s = sess.click(segmenter, s, at(opened, 20, 20), "background")
    view = render(s)
    assert _has(view, LESION) and _has(view, POSITIVE) and _has(view, NEGATIVE)
    y, x = 60 * 4 + 30, 140 * 4 + 30  # inside the lesion, away from the marker: tinted, not gray
    assert view[y, x, 0] > view[y, x, 2]
    assert not _has(view, BOX)
    pending = render(sess.click(segmenter, s, at(opened, 5, 100), "box"))
    assert _has(pending, BOX)
    boxed = render(box(segmenter, opened, (120, 40), (160, 80)))
    assert tuple(boxed[40 * 4 + 1, 140 * 4]) == BOX  # the top edge of the box


def test_large_image_is_shown_reduced_and_clicks_map_back(segmenter, tmp_path):
    path = tmp_path / "wide.png"
    cv2.imwrite(str(path), np.random.default_rng(2).integers(0, 255, (1500, 2600)).astype(np.uint8))
    s = sess.open_image(segmenter, sess.Session(), str(path))
    assert s.scale == pytest.approx(1280 / 2600)
    assert render(s).shape == (738, 1280, 3)
    x, y = s.image_point((640, 369))
    assert abs(x - 1300) <= 1 and abs(y - 750) <= 1
    s = sess.click(segmenter, s, (640, 369), "lesion")
    assert s.prediction.mask.shape == (1500, 2600) and s.prediction.mask[y, x]
    assert render(s).shape == (738, 1280, 3)


# --- reviewer feedback --------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path):
    with FeedbackStore.open(tmp_path / "feedback.db", store_images=True) as s:
        yield s


def test_review_form_needs_a_verdict_and_a_rating():
    with pytest.raises(FeedbackError, match="agree with the class"):
        sess.Review.from_form(None, None, 3, False, "")
    with pytest.raises(FeedbackError, match="rate the outline"):
        sess.Review.from_form("agree", None, None, False, "")
    assert sess.Review.from_form("agree", "cyst", 4, True, None) == sess.Review(True, 4, True, None, "")  # ignored
    assert sess.Review.from_form("disagree", "cyst", 2, False, "hm").corrected_class == "cyst"


def test_review_stores_the_final_outline_once_per_prediction(segmenter, opened, store):
    first = sess.click(segmenter, opened, at(opened, 140, 60), "lesion")
    final = sess.click(segmenter, first, at(opened, 165, 60), "background")  # the reviewer's correction
    assert sess.review_note(final) == "Not saved yet."
    predicted = final.prediction.predicted_class
    other = next(c for c in segmenter.spec.class_names if c != predicted)
    review = sess.Review(agree=False, outline_rating=4, accepted=True, corrected_class=other, comment="ok")
    saved = sess.submit_review(store, segmenter, final, "dr_a", review)
    assert saved.feedback_id == 1 and "Saved as #1" in sess.review_note(saved) and final.feedback_id is None
    (record,) = store.iter_records()
    assert record.reviewer == "dr_a" and (record.model_name, record.model_version) == ("tiny-four", "1.2")
    assert record.prompt == final.prompt and np.array_equal(record.mask, final.prediction.mask)
    assert record.class_probs == pytest.approx(final.prediction.class_probs) and record.reference_class == other
    assert np.array_equal(record.image, final.image.pixels) and record.created_at.endswith("+00:00")

    with pytest.raises(FeedbackError, match="already saved as #1"):  # pressing Submit again stores nothing
        sess.submit_review(store, segmenter, saved, "dr_a", review)
    assert sess.set_mode(saved, "box").feedback_id == 1  # nothing about the outline changed
    for changed in (
        sess.click(segmenter, saved, at(opened, 150, 70), "lesion"),
        sess.undo(segmenter, saved),
        sess.clear(saved),
        sess.open_image(segmenter, saved, saved.source),
    ):
        assert changed.feedback_id is None
    again = sess.submit_review(store, segmenter, sess.undo(segmenter, saved), "dr_b", sess.Review(True, 2, False))
    assert again.feedback_id == 2 and store.count() == 2
    # A submit whose answer was lost (the page never learnt the id) and is sent again stores nothing new.
    assert sess.submit_review(store, segmenter, final, "dr_a", review).feedback_id == 1 and store.count() == 2


def test_review_is_refused_without_a_login_an_outline_or_a_valid_answer(segmenter, opened, store):
    outlined = sess.click(segmenter, opened, at(opened, 140, 60), "lesion")
    review = sess.Review(agree=True, outline_rating=3, accepted=False)
    with pytest.raises(FeedbackError, match="feedback needs a login"):
        sess.submit_review(store, segmenter, outlined, None, review)
    with pytest.raises(FeedbackError, match="outline a lesion first"):
        sess.submit_review(store, segmenter, opened, "dr_a", review)
    background_only = sess.click(segmenter, opened, at(opened, 10, 10), "background")
    with pytest.raises(FeedbackError, match="outline a lesion first"):
        sess.submit_review(store, segmenter, background_only, "dr_a", review)
    with pytest.raises(FeedbackError, match="must give the corrected class"):
        sess.submit_review(store, segmenter, outlined, "dr_a", sess.Review(False, 3, False))
    with pytest.raises(FeedbackError, match="'benign' is not one of the model's classes"):
        sess.submit_review(store, segmenter, outlined, "dr_a", sess.Review(False, 3, False, "benign"))
    assert store.count() == 0 and sess.review_note(opened) == "Outline a lesion to review it."
