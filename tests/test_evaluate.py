"""The evaluation harness on a tiny ONNX model and a handful of phantoms: report fields, determinism,
baselines, NoC, Markdown, plots, paired comparison and the CLI's exit codes and messages."""

import copy
import csv
import json
from types import SimpleNamespace

import numpy as np
import pytest

from core.cli import main
from core.manifest import read_manifest, write_manifest
from core.runtime import Segmenter
from export.onnx_export import metrics_from_report
from training.adapters import phantom_manifest
from training.clicks import case_seed
from training.evaluation.baselines import box_mask, disk_mask, ellipse_mask, shape_scores
from training.evaluation.compare import ReportMismatch, compare_markdown, compare_reports
from training.evaluation.markdown import markdown_report
from training.evaluation.noc import NOC_MAX_CLICKS, click_sequence, clicks_to_reach, ji_after
from training.evaluation.protocol import evaluate
from training.evaluation.summary import binary_block
from training.phantoms import MALIGNANT
from training.shifts import STRESS_SHIFTS
from webapp import card

N_BOOT = 100


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """12 four-class phantoms, the same images labelled benign/malignant, and a manifest without a test split."""
    root = tmp_path_factory.mktemp("phantoms")
    four = phantom_manifest(root, 12, seed=0)
    with open(four, newline="") as fh:
        rows = list(csv.DictReader(fh))
    binary = write_manifest(
        [{**r, "label": "malignant" if r["label"] in MALIGNANT else "benign"} for r in rows], root / "binary.csv"
    )
    train_only = write_manifest([{**r, "split": "train"} for r in rows], root / "train_only.csv")
    return SimpleNamespace(four=four, binary=binary, train_only=train_only)


@pytest.fixture(scope="module")
def models(make_model, binary_spec, four_class_spec):
    return SimpleNamespace(
        binary=make_model(binary_spec, radius=0.02),
        binary_b=make_model(binary_spec, radius=0.035),
        four=make_model(four_class_spec, radius=0.02),
    )


@pytest.fixture(scope="module")
def reports(data, models):
    binary_cases, _ = read_manifest(data.binary)
    four_cases, _ = read_manifest(data.four)
    return SimpleNamespace(
        binary=evaluate(Segmenter(models.binary, provider="cpu"), binary_cases, seed=0, n_boot=N_BOOT),
        binary_b=evaluate(Segmenter(models.binary_b, provider="cpu"), binary_cases, n_boot=N_BOOT, noc=False),
        four=evaluate(Segmenter(models.four, provider="cpu"), four_cases, seed=0, n_boot=N_BOOT, noc=False),
        binary_cases=binary_cases,
    )


def _without_timing(report):
    out = copy.deepcopy(report)
    out.pop("timing")
    return json.dumps(out, sort_keys=True)


# --- building blocks ----------------------------------------------------------------------
def test_baseline_masks_by_hand():
    assert box_mask((10, 12), (2, 3, 5, 7)).sum() == 4 * 5
    ellipse = ellipse_mask((200, 200), (20, 40, 139, 119))  # 120 x 80 box -> pi * 60 * 40
    assert ellipse.sum() == pytest.approx(np.pi * 60 * 40, rel=0.01)
    assert not (ellipse & ~box_mask((200, 200), (20, 40, 139, 119))).any()
    assert disk_mask((100, 100), 50, 50, 10).sum() == pytest.approx(np.pi * 100, rel=0.03)


def test_shape_scores_by_hand():
    square = np.zeros((20, 20), bool)
    square[5:15, 5:15] = True
    assert shape_scores(square) == pytest.approx({"lesion_area": 100, "box_fill_deficit": 0, "convexity_deficit": 0})
    ell = square.copy()
    ell[5:10, 10:15] = False  # an L: 75 of the 100 box pixels
    scores = shape_scores(ell)
    assert scores["box_fill_deficit"] == pytest.approx(0.25) and 0 < scores["convexity_deficit"] < 0.25


