import json

import pytest

from core.cli import main
from training.adapters import phantom_manifest

pytestmark = pytest.mark.slow


def test_reproduce_trains_and_tables_the_three_systems(tmp_path):
    manifest = phantom_manifest(tmp_path / "phantoms", n=32, seed=1)
    out = tmp_path / "repro"
    args = [
        "reproduce",
        "--data",
        str(manifest),
        "--out",
        str(out),
        "--no-noc",
        "--inputs-per-image",
        "2",
        "width=0.125",
        "input_size=64",
        "batch_size=4",
        "iterations=2",
        "val_every=100",
        "num_workers=0",
        "classes=[cyst, hemangioma, metastasis, hcc]",
        "malignant=[metastasis, hcc]",
    ]
    assert main(args) == 0
    tables = (out / "tables.md").read_text()
    assert "Table 1. Segmentation" in tables and "Table 2. Benign vs malignant" in tables and "Table 2b" in tables
    reports = {s: json.loads((out / f"{s}.json").read_text()) for s in ("seg", "cls", "joint")}
    assert reports["cls"]["model"]["system"] == "classification only"
    assert set(reports["joint"]["segmentation"]) == {"two_click", "one_click"}
    assert set(reports["cls"]["segmentation"]) == {"two_click"}
    comparisons = json.loads((out / "comparisons.json").read_text())
    assert comparisons["joint_vs_seg"]["n_images"] == reports["seg"]["data"]["n_images"]
