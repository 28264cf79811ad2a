"""Statistics of the evaluation: ROC analysis, confusion matrices, bootstrap CIs and paired tests.

numpy/scipy only (no torch), one implementation per metric. Conventions:

- Binary labels are 0/1 with 1 = positive (malignant); a higher score means "more positive", and a
  case is called positive when ``score >= threshold``.
- AUROC is the Mann-Whitney statistic with ties counted one half (the area under the ROC curve with
  tied scores joined by straight segments); DeLong's variance uses the same mid-ranks.
- Bootstrap CIs resample images (optionally within strata, e.g. the true class, as pROC does) and
  take percentiles; resamples where a statistic is undefined (e.g. one class only) are dropped.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats as sps

# McNemar: below this many discordant pairs the exact binomial test is used, else chi-square.
MCNEMAR_EXACT_BELOW = 25


def _binary(y, score) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    if y.shape != score.shape or y.ndim != 1:
        raise ValueError(f"labels and scores must be 1-D and of equal length, got {y.shape} and {score.shape}")
    return y, score


# --- ROC analysis -------------------------------------------------------------------------
def roc_curve(y, score) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, thresholds decreasing from +inf (0, 0)."""
    y, score = _binary(y, score)
    order = np.argsort(-score, kind="mergesort")
    s, t = score[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # the last index of each run of tied scores
    tp, fp = np.cumsum(t)[last], np.cumsum(~t)[last]
    pos, neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    return np.r_[0.0, fp / neg], np.r_[0.0, tp / pos], np.r_[np.inf, s[last]]


def auroc(y, score) -> float:
    """Area under the ROC curve (ties count 1/2); NaN unless both classes are present."""
    y, score = _binary(y, score)
    m, n = int(y.sum()), int((~y).sum())
    if m == 0 or n == 0:
        return float("nan")
    ranks = sps.rankdata(score)
    return float((ranks[y].sum() - m * (m + 1) / 2) / (m * n))


def binary_rates(y, score, threshold: float) -> dict[str, float]:
    """Sensitivity, specificity and accuracy when ``score >= threshold`` is called positive."""
    y, score = _binary(y, score)
    called = score >= threshold
    pos, neg = y.sum(), (~y).sum()
    return {
        "sensitivity": float((called & y).sum() / pos) if pos else float("nan"),
        "specificity": float((~called & ~y).sum() / neg) if neg else float("nan"),
        "accuracy": float((called == y).mean()) if len(y) else float("nan"),
    }


def youden(y, score) -> dict[str, float]:
    """Youden's optimal operating point (max sensitivity + specificity - 1) on the ROC curve.

    Of tied optima the highest threshold is taken. Returns threshold, sensitivity, specificity, accuracy.
    """
    y, score = _binary(y, score)
    if y.all() or not y.any():
        nan = float("nan")
        return {"threshold": nan, "sensitivity": nan, "specificity": nan, "accuracy": nan}
    fpr, tpr, thresholds = roc_curve(y, score)
    k = int(np.argmax(tpr - fpr))
    threshold = float(thresholds[k]) if np.isfinite(thresholds[k]) else float(score.max()) + 1.0
    return {"threshold": threshold, **binary_rates(y, score, threshold)}


def one_vs_rest_auroc(labels, probs) -> tuple[list[float], float]:
    """Per-class one-vs-rest AUROC of (N, C) class probabilities, and their macro average.

    A class absent from ``labels`` (or the only one present) has NaN and is left out of the average.
    """
    labels, probs = np.asarray(labels), np.asarray(probs, dtype=np.float64)
    per_class = [auroc(labels == k, probs[:, k]) for k in range(probs.shape[1])]
    defined = [a for a in per_class if np.isfinite(a)]
    return per_class, float(np.mean(defined)) if defined else float("nan")


# --- confusion matrices -------------------------------------------------------------------
def confusion_matrix(true, pred, n_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    true, pred = np.asarray(true, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    return np.bincount(true * n_classes + pred, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def per_class_rates(cm: np.ndarray) -> dict[str, np.ndarray]:
    """One-vs-rest sensitivity (recall) and specificity of every class of a confusion matrix."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    actual, called, total = cm.sum(axis=1), cm.sum(axis=0), cm.sum()
    tn = total - actual - called + tp
    with np.errstate(invalid="ignore", divide="ignore"):
        return {"sensitivity": tp / actual, "specificity": tn / (total - actual)}


def multiclass_summary(true, pred, n_classes: int) -> dict[str, float]:
    """Accuracy and macro-averaged sensitivity/specificity (over the classes present) of argmax calls."""
    cm = confusion_matrix(true, pred, n_classes)
    rates = per_class_rates(cm)
    return {
        "accuracy": float(np.trace(cm) / cm.sum()) if cm.sum() else float("nan"),
        "sensitivity": _nanmean(rates["sensitivity"]),
        "specificity": _nanmean(rates["specificity"]),
    }


def _nanmean(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.mean(x[np.isfinite(x)])) if np.isfinite(x).any() else float("nan")


# --- bootstrap ----------------------------------------------------------------------------
def bootstrap_ci(
    statistic: Callable[[np.ndarray], float | np.ndarray],
    n: int,
    n_boot: int = 2000,
    seed: int = 0,
    strata=None,
    level: float = 0.95,
) -> np.ndarray:
    """Percentile bootstrap CI of ``statistic(indices)`` over ``n`` items; returns (..., 2) [low, high].

    ``statistic`` takes an index array (a resample of range(n)) and returns a number or an array of
    numbers (several statistics on the same resamples). With ``strata`` each stratum is resampled
    within itself. Deterministic for a seed; NaN resamples are dropped; all-NaN gives NaN bounds.
    """
    values = np.stack([np.asarray(statistic(idx), dtype=np.float64) for idx in resamples(n, n_boot, seed, strata)])
    alpha = (1.0 - level) / 2
    out = np.full(values.shape[1:] + (2,), np.nan)
    finite = np.isfinite(values)
    for pos in np.ndindex(values.shape[1:]):
        col = values[(slice(None), *pos)][finite[(slice(None), *pos)]]
        if len(col):
            out[pos] = np.quantile(col, [alpha, 1.0 - alpha])
    return out


def resamples(n: int, n_boot: int, seed: int, strata=None):
    """Yield ``n_boot`` bootstrap index arrays over range(n), within strata if given; seeded."""
    rng = np.random.default_rng(seed)
    if strata is None:
        groups = [np.arange(n)]
    else:
        strata = np.asarray(strata)
        groups = [np.flatnonzero(strata == s) for s in dict.fromkeys(strata.tolist())]
    for _ in range(n_boot):
        yield np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])


def paired_bootstrap_test(
    statistic: Callable[[np.ndarray], float], n: int, n_boot: int = 2000, seed: int = 0, strata=None
) -> float:
    """Two-sided p-value that a paired difference statistic(indices) is zero (percentile method)."""
    d = np.asarray([statistic(idx) for idx in resamples(n, n_boot, seed, strata)], dtype=np.float64)
    d = d[np.isfinite(d)]
    if not len(d):
        return float("nan")
    return float(min(1.0, 2.0 * min(np.mean(d <= 0), np.mean(d >= 0))))


# --- DeLong -------------------------------------------------------------------------------
def delong_placements(y, score) -> tuple[float, np.ndarray, np.ndarray]:
    """(AUROC, V10, V01): each positive's fraction of negatives below it and each negative's fraction
    of positives above it (ties 1/2) — DeLong's structural components."""
    y, score = _binary(y, score)
    pos, neg = score[y], score[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("DeLong needs both positive and negative cases")
    combined = sps.rankdata(np.r_[pos, neg])
    v10 = (combined[:m] - sps.rankdata(pos)) / n
    v01 = 1.0 - (combined[m:] - sps.rankdata(neg)) / m
    return float(v10.mean()), v10, v01


def delong_test(y, score_a, score_b, level: float = 0.95) -> dict[str, float]:
    """DeLong's test for two correlated AUROCs (same cases, two scores), two-sided.

    Returns auroc_a, auroc_b, difference (a - b), its CI, z and p.
    """
    a, v10a, v01a = delong_placements(y, score_a)
    b, v10b, v01b = delong_placements(y, score_b)
    s10 = np.cov(np.vstack([v10a, v10b]))
    s01 = np.cov(np.vstack([v01a, v01b]))
    cov = s10 / len(v10a) + s01 / len(v01a)
    var = float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1])
    diff = a - b
    # Zero variance (identical or degenerate scores): z is 0 without a difference, infinite with one.
    degenerate = 0.0 if diff == 0 else float(np.sign(diff) * np.inf)
    z = diff / np.sqrt(var) if var > 0 else degenerate
    half = sps.norm.ppf(0.5 + level / 2) * np.sqrt(max(var, 0.0))
    return {
        "auroc_a": a,
        "auroc_b": b,
        "difference": diff,
        "ci95": [float(diff - half), float(diff + half)],
        "z": float(z),
        "p": float(2 * sps.norm.sf(abs(z))),
    }


# --- paired tests on correctness and on continuous values ---------------------------------
def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's test on paired correct/incorrect calls.

    Exact two-sided binomial test below ``MCNEMAR_EXACT_BELOW`` discordant pairs, else chi-square with
    continuity correction. ``only_a``/``only_b``: pairs where only A / only B is correct.
    """
    a, b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("McNemar needs paired calls of equal length")
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    out = {"only_a": only_a, "only_b": only_b, "method": "exact binomial", "statistic": None}
    n = only_a + only_b
    if n == 0:
        return {**out, "p": 1.0}
    if n < MCNEMAR_EXACT_BELOW:
        return {**out, "p": float(min(1.0, 2.0 * sps.binom.cdf(min(only_a, only_b), n, 0.5)))}
    chi2 = (abs(only_a - only_b) - 1) ** 2 / n
    return {
        **out,
        "method": "chi-square, continuity-corrected",
        "statistic": float(chi2),
        "p": float(sps.chi2.sf(chi2, 1)),
    }


def wilcoxon_paired(a, b) -> dict:
    """Wilcoxon signed-rank test of paired values (scipy; zero differences dropped), two-sided."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = a - b
    out = {
        "n": int(len(d)),
        "mean_difference": float(d.mean()) if len(d) else float("nan"),
        "median_difference": float(np.median(d)) if len(d) else float("nan"),
    }
    if not np.any(d != 0):
        return {**out, "statistic": None, "p": 1.0}
    res = sps.wilcoxon(a, b)
    return {**out, "statistic": float(res.statistic), "p": float(res.pvalue)}
