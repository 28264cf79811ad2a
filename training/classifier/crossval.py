"""The classifier's recipe chosen by repeated grouped cross-validation on cached features, and calibrated out of fold.

A recipe is a model (logistic regression or a one-hidden-layer MLP, standardised inputs) with its regularisation,
fitted either on every prompt of the training lesions or on each lesion's mean feature (prompt averaging). Each
repeat splits the lesions into ``folds`` folds that keep a ``split_group`` whole and the classes balanced; a
held-out lesion's score is its mean malignant probability over its box prompts, as the evaluation reads the
two-click inputs. The recipe chosen is the simplest whose mean out-of-fold AUROC is within one standard deviation
(over repeats) of the best: what wins by a hair on 436 lesions is not what generalises.

Calibration: one temperature and the operating points (90% and 95% sensitivity, Youden's point) fitted on the
out-of-fold predictions of every lesion, each box prompt on its own, as the viewer shows each prompt's probability.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from ..evaluation.calibration import (
    SENSITIVITY_TARGETS,
    brier,
    expected_calibration_error,
    fit_temperature,
    reliability,
    sensitivity_threshold,
    temper,
)
from ..evaluation.stats import auroc, binary_rates, bootstrap_ci, youden
from .features import FeatureSet

SCORED_KIND = "box"  # the prompts a lesion's score is read from (the evaluation's two-click inputs)


@dataclass(frozen=True)
class Recipe:
    """A head: ``model`` "logistic" (``strength`` = 1/C) or "mlp" (``strength`` = L2 alpha, ``hidden`` units),
    fitted on every prompt or on each lesion's mean feature."""

    model: str
    strength: float
    hidden: int = 0
    averaged: bool = False

    @property
    def name(self) -> str:
        size = f" {self.hidden}" if self.model == "mlp" else ""
        return f"{self.model}{size}, L2 {self.strength:g}, {'lesion means' if self.averaged else 'every prompt'}"

    @property
    def complexity(self) -> tuple:
        """Simpler first: linear before MLP, fewer units, stronger regularisation, averaged before every prompt."""
        return (self.model != "logistic", self.hidden, -self.strength, not self.averaged)

    def pipeline(self, seed: int) -> Pipeline:
        if self.model == "logistic":
            model = LogisticRegression(C=1 / self.strength, max_iter=2000)
        else:
            model = MLPClassifier(
                (self.hidden,), alpha=self.strength, max_iter=400, early_stopping=False, random_state=seed
            )
        return make_pipeline(StandardScaler(), model)


RECIPES = [
    *(Recipe("logistic", s, averaged=a) for s in (100.0, 10.0, 1.0, 0.1) for a in (False, True)),
    *(Recipe("mlp", s, hidden=64) for s in (10.0, 1.0, 0.1)),
]


def training_rows(fs: FeatureSet, lesions: np.ndarray, averaged: bool) -> tuple[np.ndarray, np.ndarray]:
    """(X, class index) to fit on: every prompt of ``lesions``, or each one's mean feature."""
    y = fs.class_index
    if averaged:
        return np.stack([fs.features[fs.lesion == i].mean(axis=0) for i in lesions]), y[lesions]
    rows = np.isin(fs.lesion, lesions)
    return fs.features[rows], y[fs.lesion[rows]]


def fit(fs: FeatureSet, recipe: Recipe, lesions: np.ndarray, seed: int = 0) -> Pipeline:
    X, y = training_rows(fs, lesions, recipe.averaged)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return recipe.pipeline(seed).fit(X, y)


def malignant_probability(fs: FeatureSet, probs: np.ndarray) -> np.ndarray:
    return probs[:, [fs.class_names.index(c) for c in fs.malignant]].sum(axis=1)


def out_of_fold(fs: FeatureSet, recipe: Recipe, folds: int, repeats: int, seed: int = 0) -> np.ndarray:
    """(repeats, N, C) class probabilities of every row, each predicted by the fold that held its lesion out,
    for each repeat's split."""
    n_lesions = len(fs.case_ids)
    truth, groups = fs.class_index, np.asarray(fs.groups)
    out = np.zeros((repeats, len(fs.features), len(fs.class_names)))
    for r in range(repeats):
        split = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for train, held in split.split(np.zeros(n_lesions), truth, groups):
            model = fit(fs, recipe, train, seed + r)
            rows = np.isin(fs.lesion, held)
            out[r, rows] = model.predict_proba(fs.features[rows])
    return out


