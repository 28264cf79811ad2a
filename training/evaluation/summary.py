"""Per-image records -> the report's figures: mean, SD and bootstrap CI of the Jaccard index; AUROC and
Youden's operating point (benign/malignant); one-vs-rest AUROCs and argmax rates (more classes).

Undefined statistics (NaN, e.g. a test set of one class) are JSON null.
"""

from __future__ import annotations

import numpy as np

from ..clicks import mode_key
from . import calibration, stats


def json_number(x) -> float | None:
    """A JSON number: NaN/inf (undefined statistics) become null."""
    x = float(x)
    return x if np.isfinite(x) else None


def json_ci(bounds) -> list[float | None]:
    return [json_number(bounds[0]), json_number(bounds[1])]


def assign_deciles(records: list[dict]) -> None:
    """Lesion-size decile 1-10 by rank of area (ties broken by case id): ten groups of equal size."""
    order = sorted(range(len(records)), key=lambda i: (records[i]["area_px"], records[i]["case_id"]))
    for rank, i in enumerate(order):
        records[i]["size_decile"] = rank * 10 // len(records) + 1


def _sd(values: np.ndarray) -> float:
    """Sample standard deviation (n - 1); 0 for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def per_image_summary(values: np.ndarray, n_boot: int, seed: int) -> dict:
    """Mean, SD (n - 1), median and bootstrap CI of per-image values."""
    values = np.asarray(values, dtype=np.float64)
    return {
        "mean_ji": float(values.mean()),
        "sd_ji": _sd(values),
        "median_ji": float(np.median(values)),
        "ci95": json_ci(stats.bootstrap_ci(lambda idx: values[idx].mean(), len(values), n_boot, seed)),
        "n_images": len(values),
    }


def segmentation_summary(records: list[dict], key: str, n_boot: int, seed: int) -> dict:
    per_image = np.array([r[key]["mean_ji"] for r in records])
    per_input = np.concatenate([r[key]["ji"] for r in records])
    by_class = {}
    for label in sorted({r["label"] for r in records}):
        v = np.array([r[key]["mean_ji"] for r in records if r["label"] == label])
        by_class[label] = {"n_images": len(v), "mean_ji": float(v.mean()), "sd_ji": _sd(v)}
    return {
        **per_image_summary(per_image, n_boot, seed),
        "per_input": {"mean_ji": float(per_input.mean()), "sd_ji": _sd(per_input), "n_inputs": len(per_input)},
        "by_class": by_class,
    }


def by_size_decile(records: list[dict], modes) -> list[dict]:
    out = []
    for d in range(1, 11):
        rs = [r for r in records if r["size_decile"] == d]
        if not rs:
            continue
        areas = [r["area_px"] for r in rs]
        row = {"decile": d, "n_images": len(rs), "area_px": [min(areas), max(areas)]}
        for m in modes:
            row[mode_key(m)] = float(np.mean([r[mode_key(m)]["mean_ji"] for r in rs]))
        for name in rs[0]["baselines"]:
            row[name] = float(np.mean([r["baselines"][name]["mean_ji"] for r in rs]))
        out.append(row)
    return out


def binary_block(y: np.ndarray, score: np.ndarray, n_boot: int, seed: int) -> dict:
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
        "auroc": json_number(stats.auroc(y, score)),
        "auroc_ci95": json_ci(ci[0]),
        "operating_point": "Youden's optimal point",
        "threshold": json_number(point["threshold"]),
        **_with_ci(point, ("sensitivity", "specificity", "accuracy"), ci[1:4]),
        "confusion_matrix": cm if np.isfinite(point["threshold"]) else None,  # undefined with one class only
    }


def _with_ci(values: dict, names, cis) -> dict:
    """``{name: value, name_ci95: [lo, hi]}`` for each named rate."""
    out = {}
    for name, ci in zip(names, cis, strict=True):
        out[name], out[f"{name}_ci95"] = json_number(values[name]), json_ci(ci)
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
        "auroc": json_number(macro),
        "auroc_ci95": json_ci(ci[0]),
        "auroc_per_class": {
            n: {"auroc": json_number(per_class[i]), "ci95": json_ci(ci[4 + i])} for i, n in enumerate(names)
        },
        "operating_point": "argmax; sensitivity and specificity are one-vs-rest, macro-averaged over classes",
        **_with_ci(summary, ("accuracy", "sensitivity", "specificity"), ci[1:4]),
        "per_class": {
            n: {
                "sensitivity": json_number(rates["sensitivity"][i]),
                "specificity": json_number(rates["specificity"][i]),
            }
            for i, n in enumerate(names)
        },
        "confusion_matrix": cm.tolist(),
    }


def classification_summary(records: list[dict], spec, mode: str, n_boot: int, seed: int) -> dict | None:
    """Classification figures from ``mode``'s inputs, averaged per image; None if labels say nothing.

    Stores each image's averaged probabilities in its record (``classification``), for ``compare``.
    """
    key = mode_key(mode)
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
        y = np.array(malignant, bool)
        binary = binary_block(y, malig, n_boot, seed)
        per_input = np.array([p for r in records for p in r[key]["malignant_prob"]])
        per_input_y = np.repeat(y, [len(r[key]["malignant_prob"]) for r in records])
        binary["calibration"] = calibration_block(y, malig, per_input_y, per_input, n_boot=n_boot, seed=seed)
        binary["operating_points"] = {
            name: {
                "threshold": t,
                **_with_ci(stats.binary_rates(y, malig, t), RATES, _rates_ci(y, malig, t, n_boot, seed)),
            }
            for name, t in spec.operating_points
        }
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


RATES = ("sensitivity", "specificity")


def calibration_block(
    y: np.ndarray, prob: np.ndarray, y_input: np.ndarray, prob_input: np.ndarray, *, n_boot: int, seed: int
) -> dict:
    """ECE, Brier score and reliability bins of the malignant probability, per image (averaged over its inputs,
    as the report's classification; with the ECE's bootstrap CI over images) and per input (as the viewer shows
    each prompt's)."""
    block = {
        "bins": calibration.ECE_BINS,
        **{
            level: {
                "ece": calibration.expected_calibration_error(t, p),
                "brier": calibration.brier(t, p),
                "reliability": calibration.reliability(t, p),
            }
            for level, t, p in (("per_image", y, prob), ("per_input", y_input, prob_input))
        },
    }
    block["per_image"]["ece_ci95"] = calibration.ece_ci95(y, prob, n_boot, seed)
    return block


def _rates_ci(y: np.ndarray, score: np.ndarray, threshold: float, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap CIs (within classes) of sensitivity and specificity at a fixed threshold."""

    def statistic(idx):
        r = stats.binary_rates(y[idx], score[idx], threshold)
        return [r[name] for name in RATES]

    return stats.bootstrap_ci(statistic, len(y), n_boot, seed, strata=y)


def benign_malignant(classification: dict | None) -> dict | None:
    """The benign/malignant block of a report's classification section (binary or multi-class model)."""
    if not classification:
        return None
    return classification if classification["task"] == "benign/malignant" else classification.get("benign_malignant")
