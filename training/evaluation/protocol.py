"""The paper's evaluation protocol, end to end: the per-image record and :func:`evaluate`, the report.

Per test image and mode, ``n_inputs`` simulated inputs from :mod:`training.clicks` (seeded by the seed
and the case id, so an image gets the same inputs whatever the model, the order or ``--limit``):

- segmentation: Jaccard per input and per image (mean over its inputs); mean ± SD over images with a
  bootstrap CI; by lesion-size decile and by class;
- classification (from the two-click inputs, as the paper's Tables 2-3): the class probabilities of an
  image's inputs are averaged, then AUROC (binary; one-vs-rest per class and macro for more classes),
  sensitivity / specificity / accuracy (Youden's point for benign/malignant, argmax and macro averages
  for more classes) and the confusion matrix, with stratified bootstrap CIs;
- beyond the paper: NoC@85/90 and the Jaccard after k clicks (:mod:`.noc`);
- no-learning baselines on the same inputs (:mod:`.baselines`).

Any :class:`core.runtime.Predictor` is evaluated: an ONNX model through the runtime users run, or a
training checkpoint through PyTorch, with the same pre- and post-processing.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.manifest import Case, ManifestError, read_manifest
from core.metrics import jaccard
from core.runtime import Predictor

from ..clicks import DEFAULT as CLICKS
from ..clicks import MODES, evaluation_prompts, mode_key
from .baselines import baseline_masks, baselines_summary, shape_scores
from .noc import NOC_MAX_CLICKS, noc_record, noc_summary
from .summary import assign_deciles, by_size_decile, classification_summary, segmentation_summary

DISK_FRACTION = 0.1  # one-click baseline radius when no training split gives one: this fraction of the shorter side
CLASSIFICATION_NOTE = (
    "per image: the class probabilities of its {n} {mode} inputs are averaged, then thresholded "
    "(the paper's Table 3 counts each input; see per_input)"
)


def _truth(spec, label: str) -> tuple[int | None, bool | None]:
    """(index of the label among the model's classes, malignant?) — None where the label says nothing."""
    if label in spec.class_names:
        return spec.class_names.index(label), label in spec.malignant_classes
    if label.lower() in ("benign", "malignant"):
        return None, label.lower() == "malignant"
    return None, None


def evaluate_image(
    predictor: Predictor,
    case: Case,
    *,
    modes,
    seed: int,
    n_inputs: int,
    run_noc: bool,
    disk_radius: float | None,
    max_clicks: int = NOC_MAX_CLICKS,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:
    """The per-image record: inputs, Jaccards, class probabilities, baselines, shape scores, NoC (up to
    ``max_clicks`` clicks). ``transform`` changes the image first (the acquisition-shift stress test)."""
    gray, ref = case.load()
    if transform is not None:
        gray = transform(gray)
    prepared = predictor.prepare(gray)
    radius = disk_radius if disk_radius else DISK_FRACTION * min(ref.shape)
    true_class, malignant = _truth(predictor.spec, case.label)
    rec: dict = {
        "case_id": case.case_id,
        "label": case.label,
        "group": case.group,
        "true_class": true_class,
        "malignant": malignant,
        "area_px": int(ref.sum()),
        "shape_scores": shape_scores(ref),
        "baselines": {},
    }
    for mode in modes:
        prompts = evaluation_prompts(ref, mode, n_inputs, seed=seed, case_id=case.case_id)
        jis, probs, malig, base, shapes = [], [], [], {}, []
        for prompt in prompts:
            pred = predictor.predict(prepared, prompt)
            jis.append(jaccard(pred.mask, ref))
            if mode == "two-click" and pred.mask.any():
                shapes.append(shape_scores(pred.mask))
            probs.append([pred.class_probs[c] for c in predictor.spec.class_names])
            malig.append(pred.malignant_prob)
            for name, mask in baseline_masks(mode, ref.shape, prompt, radius).items():
                base.setdefault(name, []).append(jaccard(mask, ref))
        rec[mode_key(mode)] = {
            "inputs": [p.to_dict() for p in prompts],
            "ji": jis,
            "mean_ji": float(np.mean(jis)),
            "class_probs": probs,
            "malignant_prob": malig,
        }
        rec["baselines"].update({name: {"ji": v, "mean_ji": float(np.mean(v))} for name, v in base.items()})
        if mode == "two-click":
            rec["predicted_shape_scores"] = {
                k: float(np.mean([sc[k] for sc in shapes])) if shapes else 0.0
                for k in ("box_fill_deficit", "convexity_deficit")
            }
    if run_noc:
        rec["noc"] = noc_record(predictor, prepared, ref, max_clicks)
    return rec


def evaluate(
    predictor: Predictor,
    cases: list[Case],
    *,
    modes=MODES,
    seed: int = 0,
    n_inputs: int = 5,
    noc: bool = True,
    n_boot: int = 2000,
    disk_radius: float | None = None,
    disk_rule: str | None = None,
    progress: bool = False,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict:
    """Evaluate ``predictor`` on ``cases`` with the paper's protocol; returns the report (a JSON-able dict).

    ``disk_radius`` (px) is the one-click baseline's radius; None uses ``DISK_FRACTION`` of each
    image's shorter side. ``transform`` changes every image first (the stress test). Everything but
    ``report['timing']`` is a pure function of the inputs and the seed.
    """
    if not cases:
        raise ValueError("no test images to evaluate")
    if seed < 0 or n_inputs < 1:
        raise ValueError("seed must be >= 0 and n_inputs >= 1")
    if not set(modes) <= set(MODES) or not modes:
        raise ValueError(f"modes must be some of {MODES}, got {modes}")
    modes = tuple(m for m in MODES if m in modes)  # two-click first: classification is read from it
    start, records = time.perf_counter(), []
    for case in tqdm(cases, desc="evaluate", unit="img", disable=None if progress else True):
        records.append(
            evaluate_image(
                predictor,
                case,
                modes=modes,
                seed=seed,
                n_inputs=n_inputs,
                run_noc=noc,
                disk_radius=disk_radius,
                transform=transform,
            )
        )
    elapsed = time.perf_counter() - start
    assign_deciles(records)
    spec = predictor.spec
    cls_mode = modes[0]  # two-click whenever it was run, as the paper's Tables 2-3
    report = {
        "model": {
            "name": predictor.name,
            "version": predictor.version,
            "provider": str(getattr(predictor, "provider", type(predictor).__name__)),
            "class_names": list(spec.class_names),
            "malignant_classes": list(spec.malignant_classes),
            "input_size": spec.input_size,
            "channels": list(spec.channels),
            "temperature": spec.temperature,
            "operating_points": dict(spec.operating_points),
        },
        "data": {
            "n_images": len(records),
            "n_inputs": n_inputs,
            "labels": dict(sorted(Counter(r["label"] for r in records).items())),
        },
        "protocol": protocol_description(seed, modes, n_inputs, n_boot, disk_rule),
        "segmentation": {mode_key(m): segmentation_summary(records, mode_key(m), n_boot, seed) for m in modes},
        "classification": classification_summary(records, spec, cls_mode, n_boot, seed),
        "noc": noc_summary(records, n_boot, seed) if noc else None,
        "by_size_decile": by_size_decile(records, modes),
        "baselines": baselines_summary(records, modes, n_boot, seed),
        "images": records,
        "timing": {"seconds": round(elapsed, 3), "images_per_second": round(len(records) / max(elapsed, 1e-9), 3)},
    }
    return report


def protocol_description(seed: int, modes: tuple, n_inputs: int, n_boot: int, disk_rule: str | None) -> dict:
    """The report's ``protocol`` section: how inputs were simulated, read and summarised, in words."""
    cls_mode = modes[0]
    return {
        "seed": seed,
        "modes": list(modes),
        "inputs_per_image": n_inputs,
        "two_click": f"tight box, each corner off by up to {CLICKS.box_jitter:g} of the side, enlarged by "
        f"{CLICKS.box_enlarge:g} per side; 5 clicks (centre + 4 corners)",
        "one_click": f"one pixel of the lesion core (depth >= {CLICKS.core_fraction:g} of the deepest point)",
        "classification_inputs": cls_mode,
        "classification_averaging": CLASSIFICATION_NOTE.format(n=n_inputs, mode=cls_mode),
        "ci": f"95% percentile bootstrap over images, {n_boot} resamples, seed {seed}; "
        "classification resamples within each true class",
        "disk_radius": disk_rule or f"{DISK_FRACTION:g} x the image's shorter side",
    }


def disk_radius_from_training(manifest: Path) -> tuple[float | None, str | None]:
    """Median equivalent radius of the training split's lesions (the ``area_px`` column, else the masks)."""
    try:
        train, _ = read_manifest(manifest, split="train", skip_bad=True, check_files=False)
    except ManifestError:
        return None, None
    areas = []
    for case in train:
        try:
            areas.append(float(case.extra["area_px"]))
        except (KeyError, ValueError):
            areas.append(float(case.load()[1].sum()))
    if not areas:
        return None, None
    radius = float(np.sqrt(np.median(areas) / np.pi))
    return radius, f"{radius:.1f} px, the median equivalent radius of the {len(areas)} training-split lesions"


def write_json(report: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