def lesion_scores(fs: FeatureSet, probs: np.ndarray) -> np.ndarray:
    """(..., L): each lesion's malignant probability averaged over its box prompts."""
    scored = fs.kind == SCORED_KIND
    malignant = malignant_probability(fs, probs.reshape(-1, probs.shape[-1])).reshape(probs.shape[:-1])
    return np.stack([malignant[..., scored & (fs.lesion == i)].mean(axis=-1) for i in range(len(fs.case_ids))], -1)


def evaluate_recipes(
    fs: FeatureSet, recipes=RECIPES, folds: int = 5, repeats: int = 5, seed: int = 0, n_boot: int = 2000
) -> tuple[dict, Recipe, np.ndarray]:
    """Every recipe's out-of-fold AUROC (per repeat, mean, SD, and a bootstrap CI over lesions of the scores
    averaged over repeats) as a report; the chosen recipe; its out-of-fold predictions."""
    y = fs.malignant_lesions
    rows, predictions = [], {}
    for recipe in recipes:
        oof = out_of_fold(fs, recipe, folds, repeats, seed)
        scores = lesion_scores(fs, oof)
        per_repeat = [auroc(y, s) for s in scores]
        mean_scores = scores.mean(axis=0)
        ci = bootstrap_ci(lambda idx, s=mean_scores: auroc(y[idx], s[idx]), len(y), n_boot, seed, strata=y)
        rows.append(
            {
                "recipe": recipe.name,
                "auroc_per_repeat": per_repeat,
                "auroc_mean": float(np.mean(per_repeat)),
                "auroc_sd": float(np.std(per_repeat, ddof=1)) if repeats > 1 else 0.0,
                "auroc_of_mean_scores": auroc(y, mean_scores),
                "auroc_ci95": ci.tolist(),
            }
        )
        predictions[recipe] = oof
    best = max(rows, key=lambda r: r["auroc_mean"])
    close = [
        rc for rc, r in zip(recipes, rows, strict=True) if r["auroc_mean"] >= best["auroc_mean"] - best["auroc_sd"]
    ]
    chosen = min(close, key=lambda rc: rc.complexity)
    report = {
        "folds": folds,
        "repeats": repeats,
        "n_lesions": len(y),
        "n_malignant": int(y.sum()),
        "n_groups": len(set(fs.groups)),
        "recipes": rows,
        "best": best["recipe"],
        "chosen": chosen.name,
        "rule": "the simplest recipe whose mean out-of-fold AUROC is within one SD (over repeats) of the best",
    }
    return report, chosen, predictions[chosen]


def calibrate(fs: FeatureSet, oof: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """Temperature and operating points from out-of-fold predictions (every repeat, each box prompt on its own);
    ECE per prompt and per image (the lesion's mean over its box prompts) before and after, with CIs."""
    scored = fs.kind == SCORED_KIND
    probs = oof[:, scored].reshape(-1, oof.shape[-1])
    labels = np.tile(fs.class_index[fs.lesion[scored]], len(oof))
    temperature = fit_temperature(probs, labels)
    y_prompt = np.isin(labels, [fs.class_names.index(c) for c in fs.malignant])
    before, after = malignant_probability(fs, probs), malignant_probability(fs, temper(probs, temperature))
    points = {f"sensitivity_{round(100 * t)}": sensitivity_threshold(y_prompt, after, t) for t in SENSITIVITY_TARGETS}
    points["youden"] = youden(y_prompt, after)["threshold"]
    y = fs.malignant_lesions
    tempered = temper(oof.reshape(-1, oof.shape[-1]), temperature).reshape(oof.shape)
    image_before, image_after = lesion_scores(fs, oof).mean(axis=0), lesion_scores(fs, tempered).mean(axis=0)

    def ece_ci(p: np.ndarray) -> list:
        return bootstrap_ci(lambda idx: expected_calibration_error(y[idx], p[idx]), len(y), n_boot, seed).tolist()

    return {
        "temperature": temperature,
        "operating_points": points,
        "fitted_on": {
            "what": "out-of-fold predictions of every train and validation lesion (grouped k-fold, every repeat)",
            "n_images": len(y),
            "n_inputs": int(len(labels)),
            "inputs": "box prompts, each on its own",
        },
        "per_input_before": {"ece": expected_calibration_error(y_prompt, before), "brier": brier(y_prompt, before)},
        "per_input_after": {"ece": expected_calibration_error(y_prompt, after), "brier": brier(y_prompt, after)},
        "per_image_before": {"ece": expected_calibration_error(y, image_before), "ece_ci95": ece_ci(image_before)},
        "per_image_after": {
            "ece": expected_calibration_error(y, image_after),
            "ece_ci95": ece_ci(image_after),
            "brier": brier(y, image_after),
            "reliability": reliability(y, image_after),
        },
        "rates_at_points": {name: binary_rates(y_prompt, after, t) for name, t in points.items()},
    }
