"""The classification head refitted on a frozen network: heads installed exactly, cross-validation that keeps a
group's lesions together, calibration out of fold, and ``liverclick classifier`` end to end on phantoms."""

import json

import numpy as np
import pytest
import torch

from core.cli import main
from core.manifest import read_manifest
from training.adapters import phantom_manifest
from training.checkpoint import TorchPredictor, load_checkpoint, save_checkpoint
from training.classifier.crossval import Recipe, calibrate, evaluate_recipes, fit, lesion_scores, out_of_fold
from training.classifier.features import FeatureSet, extract
from training.classifier.head import install_head
from training.config import TrainConfig
from training.networks import build_network


@pytest.mark.parametrize("classes", [2, 4])
@pytest.mark.parametrize("recipe", [Recipe("logistic", 1.0), Recipe("mlp", 0.1, hidden=32)], ids=["linear", "mlp"])
def test_a_fitted_head_is_installed_exactly(classes, recipe):
    names = ["cyst", "hemangioma", "metastasis", "hcc"][:classes]
    cfg = TrainConfig.load(None, [f"classes=[{', '.join(names)}]", f"malignant=[{names[-1]}]", "cls_pool=mask"])
    net = build_network(cfg).eval()
    rng = np.random.default_rng(classes)
    x = (rng.normal(size=(200, net.cls_head.fc[0].in_features)) * 3 + 1).astype(np.float32)
    y = rng.integers(0, classes, 200)
    pipeline = recipe.pipeline(0).fit(x, y)
    install_head(net, pipeline)
    with torch.no_grad():
        probs = torch.softmax(net.cls_head.fc(torch.from_numpy(x)).double(), dim=1).numpy()
    np.testing.assert_allclose(probs, pipeline.predict_proba(x), atol=1e-5)


def _features(n_lesions=40, per_lesion=4, signal=2.0, seed=0) -> FeatureSet:
    """Lesions in pairs sharing a group; the malignant ones shifted along one feature by ``signal``."""
    rng = np.random.default_rng(seed)
    labels = ["malignant" if i % 3 == 0 else "benign" for i in range(n_lesions)]
    lesion = np.repeat(np.arange(n_lesions), per_lesion)
    x = rng.normal(size=(len(lesion), 8)).astype(np.float32)
    x[:, 0] += signal * np.isin(np.array(labels)[lesion], ["malignant"])
    kind = np.tile(["box", "box", "click", "shifted_box"], n_lesions)
    groups = [f"g{i // 2}" for i in range(n_lesions)]
    ids = [f"c{i}" for i in range(n_lesions)]
    return FeatureSet(x, lesion, kind, ids, labels, groups, ["benign", "malignant"], ["malignant"])


def test_cross_validation_predicts_every_lesion_out_of_fold_and_keeps_groups_whole(monkeypatch):
    fs = _features()
    held_together = []
    real_fit = fit

    def watching(fs_, recipe, lesions, seed=0):
        held_together.append(set(np.asarray(fs_.groups)[lesions]))
        return real_fit(fs_, recipe, lesions, seed)

    monkeypatch.setattr("training.classifier.crossval.fit", watching)
    oof = out_of_fold(fs, Recipe("logistic", 1.0), folds=4, repeats=2)
    assert oof.shape == (2, len(fs.features), 2) and np.allclose(oof.sum(axis=2), 1)
    all_groups = set(fs.groups)
    for trained_on in held_together:  # a fold's training groups and held-out groups never share a group
        held_out = all_groups - trained_on
        assert held_out and not held_out & trained_on
    assert lesion_scores(fs, oof).shape == (2, 40)


def test_recipes_are_ranked_out_of_fold_and_the_simplest_close_one_chosen():
    informative, noise = _features(signal=3.0), _features(signal=0.0)
    recipes = [Recipe("logistic", 100.0), Recipe("logistic", 0.01), Recipe("mlp", 1.0, hidden=8)]
    report, chosen, oof = evaluate_recipes(informative, recipes, folds=4, repeats=3, n_boot=100)
    assert all(row["auroc_mean"] > 0.9 for row in report["recipes"][:2])
    assert chosen.model == "logistic" and oof.shape[0] == 3
    noisy, _, _ = evaluate_recipes(noise, recipes[:1], folds=4, repeats=3, n_boot=100)
    assert 0.2 < noisy["recipes"][0]["auroc_mean"] < 0.8  # no signal, no skill out of fold


def test_out_of_fold_calibration_sharpens_an_underconfident_head():
    fs = _features(n_lesions=60, signal=3.0)
    report, chosen, oof = evaluate_recipes(fs, [Recipe("logistic", 1.0)], folds=4, repeats=2, n_boot=50)
    soft = np.stack([oof[..., 0] * 0.3 + 0.35, oof[..., 1] * 0.3 + 0.35], axis=-1)  # squeezed towards 0.5
    cal = calibrate(fs, soft, n_boot=50)
    assert cal["temperature"] < 1
    assert cal["per_image_after"]["ece"] < cal["per_image_before"]["ece"]
    assert set(cal["operating_points"]) == {"sensitivity_90", "sensitivity_95", "youden"}


@pytest.mark.slow
def test_classifier_command_on_phantoms(tmp_path):
    # Half the lesions in validation: only lesions the network was not trained on are scored, and each fold needs
    # every class.
    manifest = phantom_manifest(tmp_path / "phantoms", n=40, seed=2, fractions={"test": 0.15, "val": 0.5})
    overrides = ["width=0.125", "input_size=64", "zoom_context=1.5", "click_encoding=both", "previous_mask=true"]
    cfg = TrainConfig.load(
        None, [*overrides, "classes=[cyst, hemangioma, metastasis, hcc]", "malignant=[metastasis, hcc]"]
    )
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "net.pt", build_network(cfg), cfg, iteration=5)
    out = tmp_path / "head"
    args = ["classifier", "--checkpoint", str(tmp_path / "net.pt"), "--data", str(manifest), "--out", str(out)]
    assert main([*args, "--folds", "2", "--repeats", "2", "--bootstrap", "50"]) == 0
    report = json.loads((out / "crossval.json").read_text())
    cases = [c for c in read_manifest(manifest)[0] if c.split in ("train", "val")]
    assert report["n_scored"] == sum(c.split == "val" for c in cases)
    assert report["n_lesions"] == len(cases) and report["chosen"] in [r["recipe"] for r in report["recipes"]]
    assert set(json.loads((out / "calibration.json").read_text())["operating_points"]) >= {"youden"}
    assert (out / "reliability.png").is_file() and "chosen" in (out / "crossval.md").read_text()

    net, _, spec, saved = load_checkpoint(out / "head.pt")  # the refitted head, in the network the runtime runs
    assert saved["classifier"]["recipe"] == report["chosen"]
    again = extract(TorchPredictor(net, spec), cases[:2], progress=False)
    cached = FeatureSet.load(out / "features.npz")
    np.testing.assert_allclose(again.features, cached.features[np.isin(cached.lesion, [0, 1])], atol=1e-4)
