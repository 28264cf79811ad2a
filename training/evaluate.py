"""The paper's evaluation protocol, end to end (``liverclick evaluate`` and ``liverclick compare``).

Per test image and mode, ``n_inputs`` simulated inputs from :mod:`training.clicks` (seeded by the seed
and the case id, so an image gets the same inputs whatever the model, the order or ``--limit``):

- segmentation: Jaccard per input and per image (mean over its inputs); mean ± SD over images with a
  bootstrap CI; by lesion-size decile and by class;
- classification (from the two-click inputs, as the paper's Tables 2-3): the class probabilities of an
  image's inputs are averaged, then AUROC (binary; one-vs-rest per class and macro for more classes),
  sensitivity / specificity / accuracy (Youden's point for benign/malignant, argmax and macro averages
  for more classes) and the confusion matrix, with stratified bootstrap CIs;
- beyond the paper: NoC@85/90 and the Jaccard after k clicks (RITM: from the first one-click input,
  each further click at the centre of the largest error region, up to 20);
- no-learning baselines on the same inputs: the box, the ellipse inscribed in it, a disk around the
  single click; the reference lesion's area and shape as malignancy scores.

ONNX models run through :class:`core.runtime.Segmenter` (what users run); a training checkpoint
(``.pt``/``.pth``) through ``training.checkpoint.load_predictor``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from core.manifest import Case, ManifestError, read_manifest
from core.metrics import jaccard
from core.prompt import Prompt
from core.runtime import Predictor

from . import stats
from .clicks import DEFAULT as CLICKS
from .clicks import corrective_click, evaluation_prompts, tight_box

MODES = ("two-click", "one-click")
# Readable names of the per-image Jaccard series (model by mode, and the segmentation baselines).
SERIES = {
    "two_click": "model, two-click",
    "one_click": "model, one-click",
    "box": "box",
    "ellipse": "inscribed ellipse",
    "disk": "disk around the click",
}
NOC_THRESHOLDS = (0.85, 0.90)
NOC_MAX_CLICKS = 20
K_CLICKS = 5
DISK_FRACTION = 0.1  # one-click baseline radius when no training split gives one: this fraction of the shorter side
CLASSIFICATION_NOTE = (
    "per image: the class probabilities of its {n} {mode} inputs are averaged, then thresholded "
    "(the paper's Table 3 counts each input; see per_input)"
)

# The paper's figures (Ryu et al. 2021, Tables 1-3): private liver data, a reference only.
PAPER = {
    "segmentation": {
        "two_click": [
            ("segmentation only", 68.5, 10.3),
            ("joint, trained benign/malignant", 70.0, 10.9),
            ("joint, trained 4-class", 68.5, 12.2),
        ],
        "one_click": [("joint", 37.4, None)],
    },
    "benign/malignant": {
        "joint": {
            "auroc": (0.970, 0.956, 0.982),
            "sensitivity": (95.0, 86.9, 98.1),
            "specificity": (86.0, 81.7, 94.1),
            "accuracy": (90.4, 87.6, 93.0),
        },
        "classification only": {
            "auroc": (0.944, 0.919, 0.964),
            "sensitivity": (91.5, 87.0, 95.5),
            "specificity": (89.0, 84.5, 93.5),
            "accuracy": (89.8, 86.8, 92.8),
        },
    },
    "multi-class": {
        "joint": {
            "auroc": (0.947, 0.929, 0.963),
            "sensitivity": (86.7, 82.8, 91.4),
            "specificity": (89.7, 85.1, 93.3),
            "accuracy": (82.2, 78.7, 85.9),
        },
        "classification only": {
            "auroc": (0.926, 0.905, 0.943),
            "sensitivity": (82.3, 79.7, 89.2),
            "specificity": (89.7, 83.0, 92.3),
            "accuracy": (79.8, 75.8, 83.5),
        },
    },
    # Table 3 (joint system): rows reference, columns predicted; 100 images x 5 inputs per class.
    "confusion_classes": ("cyst", "hemangioma", "metastasis", "hcc"),
    "confusion_matrix": [[472, 15, 5, 8], [1, 413, 46, 40], [0, 46, 423, 31], [0, 37, 127, 336]],
}


class ReportMismatch(ValueError):
    """Two reports that cannot be paired (different test sets)."""


def _key(mode: str) -> str:
    return mode.replace("-", "_")


def case_seed(seed: int, case_id: str) -> int:
    """The seed of one image's simulated inputs: fixed by the run's seed and the case id alone."""
    return (seed << 32) | zlib.crc32(case_id.encode("utf-8"))


def _num(x) -> float | None:
    """A JSON number: NaN/inf (undefined statistics) become null."""
    x = float(x)
    return x if np.isfinite(x) else None


def _ci(bounds) -> list[float | None]:
    return [_num(bounds[0]), _num(bounds[1])]


# --- no-learning baselines ----------------------------------------------------------------
def box_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """The box itself, corners inclusive."""
    h, w = shape
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    mask = np.zeros((h, w), bool)
    mask[max(y0, 0) : min(y1, h - 1) + 1, max(x0, 0) : min(x1, w - 1) + 1] = True
    return mask


def ellipse_mask(shape: tuple[int, int], box: tuple[float, float, float, float]) -> np.ndarray:
    """The ellipse inscribed in the box (the box's pixels span [x0 - 0.5, x1 + 0.5])."""
    x0, y0, x1, y1 = box
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    cx, cy, a, b = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0 + 1) / 2, (y1 - y0 + 1) / 2
    return ((xx - cx) / a) ** 2 + ((yy - cy) / b) ** 2 <= 1.0


