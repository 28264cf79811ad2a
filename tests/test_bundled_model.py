"""The bundled model: it loads by name, says what it is, serves the page, and still segments and
classifies held-out BUSI lesions (when BUSI is available) well above the no-learning baselines."""

import numpy as np
import pytest

from core.manifest import read_manifest
from core.metrics import jaccard
from core.runtime import Segmenter
from training.adapters import busi_manifest, find_busi
from training.clicks import evaluation_prompts
from training.evaluation.stats import auroc


@pytest.fixture(scope="module")
def model():
    return Segmenter("default", provider="cpu")


def test_bundled_model_carries_its_card(model):
    assert model.name == "busi_joint_lite"
    assert Segmenter("busi_joint_lite", provider="cpu").path == model.path  # by its own name, as the docs call it
    assert model.spec.class_names == ("benign", "malignant") and model.spec.zoom_in
    assert "not for diagnosis" in model.card["notice"]
    assert "BUSI" in model.card["training_data"]
    metrics = model.card["metrics"]
    assert 0 < metrics["two_click_jaccard"]["mean"] <= 1 and 0.5 < metrics["benign_malignant"]["auroc"] <= 1


def test_bundled_model_builds_the_viewer(model):
    from webapp.app import build_demo

    assert build_demo(model) is not None


@pytest.mark.slow
def test_bundled_model_on_held_out_busi_lesions(model, tmp_path):
    busi = find_busi()
    if busi is None:
        pytest.skip("BUSI not found: set LIVERCLICK_BUSI or keep ../shared/data/busi beside the checkout")
    cases, _ = read_manifest(busi_manifest(busi, tmp_path), split="test", check_files=False)
    cases = cases[::4]  # 29 lesions of both classes, a few seconds
    box_ji, click_ji, malignant, truth = [], [], [], []
    for case in cases:
        gray, mask = case.load()
        prepared = model.prepare(gray)
        (box,) = evaluation_prompts(mask, "two-click", 1, seed=0, case_id=case.case_id)
        (click,) = evaluation_prompts(mask, "one-click", 1, seed=0, case_id=case.case_id)
        pred = model.predict(prepared, box)
        box_ji.append(jaccard(pred.mask, mask))
        malignant.append(pred.malignant_prob)
        truth.append(case.label == "malignant")
        click_ji.append(jaccard(model.predict(prepared, click).mask, mask))
    # Far above the inscribed ellipse (~0.72) and a disk (~0.32) on the same kind of inputs; chance AUROC 0.5.
    assert np.mean(box_ji) > 0.75
    assert np.mean(click_ji) > 0.6
    assert auroc(np.array(truth), np.array(malignant)) > 0.8
