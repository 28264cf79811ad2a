import csv
import json

import cv2
import numpy as np
import pytest

from core.manifest import ManifestError, read_manifest, write_manifest
from core.preprocess import model_input
from core.splits import stratified_group_split
from training.adapters import aul_manifest, busi_manifest, phantom_manifest
from training.clicks import (
    ClickConfig,
    Lesion,
    evaluation_prompts,
    random_clicks,
    tight_box,
    training_prompt,
)
from training.config import TrainConfig
from training.dataset import ClickDataset
from training.phantoms import CLASSES, make_phantom
from training.shifts import random_shift


def _disk(h=100, w=120, cx=60, cy=50, r=20):
    yy, xx = np.mgrid[:h, :w]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r


def test_training_clicks_follow_the_paper():
    mask = _disk()
    band = np.zeros_like(mask)
    band.flat[Lesion(mask).band()] = True
    for seed in range(30):
        p = random_clicks(mask, np.random.default_rng(seed))
        fg, bg = p.points(True), p.points(False)
        assert 1 <= len(fg) <= 5 and 0 <= len(bg) <= 10
        assert all(mask[int(y), int(x)] for x, y in fg)
        assert all(band[int(y), int(x)] for x, y in bg)


def test_prompts_are_deterministic_from_the_seed():
    mask = _disk()
    first = evaluation_prompts(mask, "two-click", 5, seed=7, case_id="disk")
    assert first == evaluation_prompts(mask, "two-click", 5, seed=7, case_id="disk")
    assert first != evaluation_prompts(mask, "two-click", 5, seed=8, case_id="disk")
    assert first != evaluation_prompts(mask, "two-click", 5, seed=7, case_id="other disk")


def test_two_click_boxes_are_jittered_around_the_tight_box():
    mask = _disk()
    x0, y0, x1, y1 = tight_box(mask)
    for p in evaluation_prompts(mask, "two-click", 20, seed=0, case_id="disk"):
        b = p.box
        assert len(p.all_clicks()) == 5
        assert abs(b.x0 - x0) <= 0.15 * (x1 - x0 + 1) + 1 and abs(b.y1 - y1) <= 0.15 * (y1 - y0 + 1) + 1


def test_one_click_lands_in_the_lesion_core():
    mask = _disk(r=20)
    for p in evaluation_prompts(mask, "one-click", 20, seed=0, case_id="disk"):
        ((x, y),) = p.points(True)
        assert np.hypot(x - 60, y - 50) <= 11  # core: depth >= half the maximum depth


def test_training_mix_gives_every_kind_of_prompt():
    mask = _disk()
    rng = np.random.default_rng(0)
    prompts = [training_prompt(mask, rng, ClickConfig()) for _ in range(200)]
    with_box = sum(p.box is not None for p in prompts)
    single = sum(len(p.inputs) == 1 and p.box is None for p in prompts)
    assert 50 < with_box < 110 and single > 40


def test_split_is_grouped_stratified_and_deterministic():
    groups = {f"g{i}": ("benign" if i % 3 else "malignant", float(i)) for i in range(200)}
    a = stratified_group_split(groups, {"test": 0.2, "val": 0.1}, seed=1)
    assert a == stratified_group_split(groups, {"test": 0.2, "val": 0.1}, seed=1)
    for label in ("benign", "malignant"):
        ids = [g for g, (lab, _) in groups.items() if lab == label]
        test = [g for g in ids if a[g] == "test"]
        assert abs(len(test) / len(ids) - 0.2) < 0.06
        areas = sorted(groups[g][1] for g in test)
        assert areas[0] < np.percentile([groups[g][1] for g in ids], 15)  # small lesions in the test set
        assert areas[-1] > np.percentile([groups[g][1] for g in ids], 85)  # and large ones


