import json

import numpy as np
from PIL import Image

from core.cli import main


def test_predict_writes_masks_and_results_and_survives_bad_lines(tmp_path, tiny_model, speckle_image):
    Image.fromarray(speckle_image).save(tmp_path / "scan.png")
    (tmp_path / "notes.png").write_text("not an image")
    requests = [
        {"id": "a1", "image": "scan.png", "clicks": [{"x": 140, "y": 60, "positive": True}]},
        {
            "id": "a2",
            "image": "scan.png",
            "box": [110, 30, 170, 90],
            "clicks": [{"x": 100, "y": 10, "positive": False}],
        },
        {"id": "bad-click", "image": "scan.png", "clicks": [{"x": 999, "y": 60, "positive": True}]},
        {"id": "bad-image", "image": "notes.png", "box": [1, 1, 20, 20]},
        {"id": "a1", "image": "scan.png", "box": [1, 1, 20, 20]},
        {"id": "../escape", "image": "scan.png", "box": [1, 1, 20, 20]},
    ]
    lines = [json.dumps(r) for r in requests] + ["{broken json"]
    (tmp_path / "req.jsonl").write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    assert (
        main(["predict", "--model", str(tiny_model), "--requests", str(tmp_path / "req.jsonl"), "--out", str(out)]) == 0
    )
    results = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(results) == 7
    ok = {r["id"]: r for r in results if "error" not in r}
    assert set(ok) == {"a1", "a2"}
    mask = np.array(Image.open(out / "a1.png"))
    assert mask.shape == speckle_image.shape and set(np.unique(mask)) <= {0, 255}
    assert ok["a1"]["area_px"] == int((mask == 255).sum()) > 0
    assert abs(sum(ok["a2"]["class_probs"].values()) - 1) < 1e-5
    errors = [r["error"] for r in results if "error" in r]
    assert any("outside" in e for e in errors)
    assert any("not an image" in e for e in errors)
    assert any("already used" in e for e in errors)
    assert any("'id' must be" in e for e in errors)
    assert any("not valid JSON" in e for e in errors)
    assert not (tmp_path / "escape.png").exists()


def test_predict_exit_status(tmp_path, tiny_model):
    (tmp_path / "req.jsonl").write_text('{"id": "x", "image": "missing.png", "box": [1, 1, 5, 5]}\n')
    io_args = ["--requests", str(tmp_path / "req.jsonl"), "--out", str(tmp_path / "o")]
    assert main(["predict", "--model", str(tiny_model), *io_args]) == 1  # every line failed
    assert main(["predict", "--model", str(tmp_path / "nope.onnx"), *io_args]) == 2  # no model
