"""Segmentation and agreement metrics: the single implementation that training, evaluation and the app call."""

from __future__ import annotations

import numpy as np


def _pair(pred: np.ndarray, ref: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, ref = np.asarray(pred, dtype=bool), np.asarray(ref, dtype=bool)
    if pred.shape != ref.shape:
        raise ValueError(f"masks differ in shape: {pred.shape} vs {ref.shape}")
    return pred, ref


def jaccard(pred: np.ndarray, ref: np.ndarray) -> float:
    """Intersection over union; two empty masks agree perfectly (1.0)."""
    pred, ref = _pair(pred, ref)
    union = np.count_nonzero(pred | ref)
    return 1.0 if union == 0 else np.count_nonzero(pred & ref) / union


def dice(pred: np.ndarray, ref: np.ndarray) -> float:
    """2 |A and B| / (|A| + |B|); two empty masks agree perfectly (1.0)."""
    pred, ref = _pair(pred, ref)
    total = np.count_nonzero(pred) + np.count_nonzero(ref)
    return 1.0 if total == 0 else 2.0 * np.count_nonzero(pred & ref) / total


def cohen_kappa(a: list, b: list) -> float:
    """Cohen's kappa of two raters' labels of the same items: (observed - chance agreement) / (1 - chance).
    1.0 when both give one and the same label throughout (chance agreement 1); NaN with no items."""
    if len(a) != len(b):
        raise ValueError(f"the raters labelled {len(a)} and {len(b)} items")
    if not a:
        return float("nan")
    labels = sorted(set(a) | set(b), key=str)
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / len(a)
    chance = sum((a.count(c) / len(a)) * (b.count(c) / len(b)) for c in labels)
    return 1.0 if chance == 1.0 else (observed - chance) / (1.0 - chance)
