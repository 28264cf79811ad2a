"""The iterative click model: the contract's click encodings and previous-outline channel, corrective clicks
in one pass, replayed click histories, training with the model in the loop, calibration and shifts."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

from core.cli import main
from core.contract import PAPER_CHANNELS, ContractError, InputSpec
from core.metrics import jaccard
from core.preprocess import encode_clicks
from core.prompt import Prompt
from core.runtime import Segmenter
from training.evaluation import calibration
from training.shifts import STRESS_SHIFTS, TRAINING_RANGES, random_shift

ITERATIVE = dict(class_names=("benign", "malignant"), malignant_classes=("malignant",), previous_mask=True)


# --- the contract ---------------------------------------------------------------------------------------
def test_a_version_1_contract_reads_as_the_papers_three_channels():
    v1 = {"spec_version": 1, "input_size": 64, "class_names": ["a", "b"], "malignant_classes": ["b"],
          "channels": list(PAPER_CHANNELS)}  # fmt: skip
    spec = InputSpec.from_dict(v1)
    assert spec.channels == PAPER_CHANNELS and spec.in_channels == 3 and spec.temperature == 1.0
    with pytest.raises(ContractError, match="channels"):
        InputSpec.from_dict({**v1, "channels": ["image", "x", "y"]})


def test_channels_follow_the_encoding_and_the_previous_outline():
    spec = InputSpec(input_size=64, click_encoding="both", **ITERATIVE)
    assert spec.channels == ("image", "fg_distance", "bg_distance", "fg_disk", "bg_disk", "previous_mask")
    again = InputSpec.from_json(spec.to_json())
    assert again == spec
    with pytest.raises(ContractError, match="click_encoding"):
        InputSpec(input_size=64, click_encoding="rings", **ITERATIVE)
    calibrated = InputSpec(input_size=64, temperature=1.5, operating_points={"sensitivity_90": 0.2}, **ITERATIVE)
    assert InputSpec.from_json(calibrated.to_json()).operating_points == (("sensitivity_90", 0.2),)


def test_click_encodings_by_hand():
    spec = InputSpec(input_size=32, click_encoding="both", distance_truncation=10.0, disk_radius=2.0, **ITERATIVE)
    fg_dist, bg_dist, fg_disk, bg_disk = encode_clicks(np.array([[5.0, 5.0]]), np.empty((0, 2)), spec)
    assert fg_dist[5, 5] == 0 and fg_dist[5, 8] == pytest.approx(0.3) and fg_dist[5, 20] == 1.0  # 15 px: truncated
    assert fg_disk[5, 7] == 1 and fg_disk[5, 8] == 0 and fg_disk.sum() == 13  # the pixels within 2 px
    assert (bg_dist == 1).all() and (bg_disk == 0).all()


# --- the runtime ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def iterative(make_model):
    spec = InputSpec(input_size=64, zoom_context=1.5, zoom_min_side=16, **ITERATIVE)
    return Segmenter(make_model(spec), provider="cpu")


def test_a_corrective_click_is_one_pass_around_the_previous_outline(iterative, speckle_image):
    first = iterative.predict(speckle_image, Prompt().add_click(140, 60))
    assert "first_pass" in first.timings_ms
    previous = np.zeros_like(first.mask)
    previous[55:66, 20:145] = True  # an earlier outline reaching far left of the clicks
    prompt = Prompt().add_click(140, 60).add_click(150, 62)
    second = iterative.predict(speckle_image, prompt, previous)
    assert "first_pass" not in second.timings_ms
    x0, y0, x1, y1 = second.region
    assert x0 <= 20 and x1 > 150  # zoomed on the previous outline and the clicks together
    assert second.mask[60, 25] and second.mask[60, 145]  # the tiny model keeps the previous outline it was shown
    assert not iterative.predict(speckle_image, prompt).mask[60, 25]  # which the clicks alone do not reach


def test_replay_equals_the_history_sent_one_click_at_a_time(iterative, speckle_image):
    clicks = [(140, 60, True), (120, 40, True), (165, 80, False), (150, 45, True)]
    prompt, previous, before_last = Prompt(), None, None
    for x, y, positive in clicks:
        prompt = prompt.add_click(x, y, positive)
        before_last = previous
        step = iterative.predict(speckle_image, prompt, previous)
        previous = step.mask
    replayed = iterative.replay(speckle_image, prompt)
    assert np.array_equal(replayed.mask, step.mask)
    assert np.array_equal(iterative.replay(speckle_image, prompt, before_last).mask, step.mask)
    boxed = prompt.add_box(100, 20, 180, 100)  # a box starts afresh: the outlines before it are not shown
    assert np.array_equal(iterative.replay(speckle_image, boxed).mask, iterative.predict(speckle_image, boxed).mask)


def test_clicks_before_a_box_change_nothing(iterative, speckle_image):
    """[clicks, box, corrections] and [box, corrections] give the same outline, replayed or in one pass."""
    box_first = Prompt().add_box(100, 20, 180, 100).add_click(175, 95, False).add_click(110, 30)
    strays = Prompt().add_click(3, 3).add_click(150, 60, False).add_click(60, 100)
    history = Prompt(strays.inputs + box_first.inputs)
    alone = iterative.replay(speckle_image, box_first)
    assert np.array_equal(iterative.replay(speckle_image, history).mask, alone.mask)
    assert iterative.replay(speckle_image, history).class_probs == alone.class_probs
    stepped = [p.mask for _, p in iterative.replay_steps(iterative.prepare(speckle_image), history)]
    assert np.array_equal(stepped[-1], alone.mask) and not np.array_equal(stepped[2], stepped[3])
    before_last = iterative.replay(speckle_image, history.undo()).mask
    assert np.array_equal(iterative.replay(speckle_image, history, before_last).mask, alone.mask)
    shown = iterative.replay(speckle_image, strays).mask  # the outline shown when the box is drawn: not used
    boxed = Prompt(strays.inputs + box_first.inputs[:1])
    assert np.array_equal(
        iterative.predict(speckle_image, boxed, shown).mask, iterative.predict(speckle_image, boxed).mask
    )


def test_predict_history_matches_requests_sent_one_at_a_time(tmp_path, iterative, speckle_image):
    """liverclick predict: a history of k clicks gives the outline of k requests each sent with the previous
    answer as previous_mask."""
    Image.fromarray(speckle_image).save(tmp_path / "scan.png")
    model = str(iterative.path)
    clicks = [{"x": 140, "y": 60, "positive": True}, {"x": 120, "y": 40, "positive": True},
              {"x": 165, "y": 80, "positive": False}]  # fmt: skip
    (tmp_path / "all.jsonl").write_text(json.dumps({"id": "all", "image": "scan.png", "clicks": clicks}) + "\n")
    assert main(["predict", "--model", model, "--requests", str(tmp_path / "all.jsonl"), "--out", str(tmp_path)]) == 0
    previous = None
    for k in range(1, len(clicks) + 1):
        request = {"id": f"step{k}", "image": "scan.png", "clicks": clicks[:k]}
        if previous:
            request["previous_mask"] = previous
        (tmp_path / "one.jsonl").write_text(json.dumps(request) + "\n")
        assert (
            main(["predict", "--model", model, "--requests", str(tmp_path / "one.jsonl"), "--out", str(tmp_path)]) == 0
        )
        previous = f"step{k}.png"
    whole, stepped = (np.array(Image.open(tmp_path / f"{n}.png")) > 0 for n in ("all", previous[:-4]))
    assert whole.any() and jaccard(whole, stepped) >= 0.98


def test_a_bad_previous_mask_fails_its_line_only(tmp_path, iterative, speckle_image):
    Image.fromarray(speckle_image).save(tmp_path / "scan.png")
    Image.fromarray(np.zeros((10, 10), np.uint8)).save(tmp_path / "small.png")
    Image.fromarray(np.full(speckle_image.shape, 128, np.uint8)).save(tmp_path / "grey.png")
    click = [{"x": 140, "y": 60, "positive": True}]
    lines = [{"id": f"r{i}", "image": "scan.png", "clicks": click, "previous_mask": m}
             for i, m in enumerate(["small.png", "grey.png", "missing.png", 7])]  # fmt: skip
    lines.append({"id": "ok", "image": "scan.png", "clicks": click})
    (tmp_path / "req.jsonl").write_text("\n".join(json.dumps(r) for r in lines) + "\n")
    out = tmp_path / "out"
    assert (
        main(["predict", "--model", str(iterative.path), "--requests", str(tmp_path / "req.jsonl"), "--out", str(out)])
        == 0
    )
    errors = [json.loads(line).get("error", "") for line in (out / "results.jsonl").read_text().splitlines()]
    assert "10 x 10 pixels" in errors[0] and "binary" in errors[1] and "no such file" in errors[2]
    assert "path of a PNG" in errors[3] and errors[4] == ""


# --- training with the model in the loop -----------------------------------------------------------------
def test_corrections_add_the_clickers_click_and_the_outline(tmp_path):
    from training.config import TrainConfig
    from training.corrections import add_corrections
    from training.networks import build_network

    cfg = TrainConfig.load(None, ["width=0.125", "input_size=32", "click_encoding=both", "previous_mask=true"])
    spec, net = cfg.spec(), build_network(cfg)
    with torch.no_grad():
        net.seg_head.fuse.bias.fill_(-20.0)  # a network that outlines nothing
    y = torch.zeros(1, 1, 32, 32)
    y[0, 0, 8:24, 8:24] = 1  # a lesion it misses: the click goes to the lesion's deepest point
    x = torch.zeros(1, 6, 32, 32)
    clicks = torch.full((1, 4, 3), float("nan"))
    out = add_corrections(net, x, y, clicks, spec, 1)
    assert clicks[0, 0].tolist() == [15.0, 15.0, 1.0] and torch.isnan(clicks[0, 1]).all()
    assert out[0, 1, 15, 15] == 0 and out[0, 3, 15, 15] == 1  # its distance is 0, it is in its disk
    assert out[0, 5].sum() == 0 and torch.equal(out[0, 0], x[0, 0])  # the outline shown (none); the image untouched
    assert add_corrections(net, x, y, clicks, spec, 0) is x


# --- calibration -----------------------------------------------------------------------------------------
def test_temperature_fits_an_overconfident_classifier():
    rng = np.random.default_rng(0)
    truth = rng.random(2000) < 0.4
    z = np.where(truth, 1.0, -1.0) + rng.normal(0, 1.0, 2000)
    logit = 2 * z + np.log(0.4 / 0.6)  # the true log-odds of malignancy given z: calibrated at temperature 1 ...
    overconfident = 1 / (1 + np.exp(-3 * logit))  # ... then sharpened three times
    probs = np.column_stack([1 - overconfident, overconfident])
    t = calibration.fit_temperature(probs, truth.astype(int))
    assert t == pytest.approx(3.0, rel=0.15)
    fixed = calibration.temper(probs, t)[:, 1]
    assert calibration.expected_calibration_error(truth, fixed) < calibration.expected_calibration_error(
        truth, overconfident
    )


def test_sensitivity_thresholds_and_calibration_figures_by_hand():
    y = np.array([1, 1, 1, 1, 0, 0, 0, 0], bool)
    score = np.array([0.9, 0.8, 0.6, 0.3, 0.7, 0.2, 0.1, 0.05])
    assert calibration.sensitivity_threshold(y, score, 0.75) == 0.6  # three of four positives at or above it
    assert calibration.sensitivity_threshold(y, score, 0.90) == 0.3
    assert calibration.brier(np.array([1, 0]), np.array([0.8, 0.4])) == pytest.approx((0.04 + 0.16) / 2)
    # Two bins used: [0.4, 0.5) holds 0.45 (observed 0) and [0.9, 1] holds 0.95 (observed 1).
    assert calibration.expected_calibration_error(np.array([0, 1]), np.array([0.45, 0.95])) == pytest.approx(0.25)


# --- acquisition shifts -------------------------------------------------------------------------------------
def test_shifts_keep_the_image_shape_and_type(speckle_image):
    rng = np.random.default_rng(0)
    for name, (what, shift) in STRESS_SHIFTS.items():
        out = shift(speckle_image)
        assert out.shape == speckle_image.shape and out.dtype == np.uint8, name
        assert what
    augmented = random_shift(speckle_image, rng, 1.0)
    assert augmented.shape == speckle_image.shape and not np.array_equal(augmented, speckle_image)
    assert random_shift(speckle_image, rng, 0.0) is speckle_image
    assert set(TRAINING_RANGES) >= {"gain", "gamma", "blur", "jpeg", "speckle"}