def test_click_sequence_follows_ritm_corrections():
    """A stand-in model that finds the lesion's left half from one click, then all of it from the correction
    (which it must be given with the outline before it)."""
    ref = np.zeros((40, 40), bool)
    ref[10:30, 10:30] = True
    left = ref.copy()
    left[:, 20:] = False
    seen = []

    class Stub:
        def predict(self, prepared, prompt, previous=None):
            seen.append((prompt, previous))
            return SimpleNamespace(mask=left if len(prompt.clicks) == 1 else ref)

    jis = click_sequence(Stub(), None, ref)
    assert jis == [0.5, 1.0]  # the corrective click made the outline perfect: the sequence ends
    (first, none), (second, previous) = seen
    assert first.clicks[0].positive and (first.clicks[0].x, first.clicks[0].y) == (19.0, 19.0)  # the deepest point
    assert none is None and previous is left  # the correction is fed the outline it corrects
    assert second.clicks[1].positive and second.clicks[1].x >= 20  # in the missed right half
    assert clicks_to_reach(jis, 0.85) == (2, True)
    assert clicks_to_reach([0.5] * 20, 0.85) == (NOC_MAX_CLICKS, False)
    assert ji_after(jis, 5) == 1.0


def test_case_seed_depends_on_seed_and_case_only():
    assert case_seed(0, "a") == case_seed(0, "a") != case_seed(1, "a") != case_seed(0, "b")


# --- reports ------------------------------------------------------------------------------
def test_binary_report_fields(reports):
    r = reports.binary
    assert r["data"]["n_images"] == 12 and r["data"]["n_inputs"] == 5
    assert r["model"]["name"] == "tiny-test" and r["model"]["provider"] == "CPUExecutionProvider"
    for key in ("two_click", "one_click"):
        s = r["segmentation"][key]
        assert 0 <= s["ci95"][0] <= s["mean_ji"] <= s["ci95"][1] <= 1 and s["sd_ji"] >= 0
        assert s["per_input"]["n_inputs"] == 60
    c = r["classification"]
    assert c["task"] == "benign/malignant" and c["inputs"] == "two-click"
    for field in ("auroc", "accuracy", "sensitivity", "specificity"):
        assert 0 <= c[field] <= 1
    assert c["auroc_ci95"][0] <= c["auroc"] <= c["auroc_ci95"][1]
    assert np.sum(c["confusion_matrix"]) == 12
    ece = c["calibration"]["per_image"]
    assert ece["ece_ci95"][0] <= ece["ece"] <= ece["ece_ci95"][1]
    assert 1 <= r["noc"]["noc85"] <= r["noc"]["noc90"] <= NOC_MAX_CLICKS
    assert len(r["noc"]["mean_ji_after_k"]) == len(r["noc"]["mean_ji_after_k_ci95"]) == NOC_MAX_CLICKS
    assert {"box", "ellipse", "disk", "lesion_area", "box_fill_deficit"} <= set(r["baselines"])
    assert 0 < r["baselines"]["box"]["mean_ji"] < r["baselines"]["ellipse"]["mean_ji"] < 1
    assert "auroc" in r["baselines"]["lesion_area"] and "confusion_matrix" in r["baselines"]["box_fill_deficit"]
    assert sum(d["n_images"] for d in r["by_size_decile"]) == 12
    image = r["images"][0]
    assert len(image["two_click"]["ji"]) == len(image["two_click"]["inputs"]) == 5
    assert image["two_click"]["mean_ji"] == pytest.approx(np.mean(image["two_click"]["ji"]))
    json.dumps(r, allow_nan=False)  # strict JSON: undefined statistics are null, never NaN


def test_the_cards_figures_carry_the_calibration_checked_on_the_evaluated_split(reports):
    """export's card metrics keep the ECE the report measured, so the page can tell a held-out check (webapp.card)."""
    metrics = metrics_from_report(reports.binary)
    measured = reports.binary["classification"]["calibration"]
    check = metrics["benign_malignant"]["calibration"]
    assert check["per_image"]["ece"] == pytest.approx(measured["per_image"]["ece"], abs=1e-4)
    assert check["per_input"]["ece"] == pytest.approx(measured["per_input"]["ece"], abs=1e-4)
    fitted_elsewhere = {"metrics": metrics, "calibration": {"fitted_on": {"split": "another split"}}}
    assert card.held_out_ece(fitted_elsewhere) == max(check["per_image"]["ece"], check["per_input"]["ece"])


