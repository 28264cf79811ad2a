"""Every statistic of the evaluation against hand-computed values, scikit-learn, or pROC's published numbers."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from training.evaluation import stats

Y = np.array([1, 1, 0, 0])
S = np.array([0.9, 0.4, 0.4, 0.1])


def test_auroc_by_hand_with_a_tie():
    # Positive-negative pairs: (0.9, 0.4) 1, (0.9, 0.1) 1, (0.4, 0.4) 1/2, (0.4, 0.1) 1 -> 3.5 / 4.
    assert stats.auroc(Y, S) == pytest.approx(0.875)
    assert math.isnan(stats.auroc([1, 1], [0.2, 0.3]))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_curve_and_auroc_match_sklearn_with_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    s = np.round(rng.normal(size=60) + y, 1)  # rounding makes ties
    fpr, tpr, thr = stats.roc_curve(y, s)
    f, t, th = skm.roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, f)
    np.testing.assert_allclose(tpr, t)
    np.testing.assert_allclose(thr[1:], th[1:])
    assert stats.auroc(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)


def test_youden_by_hand():
    # ROC points (0, 0), (0, .5) at 0.9, (.5, 1) at 0.4, (1, 1): J = .5 twice; the higher threshold wins.
    point = stats.youden(Y, S)
    assert point == pytest.approx({"threshold": 0.9, "sensitivity": 0.5, "specificity": 1.0, "accuracy": 0.75})
    assert stats.binary_rates(Y, S, 0.4) == pytest.approx({"sensitivity": 1.0, "specificity": 0.5, "accuracy": 0.75})


def test_one_vs_rest_auroc_matches_sklearn():
    rng = np.random.default_rng(3)
    true = np.repeat(np.arange(4), 10)
    logits = rng.normal(size=(40, 4)) + np.eye(4)[true]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    per_class, macro = stats.one_vs_rest_auroc(true, probs)
    assert macro == pytest.approx(skm.roc_auc_score(true, probs, multi_class="ovr", average="macro"))
    assert per_class == pytest.approx(skm.roc_auc_score(true, probs, multi_class="ovr", average=None))
    # A class absent from the labels is undefined and left out of the macro average.
    per_class, macro = stats.one_vs_rest_auroc(true[true < 3], probs[true < 3])
    assert math.isnan(per_class[3]) and macro == pytest.approx(np.mean(per_class[:3]))


def test_confusion_matrix_and_macro_rates():
    true = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 1, 0, 1, 2, 2, 2, 0, 2])
    cm = stats.confusion_matrix(true, pred, 3)
    np.testing.assert_array_equal(cm, skm.confusion_matrix(true, pred))
    rates = stats.per_class_rates(cm)
    np.testing.assert_allclose(rates["sensitivity"], [2 / 3, 1 / 2, 3 / 4])
    # Specificity of class 0: of the 6 non-0 images, 1 is called 0 -> 5/6; class 1: 6/7; class 2: 4/5.
    np.testing.assert_allclose(rates["specificity"], [5 / 6, 6 / 7, 4 / 5])
    summary = stats.multiclass_summary(true, pred, 3)
    assert summary["accuracy"] == pytest.approx(skm.accuracy_score(true, pred))
    assert summary["sensitivity"] == pytest.approx(skm.recall_score(true, pred, average="macro"))
    assert summary["specificity"] == pytest.approx(np.mean([5 / 6, 6 / 7, 4 / 5]))


def test_bootstrap_ci_is_deterministic_and_covers_the_estimate():
    rng = np.random.default_rng(5)
    x = rng.normal(0.7, 0.1, 50)
    y = (rng.random(50) < 0.4).astype(int)

    def statistic(idx):
        return [x[idx].mean(), stats.auroc(y[idx], x[idx])]

    ci = stats.bootstrap_ci(statistic, 50, n_boot=300, seed=1, strata=y)
    np.testing.assert_array_equal(ci, stats.bootstrap_ci(statistic, 50, n_boot=300, seed=1, strata=y))
    assert not np.array_equal(ci, stats.bootstrap_ci(statistic, 50, n_boot=300, seed=2, strata=y))
    for (lo, hi), estimate in zip(ci, statistic(np.arange(50)), strict=True):
        assert lo <= estimate <= hi and hi - lo < 0.5
    # Stratified resamples keep each stratum's size.
    assert all(y[idx].sum() == y.sum() for idx in stats.resamples(50, 20, 0, strata=y))


def test_bootstrap_ci_drops_undefined_resamples():
    y = np.array([1, 0, 0, 0, 0, 0])
    s = np.arange(6.0)
    ci = stats.bootstrap_ci(lambda idx: stats.auroc(y[idx], s[idx]), 6, n_boot=200, seed=0)
    assert np.isfinite(ci).all() and 0 <= ci[0] <= ci[1] <= 1


# pROC's aSAH example (113 patients, 41 with a poor outcome): rank-equivalent codes of wfns, s100b and
# ndka, rebuilt from the DeLong placements pROC's tests publish (AUROC and DeLong depend on ranks only).
ASAH_POOR = {
    "wfns": "3 2 4 5 5 5 5 2 5 2 1 2 5 4 4 2 5 5 5 2 5 2 5 2 4 5 4 4 1 4 4 2 2 5 5 2 2 5 5 5 5",
    "s100b": "9 6 12 8 26 31 29 3 20 5 3 24 22 28 31 16 31 31 31 3 31 18 1 5 14 31 16 31 4 16 9 6 7 14 31 10 31 "
    "19 31 31 26",
    "ndka": "38 25 29 36 4 10 19 44 48 44 44 15 33 40 6 8 31 2 52 40 17 19 23 31 42 27 40 8 50 35 4 13 40 4 12 44 "
    "21 33 46 19 36",
}
ASAH_GOOD = {
    "wfns": "1 1 1 1 5 1 2 2 1 2 2 1 1 1 2 1 2 1 1 3 4 1 4 1 5 5 1 1 2 4 1 1 2 2 1 2 1 2 2 1 1 1 1 2 1 2 1 1 3 2 4 "
    "2 1 4 1 1 5 4 2 2 1 1 1 3 1 2 2 4 4 1 1 1",
    "s100b": "9 10 6 2 27 13 6 6 2 4 2 5 7 3 13 3 7 9 13 2 12 10 21 5 30 27 12 3 25 27 7 4 5 4 2 9 6 10 11 2 2 5 2 "
    "5 4 12 5 4 20 7 17 3 6 19 3 2 15 23 6 11 4 10 6 3 2 13 11 27 13 11 30 28",
    "ndka": "1 9 7 18 5 35 5 39 30 39 37 47 11 5 24 5 5 51 26 14 14 39 3 7 5 13 28 7 34 45 7 5 24 11 7 28 43 41 16 "
    "22 49 5 37 14 18 18 34 3 37 24 11 18 39 18 22 7 14 18 43 9 24 27 45 20 24 11 43 16 32 41 5 30",
}


def _asah():
    y = np.r_[np.ones(41, bool), np.zeros(72, bool)]
    return y, {k: np.array((ASAH_POOR[k] + " " + ASAH_GOOD[k]).split(), float) for k in ASAH_POOR}


def test_delong_reproduces_proc_on_asah():
    """pROC's test suite: roc.test(r1, r2) (DeLong, paired) on aSAH."""
    y, x = _asah()
    assert stats.auroc(y, x["wfns"]) == pytest.approx(0.823678861788618, abs=1e-12)
    expected = {  # (a, b): (Z, p, CI of the difference)
        ("wfns", "s100b"): (2.20898359144091, 0.0271757822291882, (0.0104061769564846, 0.174214419249478)),
        ("wfns", "ndka"): (2.79777591868904, 0.00514557970691098, (0.0634011709339876, 0.3600405634833566)),
        ("ndka", "s100b"): (-1.39077002573558, 0.164295175223054, (-0.2876917446341914, 0.0488706064228094)),
    }
    for (a, b), (z, p, ci) in expected.items():
        t = stats.delong_test(y, x[a], x[b])
        assert t["z"] == pytest.approx(z, rel=1e-9)
        assert t["p"] == pytest.approx(p, rel=1e-9)
        assert t["ci95"] == pytest.approx(ci, rel=1e-9)
    same = stats.delong_test(y, x["wfns"], x["wfns"])
    assert same["z"] == 0 and same["p"] == 1