def test_manifest_validation_names_the_row(tmp_path):
    img = np.zeros((40, 50), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    mask = img.copy()
    mask[10:20, 10:20] = 255
    cv2.imwrite(str(tmp_path / "a_m.png"), mask)
    cv2.imwrite(str(tmp_path / "empty.png"), img)
    cv2.imwrite(str(tmp_path / "small.png"), mask[:30])
    rows = [
        {"image": "a.png", "mask": "a_m.png", "label": "benign", "group": "p1"},
        {"image": "missing.png", "mask": "a_m.png", "label": "benign", "group": "p2"},
        {"image": "a.png", "mask": "empty.png", "label": "benign", "group": "p3"},
        {"image": "a.png", "mask": "small.png", "label": "benign", "group": "p4"},
        {"image": "a.png", "mask": "a_m.png", "label": "cancer", "group": "p5"},
    ]
    path = write_manifest(rows, tmp_path / "m.csv")
    with pytest.raises(ManifestError) as err:
        read_manifest(path, labels=("benign", "malignant"))
    text = str(err.value)
    for row, words in ((3, "not found"), (4, "empty"), (5, "differs"), (6, "unknown label 'cancer'")):
        assert f"row {row}: " in text and words in text
    cases, problems = read_manifest(path, labels=("benign", "malignant"), skip_bad=True)
    assert len(cases) == 1 and len(problems) == 4
    (tmp_path / "bad.csv").write_text("image,label\nx,y\n")
    with pytest.raises(ManifestError, match="missing column"):
        read_manifest(tmp_path / "bad.csv")


def test_phantoms_are_deterministic_and_of_every_class(tmp_path):
    for label in CLASSES:
        a, ma = make_phantom(label, 3)
        b, mb = make_phantom(label, 3)
        assert np.array_equal(a, b) and np.array_equal(ma, mb) and ma.sum() > 100
    path = phantom_manifest(tmp_path, n=16, seed=0)
    cases, _ = read_manifest(path, labels=CLASSES)
    assert {c.label for c in cases} == set(CLASSES) and {c.split for c in cases} <= {"train", "val", "test"}


def test_aul_polygons_become_masks(tmp_path):
    src = tmp_path / "aul"
    for cls in ("Benign", "Malignant"):
        (src / cls / "image").mkdir(parents=True)
        (src / cls / "segmentation" / "mass").mkdir(parents=True)
        for i in (1, 2):
            cv2.imwrite(str(src / cls / "image" / f"{i}.jpg"), np.full((60, 80), 90, np.uint8))
            poly = [[10, 10], [40, 10], [40, 30], [10, 30]]
            (src / cls / "segmentation" / "mass" / f"{i}.json").write_text(json.dumps(poly))
    path = aul_manifest(src, tmp_path / "out", fractions={})
    cases, _ = read_manifest(path, labels=("benign", "malignant"))
    assert len(cases) == 4
    _, mask = cases[0].load()
    assert mask.sum() == 31 * 21 and mask[20, 25] and not mask[5, 5]


def test_busi_adapter_drops_normal_and_label_conflicts(tmp_path):
    from training.adapters import find_busi

    busi_dir = find_busi()
    if busi_dir is None:
        pytest.skip("BUSI not found: set LIVERCLICK_BUSI or keep ../shared/data/busi beside the checkout")
    path = busi_manifest(busi_dir, tmp_path)
    with open(busi_dir / "manifest.csv") as fh:
        src = list(csv.DictReader(fh))
    mixed = {r["split_group"] for r in src if r["near_dup_cross_label"] == "1"}
    cases, _ = read_manifest(path, labels=("benign", "malignant"), check_files=False)
    assert {c.label for c in cases} == {"benign", "malignant"}
    assert not {c.group for c in cases} & mixed
    splits = {}
    for c in cases:
        assert splits.setdefault(c.group, c.split) == c.split  # a group never crosses sets


def _sample_afresh(dataset: ClickDataset, idx: int, rng: np.random.Generator, prompt_rng: np.random.Generator):
    """A training sample computed from the case's image and mask alone, nothing kept between samples."""
    cfg, spec = dataset.cfg, dataset.spec
    gray, mask = dataset.cases[idx].load()
    if cfg.hflip and rng.random() < 0.5:
        gray, mask = np.ascontiguousarray(gray[:, ::-1]), np.ascontiguousarray(mask[:, ::-1])
    if cfg.shift_augment:
        gray = random_shift(gray, rng, cfg.shift_augment)
    contrast = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
    shift = 255 * rng.uniform(-cfg.brightness, cfg.brightness)
    mean = float(gray.mean())
    gray = np.clip((gray.astype(np.float32) - mean) * contrast + mean + shift, 0, 255).astype(np.uint8)
    prompt = training_prompt(mask, prompt_rng, ClickConfig(mix=tuple(cfg.click_mix)))
    frame = dataset.frame(mask, prompt, rng)
    x = model_input(gray, prompt, frame, spec)
    y = frame.image_to_model(mask.astype(np.float32)) >= 0.5
    points = [(*frame.points_to_model(np.array([[c.x, c.y]]))[0], float(c.positive)) for c in prompt.all_clicks()]
    return x, y[None].astype(np.float32), np.array(points, np.float32).reshape(-1, 3)


@pytest.mark.parametrize(
    "overrides",
    [["system=joint", "zoom_context=1.6"], ["system=cls"], ["click_encoding=both", "shift_augment=0.5"]],
    ids=["joint, zoom-in", "classification patch", "disks, shifts"],
)
def test_samples_are_bit_identical_to_samples_computed_afresh(tmp_path, overrides):
    """The dataset keeps per case and orientation what depends on the case alone (image, band, core, box);
    every sample is still the one computed afresh from the image and mask, to the bit, whatever was drawn
    before it."""
    manifest = phantom_manifest(tmp_path, n=8, seed=3)
    classes = ["classes=[cyst, hemangioma, metastasis, hcc]", "malignant=[metastasis, hcc]"]
    cfg = TrainConfig.load(None, [f"data={manifest}", "input_size=64", *classes, *overrides])
    cases, _ = read_manifest(manifest)
    dataset = ClickDataset(cases, cfg, cfg.spec())
    for k, idx in enumerate(np.random.default_rng(0).integers(len(cases), size=60)):
        seeds = [cfg.seed, int(idx), k % 15]
        x, y, clicks = dataset.sample(int(idx), np.random.default_rng(k), np.random.default_rng(seeds))
        want_x, want_y, want_clicks = _sample_afresh(
            dataset, int(idx), np.random.default_rng(k), np.random.default_rng(seeds)
        )
        assert np.array_equal(x, want_x) and np.array_equal(y, want_y)
        assert np.array_equal(clicks[: len(want_clicks)], want_clicks) and np.isnan(clicks[len(want_clicks) :]).all()
