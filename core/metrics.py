"""Segmentation metrics: the single implementation that training, evaluation and the app call."""

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