def test_mcnemar_exact_and_chi_square():
    # 1 pair only A right, 6 only B right: exact two-sided p = 2 * P(X <= 1 | n=7) = 2 * 8 / 128.
    a = np.array([1] * 10 + [1] + [0] * 6, bool)
    b = np.array([1] * 10 + [0] + [1] * 6, bool)
    t = stats.mcnemar(a, b)
    assert (t["only_a"], t["only_b"], t["method"]) == (1, 6, "exact binomial") and t["p"] == pytest.approx(0.125)
    # 30 vs 10 discordant: chi2 = (|30 - 10| - 1)^2 / 40 = 9.025; p = erfc(sqrt(chi2 / 2)).
    a = np.array([1] * 30 + [0] * 10, bool)
    t = stats.mcnemar(a, ~a)
    assert t["statistic"] == pytest.approx(9.025)
    assert t["p"] == pytest.approx(math.erfc(math.sqrt(9.025 / 2)))
    assert stats.mcnemar(a, a)["p"] == 1.0


def test_wilcoxon_exact_by_hand():
    # Six positive differences without ties: W- = 0, exact two-sided p = 2 / 2^6.
    a = np.array([0.5, 0.6, 0.7, 0.8, 0.9, 0.95])
    t = stats.wilcoxon_paired(a, a - np.array([0.01, 0.02, 0.03, 0.04, 0.05, 0.06]))
    assert t["statistic"] == 0 and t["p"] == pytest.approx(2 / 64)
    assert stats.wilcoxon_paired(a, a)["p"] == 1.0