def disk_mask(shape: tuple[int, int], x: float, y: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius**2


def shape_scores(mask: np.ndarray) -> dict[str, float]:
    """Malignancy scores read off the reference outline: area, 1 - area/box area, 1 - area/convex hull."""
    area = int(np.count_nonzero(mask))
    x0, y0, x1, y1 = tight_box(mask)
    ys, xs = np.nonzero(mask)
    hull = np.zeros(mask.shape, np.uint8)
    cv2.fillConvexPoly(hull, cv2.convexHull(np.column_stack([xs, ys]).astype(np.int32)), 1)
    return {
        "lesion_area": float(area),
        "box_fill_deficit": 1.0 - area / ((x1 - x0 + 1) * (y1 - y0 + 1)),
        "convexity_deficit": 1.0 - area / max(int(hull.sum()), area),
    }


SEGMENTATION_BASELINES = {
    "two-click": {"box": "the box itself", "ellipse": "the ellipse inscribed in the box"},
    "one-click": {"disk": "a disk around the click"},
}
CLASSIFICATION_BASELINES = {
    "lesion_area": "reference lesion area (px) as the malignancy score",
    "box_fill_deficit": "reference lesion shape: 1 - area / tight-box area",
    "convexity_deficit": "reference lesion shape: 1 - area / convex-hull area",
}
# The same scores read off the model's own two-click outlines: how much of the model's AUROC the shape
# it draws could explain without looking at the texture.
PREDICTED_SHAPE_BASELINES = {
    "predicted_box_fill_deficit": ("box_fill_deficit", "predicted outline shape: 1 - area / tight-box area"),
    "predicted_convexity_deficit": ("convexity_deficit", "predicted outline shape: 1 - area / convex-hull area"),
}


def baseline_scores(records: list[dict], name: str) -> np.ndarray:
    """Per-image malignancy scores of one classification baseline (reference or predicted outline)."""
    if name in PREDICTED_SHAPE_BASELINES:
        key = PREDICTED_SHAPE_BASELINES[name][0]
        return np.array([r["predicted_shape_scores"][key] for r in records])
    return np.array([r["shape_scores"][name] for r in records])


def _baseline_masks(mode: str, shape, prompt: Prompt, radius: float) -> dict[str, np.ndarray]:
    if mode == "two-click":
        box = prompt.box.to_list()
        return {"box": box_mask(shape, box), "ellipse": ellipse_mask(shape, box)}
    click = prompt.clicks[0]
    return {"disk": disk_mask(shape, click.x, click.y, radius)}


# --- NoC (RITM protocol) ------------------------------------------------------------------
def click_sequence(predictor: Predictor, prepared, ref: np.ndarray, first: Prompt) -> list[float]:
    """Jaccard after each click, from ``first`` adding RITM corrective clicks.

    Runs until the highest NoC threshold is reached (and at least ``K_CLICKS`` clicks) or
    ``NOC_MAX_CLICKS``; a perfect mask (no error left) ends it early.
    """
    prompt, jis = first, []
    while True:
        pred = predictor.predict(prepared, prompt)
        jis.append(jaccard(pred.mask, ref))
        if len(jis) >= NOC_MAX_CLICKS or (jis[-1] >= max(NOC_THRESHOLDS) and len(jis) >= K_CLICKS):
            return jis
        click = corrective_click(pred.mask, ref)
        if click is None:
            return jis
        prompt = prompt.add_click(click.x, click.y, click.positive)


def clicks_to_reach(jis: list[float], threshold: float) -> tuple[int, bool]:
    """(clicks needed to reach ``threshold``, reached): NOC_MAX_CLICKS when never reached."""
    for k, ji in enumerate(jis, start=1):
        if ji >= threshold:
            return k, True
    return NOC_MAX_CLICKS, False


def _ji_after(jis: list[float], k: int) -> float:
    """Jaccard after k clicks; a sequence that ended early (perfect mask) keeps its last value."""
    return jis[min(k, len(jis)) - 1]


# --- the evaluation -----------------------------------------------------------------------
def _truth(spec, label: str) -> tuple[int | None, bool | None]:
    """(index of the label among the model's classes, malignant?) — None where the label says nothing."""
    if label in spec.class_names:
        return spec.class_names.index(label), label in spec.malignant_classes
    if label.lower() in ("benign", "malignant"):
        return None, label.lower() == "malignant"
    return None, None


def evaluate_image(
    predictor: Predictor, case: Case, modes, seed: int, n_inputs: int, run_noc: bool, disk_radius: float | None
) -> dict:
    """The per-image record: inputs, Jaccards, class probabilities, baselines, shape scores, NoC."""
    gray, ref = case.load()
    prepared = predictor.prepare(gray)
    s = case_seed(seed, case.case_id)
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
        prompts = evaluation_prompts(ref, mode, n_inputs, s)
        jis, probs, malig, base, shapes = [], [], [], {}, []
        for prompt in prompts:
            pred = predictor.predict(prepared, prompt)
            jis.append(jaccard(pred.mask, ref))
            if mode == "two-click" and pred.mask.any():
                shapes.append(shape_scores(pred.mask))
            probs.append([pred.class_probs[c] for c in predictor.spec.class_names])
            malig.append(pred.malignant_prob)
            for name, mask in _baseline_masks(mode, ref.shape, prompt, radius).items():
                base.setdefault(name, []).append(jaccard(mask, ref))
        rec[_key(mode)] = {
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
        first = evaluation_prompts(ref, "one-click", 1, s)[0]  # the first one-click input above
        jis = click_sequence(predictor, prepared, ref, first)
        rec["noc"] = {
            "ji_after_click": jis,
            **{f"noc{round(t * 100)}": clicks_to_reach(jis, t)[0] for t in NOC_THRESHOLDS},
            **{f"noc{round(t * 100)}_reached": clicks_to_reach(jis, t)[1] for t in NOC_THRESHOLDS},
        }
    return rec


def evaluate(
    predictor: Predictor,
    cases: list[Case],
    modes=MODES,
    seed: int = 0,
    n_inputs: int = 5,
    noc: bool = True,
    n_boot: int = 2000,
    disk_radius: float | None = None,
    disk_rule: str | None = None,
    progress: bool = False,
) -> dict:
    """Evaluate ``predictor`` on ``cases`` with the paper's protocol; returns the report (a JSON-able dict).

    ``disk_radius`` (px) is the one-click baseline's radius; None uses ``DISK_FRACTION`` of each
    image's shorter side. Everything but ``report['timing']`` is a pure function of the inputs and the seed.
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
        records.append(evaluate_image(predictor, case, modes, seed, n_inputs, noc, disk_radius))
    elapsed = time.perf_counter() - start
    _assign_deciles(records)
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
        },
        "data": {
            "n_images": len(records),
            "n_inputs": n_inputs,
            "labels": dict(sorted(Counter(r["label"] for r in records).items())),
        },
        "protocol": {
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
        },
        "segmentation": {_key(m): _segmentation(records, _key(m), n_boot, seed) for m in modes},
        "classification": _classification(records, spec, cls_mode, n_boot, seed),
        "noc": _noc_summary(records, n_boot, seed) if noc else None,
        "by_size_decile": _by_decile(records, modes),
        "baselines": _baselines(records, modes, n_boot, seed),
        "images": records,
        "timing": {"seconds": round(elapsed, 3), "images_per_second": round(len(records) / max(elapsed, 1e-9), 3)},
    }
    return report


def _assign_deciles(records: list[dict]) -> None:
    """Lesion-size decile 1-10 by rank of area (ties broken by case id): ten groups of equal size."""
    order = sorted(range(len(records)), key=lambda i: (records[i]["area_px"], records[i]["case_id"]))
    for rank, i in enumerate(order):
        records[i]["size_decile"] = rank * 10 // len(records) + 1


def _sd(values: np.ndarray) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _summary(values: np.ndarray, n_boot: int, seed: int) -> dict:
    """Mean, SD (n - 1), median and bootstrap CI of per-image values."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "mean_ji": float(values.mean()),
        "sd_ji": _sd(values),
        "median_ji": float(np.median(values)),
        "ci95": _ci(stats.bootstrap_ci(lambda idx: values[idx].mean(), len(values), n_boot, seed)),
        "n_images": len(values),
    }


def _segmentation(records: list[dict], key: str, n_boot: int, seed: int) -> dict:
    per_image = np.array([r[key]["mean_ji"] for r in records])
    per_input = np.concatenate([r[key]["ji"] for r in records])
    by_class = {}
    for label in sorted({r["label"] for r in records}):
        v = np.array([r[key]["mean_ji"] for r in records if r["label"] == label])
        by_class[label] = {"n_images": len(v), "mean_ji": float(v.mean()), "sd_ji": _sd(v)}
    return {
        **_summary(per_image, n_boot, seed),
        "per_input": {"mean_ji": float(per_input.mean()), "sd_ji": _sd(per_input), "n_inputs": len(per_input)},
        "by_class": by_class,
    }


def _by_decile(records: list[dict], modes) -> list[dict]:
    out = []
    for d in range(1, 11):
        rs = [r for r in records if r["size_decile"] == d]
        if not rs:
            continue
        areas = [r["area_px"] for r in rs]
        row = {"decile": d, "n_images": len(rs), "area_px": [min(areas), max(areas)]}
        for m in modes:
            row[_key(m)] = float(np.mean([r[_key(m)]["mean_ji"] for r in rs]))
        for name in rs[0]["baselines"]:
            row[name] = float(np.mean([r["baselines"][name]["mean_ji"] for r in rs]))
        out.append(row)
    return out


def _binary_block(y: np.ndarray, score: np.ndarray, n_boot: int, seed: int) -> dict:
    """AUROC and Youden's operating point (sensitivity, specificity, accuracy, 2x2 matrix), with CIs."""
    point = stats.youden(y, score)

    def statistic(idx):
        yp = stats.youden(y[idx], score[idx])
        return [stats.auroc(y[idx], score[idx]), yp["sensitivity"], yp["specificity"], yp["accuracy"]]

    ci = stats.bootstrap_ci(statistic, len(y), n_boot, seed, strata=y)
    cm = stats.confusion_matrix(y.astype(int), (score >= point["threshold"]).astype(int), 2).tolist()
    return {
        "task": "benign/malignant",
        "class_names": ["benign", "malignant"],
        "n_images": len(y),
        "auroc": _num(stats.auroc(y, score)),
        "auroc_ci95": _ci(ci[0]),
        "operating_point": "Youden's optimal point",
        "threshold": _num(point["threshold"]),
        **_with_ci(point, ("sensitivity", "specificity", "accuracy"), ci[1:4]),
        "confusion_matrix": cm if np.isfinite(point["threshold"]) else None,  # undefined with one class only
    }


def _with_ci(values: dict, names, cis) -> dict:
    """``{name: value, name_ci95: [lo, hi]}`` for each named rate."""
    out = {}
    for name, ci in zip(names, cis, strict=True):
        out[name], out[f"{name}_ci95"] = _num(values[name]), _ci(ci)
    return out


def _multiclass_block(true: np.ndarray, probs: np.ndarray, names, n_boot: int, seed: int) -> dict:
    """One-vs-rest AUROCs (per class, macro), argmax accuracy, macro sensitivity/specificity, with CIs."""
    k = probs.shape[1]
    per_class, macro = stats.one_vs_rest_auroc(true, probs)
    pred = probs.argmax(axis=1)
    summary = stats.multiclass_summary(true, pred, k)
    cm = stats.confusion_matrix(true, pred, k)
    rates = stats.per_class_rates(cm)

    def statistic(idx):
        pc, mac = stats.one_vs_rest_auroc(true[idx], probs[idx])
        s = stats.multiclass_summary(true[idx], pred[idx], k)
        return [mac, s["accuracy"], s["sensitivity"], s["specificity"], *pc]

    ci = stats.bootstrap_ci(statistic, len(true), n_boot, seed, strata=true)
    return {
        "task": f"{k}-class",
        "class_names": list(names),
        "n_images": len(true),
        "auroc": _num(macro),
        "auroc_ci95": _ci(ci[0]),
        "auroc_per_class": {n: {"auroc": _num(per_class[i]), "ci95": _ci(ci[4 + i])} for i, n in enumerate(names)},
        "operating_point": "argmax; sensitivity and specificity are one-vs-rest, macro-averaged over classes",
        **_with_ci(summary, ("accuracy", "sensitivity", "specificity"), ci[1:4]),
        "per_class": {
            n: {"sensitivity": _num(rates["sensitivity"][i]), "specificity": _num(rates["specificity"][i])}
            for i, n in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
    }


def _classification(records: list[dict], spec, mode: str, n_boot: int, seed: int) -> dict | None:
    """Classification figures from ``mode``'s inputs, averaged per image; None if labels say nothing.

    Stores each image's averaged probabilities in its record (``classification``), for ``compare``.
    """
    key = _key(mode)
    probs = np.array([np.mean(r[key]["class_probs"], axis=0) for r in records])
    malig = np.array([float(np.mean(r[key]["malignant_prob"])) for r in records])
    for r, p, m in zip(records, probs, malig, strict=True):
        r["classification"] = {
            "class_probs": p.tolist(),
            "malignant_prob": float(m),
            "predicted_class": int(p.argmax()),
        }
    truths = [r["true_class"] for r in records]
    malignant = [r["malignant"] for r in records]
    binary = None
    if all(m is not None for m in malignant):
        binary = _binary_block(np.array(malignant, bool), malig, n_boot, seed)
    if spec.num_classes > 2 and all(t is not None for t in truths):
        out = _multiclass_block(np.array(truths), probs, spec.class_names, n_boot, seed)
        out["benign_malignant"] = binary
    elif binary is not None:
        out = binary
    else:
        return None
    if all(t is not None for t in truths):
        per_input_true = np.concatenate([[r["true_class"]] * len(r[key]["class_probs"]) for r in records])
        per_input_pred = np.concatenate([np.argmax(r[key]["class_probs"], axis=1) for r in records])
        cm = stats.confusion_matrix(per_input_true, per_input_pred, spec.num_classes)
        out["per_input"] = {
            "note": "argmax of each input on its own, as the paper's Table 3 counts",
            "class_names": list(spec.class_names),
            "accuracy": float(np.trace(cm) / cm.sum()),
            "confusion_matrix": cm.tolist(),
        }
    out["inputs"] = mode
    return out


def _noc_summary(records: list[dict], n_boot: int, seed: int) -> dict:
    out: dict = {"start": "the first one-click input", "max_clicks": NOC_MAX_CLICKS}
    for t in NOC_THRESHOLDS:
        name = f"noc{round(t * 100)}"
        v = np.array([r["noc"][name] for r in records], dtype=np.float64)
        out[name] = float(v.mean())
        out[f"{name}_ci95"] = _ci(stats.bootstrap_ci(lambda idx, v=v: v[idx].mean(), len(v), n_boot, seed))
        out[f"{name}_failed"] = float(np.mean([not r["noc"][f"{name}_reached"] for r in records]))
    out["mean_ji_after_k"] = [
        float(np.mean([_ji_after(r["noc"]["ji_after_click"], k) for r in records])) for k in range(1, K_CLICKS + 1)
    ]
    return out


def _baselines(records: list[dict], modes, n_boot: int, seed: int) -> dict:
    out = {}
    for mode in modes:
        for name, what in SEGMENTATION_BASELINES[mode].items():
            v = np.array([r["baselines"][name]["mean_ji"] for r in records])
            out[name] = {"kind": "segmentation", "inputs": mode, "what": what, **_summary(v, n_boot, seed)}
    malignant = [r["malignant"] for r in records]
    if all(m is not None for m in malignant):
        y = np.array(malignant, bool)
        for name, what in CLASSIFICATION_BASELINES.items():
            out[name] = {
                "kind": "classification",
                "inputs": "reference mask",
                "what": what,
                **_binary_block(y, baseline_scores(records, name), n_boot, seed),
            }
        if "two-click" in modes:
            for name, (_, what) in PREDICTED_SHAPE_BASELINES.items():
                out[name] = {
                    "kind": "classification",
                    "inputs": "model's two-click outlines",
                    "what": what,
                    **_binary_block(y, baseline_scores(records, name), n_boot, seed),
                }
    return out


def benign_malignant(classification: dict | None) -> dict | None:
    """The benign/malignant block of a report's classification section (binary or multi-class model)."""
    if not classification:
        return None
    return classification if classification["task"] == "benign/malignant" else classification.get("benign_malignant")


# --- Markdown: tables that read like the paper's ------------------------------------------
def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _pct_ci(ci) -> str:
    return "–" if ci is None or ci[0] is None else f"({fmt_pct(ci[0])}, {fmt_pct(ci[1])})"


def _pct_with_ci(x: float | None, ci) -> str:
    return "–" if x is None else f"{fmt_pct(x)} {_pct_ci(ci)}"


def fmt_auc(x: float | None, ci=None) -> str:
    if x is None:
        return "–"
    return f"{x:.3f}" + ("" if ci is None or ci[0] is None else f" ({ci[0]:.3f}, {ci[1]:.3f})")


def _paper(triple, auroc: bool = False) -> str:
    value, lo, hi = triple
    return f"{value:.3f} ({lo:.3f}, {hi:.3f})" if auroc else f"{value:.1f} ({lo:.1f}, {hi:.1f})"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def markdown_report(report: dict) -> str:
    """The report as Markdown: the paper's Tables 1-3 with the baselines beside, then what goes beyond."""
    m, d, p = report["model"], report["data"], report["protocol"]
    lines = [
        f"# Evaluation of {m['name']} {m['version']}",
        "",
        f"Data: `{d.get('manifest', '?')}`, split `{d.get('split', '?')}`: {d['n_images']} images "
        f"({', '.join(f'{k} {v}' for k, v in d['labels'].items())}), {d['n_inputs']} simulated inputs per image "
        f"and mode, seed {p['seed']}. Provider: {m['provider']}.",
        "",
        "Research tool, not for diagnosis. The paper's columns are Ryu et al. (Eur Radiol 2021) on their "
        "private liver data: a reference, not comparable one-to-one. CIs: " + p["ci"] + ".",
        "",
        "## Table 1. Segmentation (Jaccard index per image, %)",
        "",
    ]
    seg, base = report["segmentation"], report["baselines"]
    rows = []
    for key, label in (("two_click", "Two-click (box)"), ("one_click", "One-click")):
        if key not in seg:
            continue
        paper = "; ".join(f"{n}: {v:.1f}" + (f" ± {sd:.1f}" if sd else "") for n, v, sd in PAPER["segmentation"][key])
        s = seg[key]
        rows.append([label, "model", f"{fmt_pct(s['mean_ji'])} ± {fmt_pct(s['sd_ji'])}", _pct_ci(s["ci95"]), paper])
        for b in base.values():
            if b["kind"] == "segmentation" and _key(b["inputs"]) == key:
                rows.append(
                    [
                        label,
                        f"baseline: {b['what']}",
                        f"{fmt_pct(b['mean_ji'])} ± {fmt_pct(b['sd_ji'])}",
                        _pct_ci(b["ci95"]),
                        "–",
                    ]
                )
    lines += markdown_table(["Input", "System", "Mean JI ± SD", "95% CI", "Paper (liver)"], rows)
    lines.append(f"One-click baseline disk radius: {p['disk_radius']}.")
    lines.append("")
    lines += _classification_markdown(report)
    lines += _beyond_markdown(report)
    return "\n".join(lines) + "\n"


def _classification_markdown(report: dict) -> list[str]:
    cls = report["classification"]
    if not cls:
        return [
            "## Table 2. Classification",
            "",
            "Not evaluated: the labels name neither the model's classes nor benign/malignant.",
            "",
        ]
    lines = [
        "## Table 2. Classification",
        "",
        f"From the {cls['inputs']} inputs; {report['protocol']['classification_averaging']}.",
        "",
    ]
    bm = benign_malignant(cls)
    if bm:
        base = {n: b for n, b in report["baselines"].items() if b["kind"] == "classification"}
        header = [
            "Benign/malignant",
            "Model",
            *(f"Baseline: {n.replace('_', ' ')}" for n in base),
            "Paper: joint",
            "Paper: classification only",
        ]
        rows = [
            [
                "AUROC",
                fmt_auc(bm["auroc"], bm["auroc_ci95"]),
                *(fmt_auc(b["auroc"], b["auroc_ci95"]) for b in base.values()),
                *(_paper(PAPER["benign/malignant"][s]["auroc"], True) for s in ("joint", "classification only")),
            ]
        ]
        for metric in ("sensitivity", "specificity", "accuracy"):
            rows.append(
                [
                    f"{metric.capitalize()} (%)",
                    _pct_with_ci(bm[metric], bm[metric + "_ci95"]),
                    *(_pct_with_ci(b[metric], b[metric + "_ci95"]) for b in base.values()),
                    *(_paper(PAPER["benign/malignant"][s][metric]) for s in ("joint", "classification only")),
                ]
            )
        lines += markdown_table(header, rows)
        threshold = "undefined" if bm["threshold"] is None else f"{bm['threshold']:.3f}"
        lines += [
            f"Sensitivity, specificity and accuracy at {bm['operating_point']} (model threshold "
            f"{threshold}); the reference baselines score the reference outline (an oracle input), the "
            "predicted ones the model's own two-click outlines (shape alone, no texture).",
            "",
        ]
    if cls["task"] != "benign/malignant":
        rows = [
            [
                "AUROC (macro, one-vs-rest)",
                fmt_auc(cls["auroc"], cls["auroc_ci95"]),
                *(_paper(PAPER["multi-class"][s]["auroc"], True) for s in ("joint", "classification only")),
            ]
        ]
        rows += [[f"AUROC {n}", fmt_auc(a["auroc"], a["ci95"]), "–", "–"] for n, a in cls["auroc_per_class"].items()]
        for metric, label in (
            ("sensitivity", "Sensitivity (macro, %)"),
            ("specificity", "Specificity (macro, %)"),
            ("accuracy", "Accuracy (%)"),
        ):
            rows.append(
                [
                    label,
                    _pct_with_ci(cls[metric], cls[metric + "_ci95"]),
                    *(_paper(PAPER["multi-class"][s][metric]) for s in ("joint", "classification only")),
                ]
            )
        header = [" / ".join(cls["class_names"]), "Model", "Paper: joint", "Paper: classification only"]
        lines += markdown_table(header, rows)
    lines += ["## Table 3. Confusion matrix (rows: reference, columns: model)", ""]
    names = cls["class_names"]
    if cls["confusion_matrix"] is None:
        lines += ["Undefined: the test set holds one class only.", ""]
    else:
        lines += _confusion_table(names, cls["confusion_matrix"], "per image")
    if "per_input" in cls and cls["task"] != "benign/malignant":
        lines += _confusion_table(names, cls["per_input"]["confusion_matrix"], "per input, as the paper counts")
    if tuple(n.lower() for n in names) == PAPER["confusion_classes"]:
        lines += _confusion_table(names, PAPER["confusion_matrix"], "paper, joint system, liver data (reference)")
    return lines


def _confusion_table(names, cm, caption: str) -> list[str]:
    cm = np.asarray(cm)
    rows = [
        [
            f"{n} (n={int(cm[i].sum())})",
            *(str(int(v)) for v in cm[i]),
            fmt_pct(cm[i, i] / cm[i].sum() if cm[i].sum() else None),
        ]
        for i, n in enumerate(names)
    ]
    rows.append(["Total", *("" for _ in names), fmt_pct(np.trace(cm) / cm.sum() if cm.sum() else None)])
    return [f"*{caption}*", "", *markdown_table(["", *names, "Accuracy (%)"], rows)]


def _beyond_markdown(report: dict) -> list[str]:
    lines = ["## Beyond the paper", ""]
    noc_ = report["noc"]
    if noc_:
        lines += [
            f"NoC (RITM protocol, from {noc_['start']}, corrective click at the centre of the largest error "
            f"region, at most {noc_['max_clicks']} clicks):",
            "",
        ]
        rows = [
            [
                f"NoC@{t}",
                f"{noc_[f'noc{t}']:.2f} ({noc_[f'noc{t}_ci95'][0]:.2f}, {noc_[f'noc{t}_ci95'][1]:.2f})",
                fmt_pct(noc_[f"noc{t}_failed"]),
            ]
            for t in (85, 90)
        ]
        lines += markdown_table(["", "Mean clicks (95% CI)", "Never reached (%)"], rows)
        lines += markdown_table(
            [f"JI after {k} click{'s' if k > 1 else ''}" for k in range(1, K_CLICKS + 1)],
            [[fmt_pct(v) for v in noc_["mean_ji_after_k"]]],
        )
    deciles = report["by_size_decile"]
    if deciles:
        cols = [c for c in deciles[0] if c in SERIES]
        lines += ["Mean JI (%) by lesion-size decile (ten groups of equal size by reference area):", ""]
        lines += markdown_table(
            ["Decile", "n", "Area (px)", *(SERIES[c] for c in cols)],
            [
                [
                    str(r["decile"]),
                    str(r["n_images"]),
                    f"{r['area_px'][0]}–{r['area_px'][1]}",
                    *(fmt_pct(r[c]) for c in cols),
                ]
                for r in deciles
            ],
        )
    seg = report["segmentation"]
    if seg:
        labels = sorted({lab for s in seg.values() for lab in s["by_class"]})
        lines += ["Mean JI (%) by class:", ""]
        lines += markdown_table(
            ["Class", *(f"{k.replace('_', '-')} (n)" for k in seg)],
            [
                [
                    lab,
                    *(
                        f"{fmt_pct(s['by_class'][lab]['mean_ji'])} ± {fmt_pct(s['by_class'][lab]['sd_ji'])} "
                        f"({s['by_class'][lab]['n_images']})"
                        for s in seg.values()
                    ),
                ]
                for lab in labels
            ],
        )
    return lines


# --- CLI ----------------------------------------------------------------------------------
def load_model(model: str, provider: str = "auto") -> Predictor:
    """An ONNX model through the runtime, or a training checkpoint (``.pt``/``.pth``) through PyTorch."""
    if str(model).endswith((".pt", ".pth")):
        import torch

        from training.checkpoint import load_predictor

        cuda = provider == "cuda" or (provider == "auto" and torch.cuda.is_available())
        return load_predictor(model, device="cuda" if cuda else "cpu")
    from core.runtime import Segmenter

    return Segmenter(model, provider=provider)


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


def cli_main(args: argparse.Namespace) -> int:
    """``liverclick evaluate``: run the protocol, write the JSON report and optionally Markdown and plots."""

    def fail(message: str) -> int:
        print(f"liverclick evaluate: {message}", file=sys.stderr)
        return 2

    if args.seed < 0 or args.inputs_per_image < 1:
        return fail("--seed must be >= 0 and --inputs-per-image >= 1")
    split = None if args.split == "all" else args.split
    try:
        cases, _ = read_manifest(args.data, split=split)
    except ManifestError as exc:
        return fail(f"{exc}" + (" (choose another with --split, or --split all)" if split else ""))
    cases = cases[: args.limit] if args.limit else cases
    if not cases:
        return fail(f"{args.data} has no images to evaluate")
    try:
        predictor = load_model(args.model, args.provider)
    except ModuleNotFoundError as exc:
        return fail(f"cannot load {args.model}: {exc}")
    except (OSError, ValueError, RuntimeError) as exc:
        return fail(f"cannot load the model {args.model}: {exc}")
    radius, rule = disk_radius_from_training(args.data)
    modes = MODES if args.mode == "both" else (args.mode,)
    report = evaluate(
        predictor, cases, modes, args.seed, args.inputs_per_image, args.noc, args.bootstrap, radius, rule, progress=True
    )
    report["data"] = {"manifest": str(args.data), "split": args.split, **report["data"]}
    report["model"]["path"] = str(args.model)
    write_json(report, args.report)
    written = [str(args.report)]
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(markdown_report(report), encoding="utf-8")
        written.append(str(args.markdown))
    if args.plots:
        from .plots import write_plots

        written += [str(p) for p in write_plots(report, args.plots, predictor, {c.case_id: c for c in cases})]
    print(_one_line(report))
    print("wrote " + ", ".join(written))
    return 0


def _one_line(report: dict) -> str:
    parts = [f"{report['data']['n_images']} images"]
    for key, s in report["segmentation"].items():
        parts.append(f"{key.replace('_', '-')} JI {fmt_pct(s['mean_ji'])} ± {fmt_pct(s['sd_ji'])}%")
    bm = benign_malignant(report["classification"])
    if bm:
        parts.append(f"benign/malignant AUROC {fmt_auc(bm['auroc'])}")
    if report["classification"] and report["classification"]["task"] != "benign/malignant":
        parts.append(
            f"{report['classification']['task']} AUROC {fmt_auc(report['classification']['auroc'])}, "
            f"accuracy {fmt_pct(report['classification']['accuracy'])}%"
        )
    if report["noc"]:
        parts.append(f"NoC@85 {report['noc']['noc85']:.2f}, NoC@90 {report['noc']['noc90']:.2f}")
    return "; ".join(parts)


# --- compare: paired tests between two reports --------------------------------------------
def _paired_records(a: dict, b: dict) -> tuple[list[dict], list[dict]]:
    """The two reports' per-image records in the same order; ReportMismatch unless the test sets agree."""
    ra = {r["case_id"]: r for r in a["images"]}
    rb = {r["case_id"]: r for r in b["images"]}
    only_a, only_b = sorted(set(ra) - set(rb)), sorted(set(rb) - set(ra))
    if only_a or only_b:
        raise ReportMismatch(
            f"the reports are on different test sets ({len(ra)} and {len(rb)} images; {len(only_a)} only in the "
            f"first, e.g. {only_a[:3]}, {len(only_b)} only in the second, e.g. {only_b[:3]}): paired tests need "
            "the same images. Evaluate both models on the same manifest, split and --limit."
        )
    relabelled = [i for i in ra if ra[i]["label"] != rb[i]["label"]]
    if relabelled:
        raise ReportMismatch(f"the reports label {len(relabelled)} images differently, e.g. {relabelled[:3]}")
    ids = [r["case_id"] for r in a["images"]]
    return [ra[i] for i in ids], [rb[i] for i in ids]


def compare_reports(a: dict, b: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """Paired tests of report ``a`` against ``b`` on the same images: Wilcoxon signed-rank for Jaccard,
    DeLong for AUROC, McNemar for accuracy (and for sensitivity / specificity at each Youden point),
    and a paired bootstrap for the macro AUROC of multi-class models."""
    ra, rb = _paired_records(a, b)
    out: dict = {
        "a": {k: a["model"].get(k) for k in ("name", "version", "path")},
        "b": {k: b["model"].get(k) for k in ("name", "version", "path")},
        "n_images": len(ra),
        "segmentation": {},
        "classification": {},
        "notes": [],
    }
    pa_, pb_ = a["protocol"], b["protocol"]
    if (pa_["seed"], pa_["inputs_per_image"]) != (pb_["seed"], pb_["inputs_per_image"]):
        out["notes"].append("the reports used different seeds or numbers of inputs: images are paired, inputs are not")
    for key in ("two_click", "one_click"):
        if key in a["segmentation"] and key in b["segmentation"]:
            ja, jb = [r[key]["mean_ji"] for r in ra], [r[key]["mean_ji"] for r in rb]
            out["segmentation"][key] = {
                "a": float(np.mean(ja)),
                "b": float(np.mean(jb)),
                "test": "Wilcoxon signed-rank",
                **stats.wilcoxon_paired(ja, jb),
            }
    bma, bmb = benign_malignant(a["classification"]), benign_malignant(b["classification"])
    if bma and bmb and bma["threshold"] is not None and bmb["threshold"] is not None:
        y = np.array([r["malignant"] for r in ra], bool)
        sa = np.array([r["classification"]["malignant_prob"] for r in ra])
        sb = np.array([r["classification"]["malignant_prob"] for r in rb])
        ca, cb = (sa >= bma["threshold"]) == y, (sb >= bmb["threshold"]) == y
        out["classification"]["benign_malignant"] = {
            "auroc": {"test": "DeLong, paired", **stats.delong_test(y, sa, sb)},
            **{
                name: {
                    "a": float(ca[sel].mean()),
                    "b": float(cb[sel].mean()),
                    "test": "McNemar",
                    **stats.mcnemar(ca[sel], cb[sel]),
                }
                for name, sel in (("sensitivity", y), ("specificity", ~y), ("accuracy", np.ones_like(y)))
                if sel.any()
            },
        }
    ma, mb = a["classification"], b["classification"]
    if ma and mb and ma["task"] != "benign/malignant" and ma["class_names"] == mb["class_names"]:
        out["classification"]["multi_class"] = _compare_multiclass(ra, rb, ma["class_names"], n_boot, seed)
    return out


def _compare_multiclass(ra: list[dict], rb: list[dict], names, n_boot: int, seed: int) -> dict:
    true = np.array([r["true_class"] for r in ra])
    pa = np.array([r["classification"]["class_probs"] for r in ra])
    pb = np.array([r["classification"]["class_probs"] for r in rb])

    def macro_difference(idx):
        return stats.one_vs_rest_auroc(true[idx], pa[idx])[1] - stats.one_vs_rest_auroc(true[idx], pb[idx])[1]

    ca, cb = pa.argmax(axis=1) == true, pb.argmax(axis=1) == true
    return {
        "auroc_macro": {
            "a": stats.one_vs_rest_auroc(true, pa)[1],
            "b": stats.one_vs_rest_auroc(true, pb)[1],
            "test": f"paired bootstrap ({n_boot} resamples within classes)",
            "p": stats.paired_bootstrap_test(macro_difference, len(true), n_boot, seed, strata=true),
        },
        "auroc_per_class": {
            n: {"test": "DeLong, paired", **stats.delong_test(true == k, pa[:, k], pb[:, k])}
            for k, n in enumerate(names)
            if 0 < (true == k).sum() < len(true)
        },
        "accuracy": {"a": float(ca.mean()), "b": float(cb.mean()), "test": "McNemar", **stats.mcnemar(ca, cb)},
    }


def fmt_p(p: float | None) -> str:
    return "–" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def compare_markdown(result: dict) -> str:
    """The paired comparison as a Markdown table (A vs B, difference, test, p)."""
    a, b = result["a"], result["b"]
    lines = [
        f"# {a['name']} {a['version']} (A) vs {b['name']} {b['version']} (B)",
        "",
        f"{result['n_images']} paired images. " + " ".join(result["notes"]),
        "",
    ]
    rows = []
    for key, s in result["segmentation"].items():
        rows.append(
            [
                f"Mean JI, {key.replace('_', '-')} (%)",
                fmt_pct(s["a"]),
                fmt_pct(s["b"]),
                f"{100 * (s['a'] - s['b']):+.1f}",
                s["test"],
                fmt_p(s["p"]),
            ]
        )
    bm = result["classification"].get("benign_malignant")
    if bm:
        t = bm["auroc"]
        rows.append(
            [
                "AUROC, benign/malignant",
                f"{t['auroc_a']:.3f}",
                f"{t['auroc_b']:.3f}",
                f"{t['difference']:+.3f} ({t['ci95'][0]:+.3f}, {t['ci95'][1]:+.3f})",
                t["test"],
                fmt_p(t["p"]),
            ]
        )
        for name in ("sensitivity", "specificity", "accuracy"):
            if name in bm:
                s = bm[name]
                rows.append(
                    [
                        f"{name.capitalize()}, benign/malignant (%)",
                        fmt_pct(s["a"]),
                        fmt_pct(s["b"]),
                        f"{100 * (s['a'] - s['b']):+.1f}",
                        f"{s['test']} ({s['method']})",
                        fmt_p(s["p"]),
                    ]
                )
    mc = result["classification"].get("multi_class")
    if mc:
        t = mc["auroc_macro"]
        rows.append(
            ["AUROC, macro", f"{t['a']:.3f}", f"{t['b']:.3f}", f"{t['a'] - t['b']:+.3f}", t["test"], fmt_p(t["p"])]
        )
        for n, t in mc["auroc_per_class"].items():
            rows.append(
                [
                    f"AUROC, {n} vs rest",
                    f"{t['auroc_a']:.3f}",
                    f"{t['auroc_b']:.3f}",
                    f"{t['difference']:+.3f}",
                    t["test"],
                    fmt_p(t["p"]),
                ]
            )
        s = mc["accuracy"]
        rows.append(
            [
                "Accuracy, argmax (%)",
                fmt_pct(s["a"]),
                fmt_pct(s["b"]),
                f"{100 * (s['a'] - s['b']):+.1f}",
                f"{s['test']} ({s['method']})",
                fmt_p(s["p"]),
            ]
        )
    lines += markdown_table(["", "A", "B", "A − B", "Test", "p"], rows)
    return "\n".join(lines) + "\n"


def compare_main(args: argparse.Namespace) -> int:
    """``liverclick compare A.json B.json``: paired tests; refuses reports on different test sets."""
    try:
        a, b = (json.loads(Path(p).read_text(encoding="utf-8")) for p in args.reports)
        result = compare_reports(a, b)
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
        print(f"liverclick compare: cannot read the reports as evaluation reports: {exc}", file=sys.stderr)
        return 2
    except ReportMismatch as exc:
        print(f"liverclick compare: {exc}", file=sys.stderr)
        return 2
    text = compare_markdown(result)
    print(text, end="")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(text, encoding="utf-8")
    return 0