def test_four_class_report_fields(reports, four_class_spec):
    c = reports.four["classification"]
    assert c["task"] == "4-class" and c["class_names"] == list(four_class_spec.class_names)
    assert set(c["auroc_per_class"]) == set(four_class_spec.class_names)
    per_class = [a["auroc"] for a in c["auroc_per_class"].values()]
    assert c["auroc"] == pytest.approx(np.mean(per_class))
    assert np.asarray(c["confusion_matrix"]).shape == (4, 4) and np.sum(c["confusion_matrix"]) == 12
    assert np.sum(c["per_input"]["confusion_matrix"]) == 60
    bm = c["benign_malignant"]
    assert bm["task"] == "benign/malignant" and 0 <= bm["auroc"] <= 1
    # The benign/malignant score is the sum of the malignant classes' probabilities, averaged over inputs.
    rec = reports.four["images"][0]
    idx = list(four_class_spec.malignant_indices)
    probs = np.asarray(rec["classification"]["class_probs"])
    assert rec["classification"]["malignant_prob"] == pytest.approx(probs[idx].sum())


def test_same_seed_gives_identical_reports(reports, models):
    again = evaluate(Segmenter(models.binary, provider="cpu"), reports.binary_cases, seed=0, n_boot=N_BOOT)
    assert _without_timing(again) == _without_timing(reports.binary)
    # An image's inputs depend on the seed and its case id, not on the order of the cases.
    first = reports.binary_cases[:3]
    flipped = evaluate(Segmenter(models.binary, provider="cpu"), first[::-1], seed=0, n_boot=10, noc=False)
    by_id = {r["case_id"]: r["two_click"]["inputs"] for r in flipped["images"]}
    assert all(by_id[r["case_id"]] == r["two_click"]["inputs"] for r in reports.binary["images"][:3])
    other = evaluate(Segmenter(models.binary, provider="cpu"), first, seed=1, n_boot=10, noc=False)
    assert other["images"][0]["two_click"]["inputs"] != reports.binary["images"][0]["two_click"]["inputs"]


def test_markdown_reads_like_the_paper(reports):
    text = markdown_report(reports.four)
    for heading in ("Table 1. Segmentation", "Table 2. Classification", "Table 3. Confusion matrix"):
        assert heading in text
    assert "Paper (liver)" in text and "70.0 ± 10.9" in text and "0.947 (0.929, 0.963)" in text
    assert "inscribed in the box" in text and "472" in text  # the paper's Table 3 beside ours
    assert "NoC@85" in markdown_report(reports.binary) and "NoC@85" not in text


# --- compare ------------------------------------------------------------------------------
def test_compare_pairs_images_and_tests(reports):
    result = compare_reports(reports.binary, reports.binary_b, n_boot=50)
    seg = result["segmentation"]["two_click"]
    assert seg["test"] == "Wilcoxon signed-rank" and 0 <= seg["p"] <= 1
    assert seg["mean_difference"] == pytest.approx(seg["a"] - seg["b"])
    bm = result["classification"]["benign_malignant"]
    assert bm["auroc"]["auroc_a"] == pytest.approx(reports.binary["classification"]["auroc"])
    assert 0 <= bm["auroc"]["p"] <= 1 and 0 <= bm["accuracy"]["p"] <= 1
    for side, report in (("a", reports.binary), ("b", reports.binary_b)):  # each at its own Youden point
        for metric in ("sensitivity", "specificity", "accuracy"):
            assert bm[metric][side] == pytest.approx(report["classification"][metric])
    same = compare_reports(reports.four, reports.four, n_boot=50)
    assert same["segmentation"]["two_click"]["p"] == 1.0
    assert same["classification"]["multi_class"]["accuracy"]["p"] == 1.0
    assert same["classification"]["benign_malignant"]["auroc"]["p"] == 1.0
    assert "| AUROC, macro |" in compare_markdown(same)


def test_compare_refuses_different_test_sets(reports):
    fewer = copy.deepcopy(reports.binary)
    fewer["images"] = fewer["images"][:-2]
    with pytest.raises(ReportMismatch, match="different test sets"):
        compare_reports(reports.binary, fewer)
    relabelled = copy.deepcopy(reports.binary)
    relabelled["images"][0]["label"] = "other"
    with pytest.raises(ReportMismatch, match="label"):
        compare_reports(reports.binary, relabelled)


