"""What the page says about its model, read from the model's card and contract: the images it is for, the
examples that fit it, whether its malignancy output is a calibrated probability, and the card as a summary."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from core.runtime import Segmenter, load_model
from webapp import app as webapp
from webapp import card, text

EXAMPLES = Path(__file__).resolve().parents[1] / "webapp" / "examples"
HELD_OUT = {"split": "data/busi/manifest.csv [test], 116 images", "benign_malignant": {"calibration": {}}}
FITTED = {"temperature": 0.45, "fitted_on": {"split": "val", "n_images": 86}}


@pytest.fixture(scope="module")
def bundled():
    return load_model("default")


@pytest.fixture(scope="module")
def liver(make_model, four_class_spec):
    return Segmenter(make_model(four_class_spec, card={"name": "tiny-four", "version": "1"}), provider="cpu")


def with_check(ece: dict, split: str = HELD_OUT["split"]) -> dict:
    """A card whose calibration, fitted on validation, was checked on ``split`` with these ECEs."""
    return {"calibration": FITTED, "metrics": {"split": split, "benign_malignant": {"calibration": ece}}}


def test_the_model_says_which_images_it_is_for(bundled, liver, make_model):
    assert card.domain(bundled) == "breast ultrasound" and not card.has_liver_classes(bundled)
    assert card.domain(liver) == "liver ultrasound" and card.has_liver_classes(liver)
    thyroid = Segmenter(make_model(card={"name": "t", "training_data": "thyroid nodules, a liver-free set"}))
    assert card.domain(thyroid) == "thyroid ultrasound"  # the first organ its data names
    config = webapp.build_demo(bundled, examples_dir=EXAMPLES).config
    assert config["title"] == "liverclick · breast ultrasound lesions · research only"
    page = json.dumps(config, default=str)
    assert "# liverclick: breast ultrasound lesions" in page
    model = f"Model: busi_joint_lite {bundled.version}, for **breast ultrasound** images"
    assert f"**Research tool, not for diagnosis.** {model}" in page


def test_liver_phantoms_are_shown_only_with_a_liver_model(bundled, liver, tmp_path):
    breast = [p.name for p in card.shown_examples(bundled, EXAMPLES)]
    assert breast == ["busi_benign_017.png", "busi_malignant_055.png"]  # no phantom_hcc.png to call benign
    assert "phantom_hcc.png" in [p.name for p in card.shown_examples(liver, EXAMPLES)]
    cv2.imwrite(str(tmp_path / "phantom_cyst.png"), np.zeros((32, 32), np.uint8))
    config = webapp.build_demo(bundled, examples_dir=tmp_path).config
    assert not any(c["type"] == "dataset" for c in config["components"])  # its only example does not fit


def test_calibrated_only_with_a_held_out_check_that_passed(bundled):
    assert card.held_out_ece(bundled.card) > card.ECE_LIMIT  # 2.1: checked on the test split, and over the limit
    assert not card.calibrated(bundled.card)
    assert card.held_out_ece(with_check({"per_image": {"ece": 0.03}}, split="m.csv [val], 86 images")) is None
    assert card.calibrated(with_check({"per_input": {"ece": 0.03}, "per_image": {"ece": 0.04}}))
    assert not card.calibrated(with_check({"per_input": {"ece": 0.03}, "per_image": {"ece": 0.119}}))
    assert not card.calibrated(with_check({"per_input": {"ece": 0.03}}, split="data/busi/manifest.csv [val]"))
    assert not card.calibrated({"calibration": FITTED})  # fitted is not checked
    assert card.held_out_ece(with_check({"ece": 0.02})) == 0.02


def test_the_card_reads_as_a_summary_with_the_raw_card_behind_a_toggle(bundled):
    summary = card.summary_markdown(bundled)
    assert summary.startswith(
        f"**busi_joint_lite {bundled.version}** outlines and classifies lesions in **breast ultrasound**"
    )
    assert "**Trained on**: BUSI breast ultrasound" in summary and "Breast ultrasound, not liver." in summary
    metrics, spec = bundled.card["metrics"], bundled.spec
    box, bm, noc = metrics["two_click_jaccard"], metrics["benign_malignant"], metrics["noc"]
    rates = bundled.card["calibration"]["rates_at_points"]["sensitivity_95"]
    for row in (
        "| Outline from a box: mean Jaccard index with the reference (0–1) | "
        f"{box['mean']:.3f} | {box['ci95'][0]:.3f}–{box['ci95'][1]:.3f} |",
        f"| Clicks needed to reach a Jaccard index of 0.85 (mean) | {noc['noc85']:.1f} | "
        f"{noc['noc85_ci95'][0]:.1f}–{noc['noc85_ci95'][1]:.1f} |",
        f"| Benign/malignant AUROC (0.5 is chance, 1 perfect) | {bm['auroc']:.3f} | "
        f"{bm['auroc_ci95'][0]:.3f}–{bm['auroc_ci95'][1]:.3f} |",
        f"| 95%-sensitivity | {dict(spec.operating_points)['sensitivity_95']:.2f} | "
        f"{rates['sensitivity']:.0%} | {rates['specificity']:.0%} |",
    ):
        assert row in summary
    assert "score, not a calibrated probability" in summary
    for raw in ("noc85_ci95", "rates_at_points", bundled.card["git_revision"], "git_revision"):
        assert raw not in summary and raw in card.raw_json(bundled)
    checked = {**bundled.card, **with_check({"per_image": {"ece": 0.031}})}
    checked["metrics"] = {**bundled.card["metrics"], **checked["metrics"]}
    words = text.card_summary(
        name="m", version="2.1", domain="breast ultrasound", classes=["benign", "malignant"], malignant=["malignant"],
        training_data=None, figures=card._figures(checked["metrics"]), split="test", calibration=card._calibration(
            checked), points=[], not_for=None,
    )  # fmt: skip
    assert "| Calibration error (ECE) per image, 0 is perfect | 0.031 | – |" in words
    assert "is a calibrated probability" in words and "0.031" in words


def test_the_malignancy_sentence_is_one_sentence_and_its_caveat_only_where_it_applies():
    points = [("sensitivity_90", 0.21), ("sensitivity_95", 0.09), ("youden", 0.23)]
    low = text.malignancy_sentence(0.05, points, calibrated=False)
    assert low == (
        "Malignancy score (not a calibrated probability): 5%, below the 95%-sensitivity, 90%-sensitivity and "
        "Youden thresholds."
    )
    assert text.malignancy_sentence(0.5, points, calibrated=True) == (
        "Probability of malignancy: 50%, above the 95%-sensitivity, 90%-sensitivity and Youden thresholds."
    )
    details = text.malignancy_details(0.05, points, calibrated=False, ece=None)
    assert not any("chance of cancer" in line for line in details)  # below every threshold: no caveat
    assert any(line.startswith("Youden threshold (0.23): the score that best balanced") for line in details)
    details = text.malignancy_details(0.15, points, calibrated=False, ece=None)
    assert [line for line in details if "chance of cancer" in line] == [
        "Being above the 95%-sensitivity threshold is not a 95% chance of cancer."
    ]
    assert "no held-out check" in details[-1]
    checked = text.malignancy_details(0.15, points, calibrated=False, ece=0.128)[-1]
    assert checked.startswith("Not calibrated: on held-out test images") and "0.128" in checked
