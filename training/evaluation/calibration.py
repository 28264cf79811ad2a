"""Calibration of the classifier and its operating points, fitted on validation and carried by the contract.

- Temperature scaling (Guo et al. 2017): one T > 0 that divides the class logits before the softmax,
  chosen to minimise the negative log-likelihood of the validation inputs. It changes no ranking (AUROC
  stays), only how far the probabilities are from 0.5. Export folds it into the network, so the ONNX
  model's output is the calibrated probability.
- Operating points: thresholds on the (calibrated) malignant probability at which the validation inputs
  reach 90% and 95% sensitivity, and Youden's point.
- Reporting: expected calibration error (ECE, equal-width bins) and the Brier score.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from .stats import binary_rates, bootstrap_ci, youden

SENSITIVITY_TARGETS = (0.90, 0.95)
ECE_BINS = 10


def temper(probs: np.ndarray, temperature: float) -> np.ndarray:
    """Class probabilities (N, C) as the same network would give them with its logits divided by ``temperature``."""
    logp = np.log(np.clip(np.asarray(probs, np.float64), 1e-12, 1.0)) / temperature
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True)


def fit_temperature(probs: np.ndarray, labels: np.ndarray) -> float:
    """The temperature (relative to the one ``probs`` were made with) minimising the mean negative log-likelihood."""
    probs, labels = np.asarray(probs, np.float64), np.asarray(labels, np.int64)

    def nll(log_t: float) -> float:
        p = temper(probs, float(np.exp(log_t)))[np.arange(len(labels)), labels]
        return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())

    result = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def sensitivity_threshold(y: np.ndarray, score: np.ndarray, target: float) -> float:
    """The highest threshold at which ``score >= threshold`` finds at least ``target`` of the positives."""
    positives = np.sort(np.asarray(score, np.float64)[np.asarray(y, bool)])[::-1]
    if not len(positives):
        return float("nan")
    k = int(np.ceil(target * len(positives))) - 1  # this many positives above it, plus one at it
    return float(positives[min(max(k, 0), len(positives) - 1)])


def expected_calibration_error(y: np.ndarray, prob: np.ndarray, bins: int = ECE_BINS) -> float:
    """Binary ECE: the bin-size-weighted mean |observed rate - mean probability| over equal-width bins."""
    y, prob = np.asarray(y, np.float64), np.asarray(prob, np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        sel = which == b
        if sel.any():
            total += sel.sum() * abs(y[sel].mean() - prob[sel].mean())
    return float(total / max(len(y), 1))


def ece_ci95(y: np.ndarray, prob: np.ndarray, n_boot: int, seed: int) -> list[float]:
    """Percentile bootstrap 95% CI of the ECE over items (images or lesions)."""
    y, prob = np.asarray(y), np.asarray(prob)
    return bootstrap_ci(lambda idx: expected_calibration_error(y[idx], prob[idx]), len(y), n_boot, seed).tolist()


def reliability(y: np.ndarray, prob: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """Per equal-width bin: its range, the number of cases, mean probability and observed rate (None when empty)."""
    y, prob = np.asarray(y, np.float64), np.asarray(prob, np.float64)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(prob, edges[1:-1]), 0, bins - 1)
    out = []
    for b in range(bins):
        sel = which == b
        out.append(
            {
                "bin": [float(edges[b]), float(edges[b + 1])],
                "n": int(sel.sum()),
                "mean_prob": float(prob[sel].mean()) if sel.any() else None,
                "observed": float(y[sel].mean()) if sel.any() else None,
            }
        )
    return out


def brier(y: np.ndarray, prob: np.ndarray) -> float:
    """Mean squared difference between the malignant probability and the outcome (0/1)."""
    return float(np.mean((np.asarray(prob, np.float64) - np.asarray(y, np.float64)) ** 2))


def fit_from_report(report: dict) -> dict:
    """Temperature and operating points fitted on an evaluation report's two-click inputs (a validation split).

    Every input counts on its own, as the viewer shows each prompt's probability. The temperature returned
    is the one the model should carry (the report's model's own temperature times the fitted one).
    """
    model, images = report["model"], report["images"]
    names, malignant = model["class_names"], model["malignant_classes"]
    if any(r["true_class"] is None for r in images) or "two_click" not in images[0]:
        raise ValueError("calibration needs a report with two-click inputs and labels among the model's classes")
    probs = np.array([p for r in images for p in r["two_click"]["class_probs"]])
    labels = np.array([r["true_class"] for r in images for _ in r["two_click"]["class_probs"]])
    relative = fit_temperature(probs, labels)
    malignant_idx = [names.index(c) for c in malignant]
    y = np.isin(labels, malignant_idx)
    before, after = probs[:, malignant_idx].sum(axis=1), temper(probs, relative)[:, malignant_idx].sum(axis=1)
    points = {f"sensitivity_{round(100 * t)}": sensitivity_threshold(y, after, t) for t in SENSITIVITY_TARGETS}
    points["youden"] = youden(y, after)["threshold"]
    return {
        "temperature": float(model.get("temperature", 1.0)) * relative,
        "operating_points": points,
        "fitted_on": {
            "manifest": report["data"].get("manifest"),
            "split": report["data"].get("split"),
            "n_images": len(images),
            "n_inputs": int(len(labels)),
            "inputs": "two-click, each input on its own",
        },
        "per_input_before": {"ece": expected_calibration_error(y, before), "brier": brier(y, before)},
        "per_input_after": {"ece": expected_calibration_error(y, after), "brier": brier(y, after)},
        "rates_at_points": {n: binary_rates(y, after, t) for n, t in points.items()},
    }