# --- CLI ----------------------------------------------------------------------------------
def test_cli_evaluate_and_compare(data, models, tmp_path, capsys):
    common = ["--data", str(data.binary), "--split", "all", "--bootstrap", "20", "--no-noc"]
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    args = ["evaluate", "--model", str(models.binary), "--report", str(a), "--markdown", str(tmp_path / "a.md")]
    assert main([*args, "--plots", str(tmp_path / "plots"), *common, "--limit", "6"]) == 0
    assert main(["evaluate", "--model", str(models.binary_b), "--report", str(b), *common, "--limit", "6"]) == 0
    report = json.loads(a.read_text())
    assert report["data"]["manifest"] == str(data.binary) and report["data"]["n_images"] == 6 and report["noc"] is None
    assert "Table 1" in (tmp_path / "a.md").read_text()
    assert {p.name for p in (tmp_path / "plots").iterdir()} == {
        "roc_benign_malignant.png",
        "confusion_matrix.png",
        "ji_by_size_decile.png",
        "reliability.png",
        "examples_best_worst.png",
    }
    assert main(["compare", str(a), str(b), "--markdown", str(tmp_path / "cmp.md")]) == 0
    assert "DeLong" in capsys.readouterr().out and "McNemar" in (tmp_path / "cmp.md").read_text()

    c = tmp_path / "c.json"
    assert main(["evaluate", "--model", str(models.binary), "--report", str(c), *common, "--limit", "4"]) == 0
    capsys.readouterr()
    assert main(["compare", str(a), str(c)]) == 2
    assert "different test sets" in capsys.readouterr().err


def test_cli_clear_errors(data, models, tmp_path, capsys):
    report = tmp_path / "r.json"
    args = ["evaluate", "--model", str(models.binary), "--report", str(report)]
    assert main([*args, "--data", str(data.train_only)]) == 2
    err = capsys.readouterr().err
    assert "no rows with split 'test'" in err and "--split" in err
    assert main([*args[:2], str(tmp_path / "missing.onnx"), *args[3:], "--data", str(data.four)]) == 2
    assert "cannot load the model" in capsys.readouterr().err
    assert not report.exists()
    (tmp_path / "bad.json").write_text("{}")
    assert main(["compare", str(tmp_path / "bad.json"), str(tmp_path / "bad.json")]) == 2
    assert "cannot read the reports" in capsys.readouterr().err


def test_one_class_test_set_leaves_classification_undefined(reports):
    block = binary_block(np.zeros(5, bool), np.arange(5.0), n_boot=20, seed=0)
    assert block["auroc"] is None and block["threshold"] is None and block["confusion_matrix"] is None
    report = copy.deepcopy(reports.binary)
    report["classification"] = {**block, "inputs": "two-click"}
    assert "Undefined: the test set holds one class only." in markdown_report(report)


def test_cli_stress_test_and_calibration(data, models, tmp_path, capsys):
    """evaluate --shifts adds the stress test (table, plot); calibrate fits a temperature and operating points."""
    report_path = tmp_path / "val.json"
    args = ["evaluate", "--model", str(models.binary), "--data", str(data.binary), "--split", "all", "--limit", "8"]
    common = ["--bootstrap", "20", "--no-noc", "--inputs-per-image", "2", "--report", str(report_path)]
    assert main([*args, *common, "--shifts", "--markdown", str(tmp_path / "r.md"), "--plots", str(tmp_path / "p")]) == 0
    stress = json.loads(report_path.read_text())["stress"]
    assert set(stress["shifts"]) == {"none", *STRESS_SHIFTS}
    assert stress["shifts"]["none"]["ji_change"] == 0 and "auroc_change" in stress["shifts"]["blur"]
    assert "Acquisition-shift stress test" in (tmp_path / "r.md").read_text()
    assert (tmp_path / "p" / "stress_test.png").is_file()
    assert main(["calibrate", str(report_path), "--out", str(tmp_path / "cal.json")]) == 0
    fitted = json.loads((tmp_path / "cal.json").read_text())
    assert fitted["temperature"] > 0 and set(fitted["operating_points"]) == {
        "sensitivity_90",
        "sensitivity_95",
        "youden",
    }
    assert fitted["fitted_on"]["n_inputs"] == 16 and "temperature" in capsys.readouterr().out
