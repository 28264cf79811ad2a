"""The classifier's recipe chosen by repeated grouped cross-validation on cached features, and calibrated out of fold.

Only the lesions the network was not trained on are scored. The encoder learnt the training split's labels (the
joint loss trains it), so its features separate those lesions perfectly whatever the head (out-of-fold AUROC
1.000 on them, against 0.94 on validation lesions, for bundled models 2.0 and 2.1): scoring them would rank
recipes by memory. Each repeat splits the validation lesions into ``folds`` folds that keep a ``split_group``
whole and the classes balanced; a held-out lesion's score is its mean malignant probability over its box
prompts, as the evaluation reads the two-click inputs.

A recipe is a model (logistic regression or a one-hidden-layer MLP, standardised inputs) with its regularisation,
fitted on every prompt or on each lesion's mean feature (prompt averaging), on the training lesions and the other
folds, or on the other folds alone. The recipe chosen is the simplest whose mean out-of-fold AUROC is within one
standard deviation (over repeats) of the best: what wins by a hair on 86 lesions is not what generalises.

Calibration: one temperature and the operating points (90% and 95% sensitivity, Youden's point) fitted on the
out-of-fold predictions of the scored lesions, each box prompt on its own, as the viewer shows each prompt's
probability.
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
    ece_ci95,
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
    with_seen: bool = True  # also fit on the lesions the network was trained on

    @property
    def name(self) -> str:
        size = f" {self.hidden}" if self.model == "mlp" else ""
        rows = "lesion means" if self.averaged else "every prompt"
        return f"{self.model}{size}, L2 {self.strength:g}, {rows}, {'all lesions' if self.with_seen else 'unseen only'}"

    @property
    def complexity(self) -> tuple:
        """Simpler first: linear before MLP, fewer units, stronger regularisation, averaged before every prompt."""
        return (self.model != "logistic", self.hidden, -self.strength, not self.averaged, not self.with_seen)

    def pipeline(self, seed: int) -> Pipeline:
        if self.model == "logistic":
            model = LogisticRegression(C=1 / self.strength, max_iter=2000)
        else:
            # Full-batch L-BFGS: on a few thousand rows it converges in a second, where SGD-style solvers take minutes.
            model = MLPClassifier((self.hidden,), alpha=self.strength, solver="lbfgs", max_iter=500, random_state=seed)
        return make_pipeline(StandardScaler(), model)


RECIPES = [
    *(
        Recipe("logistic", s, averaged=a, with_seen=w)
        for s in (100.0, 10.0, 1.0, 0.1)
        for a in (False, True)
        for w in (True, False)
    ),
    *(Recipe("mlp", s, hidden=64, with_seen=w) for s in (10.0, 1.0, 0.1) for w in (True, False)),
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
    """(repeats, N, C) class probabilities of the scored lesions' rows (NaN elsewhere), each predicted by the fold
    that held its lesion out, for each repeat's split."""
    scored, seen = fs.unseen_lesions, np.setdiff1d(np.arange(len(fs.case_ids)), fs.unseen_lesions)
    truth, groups = fs.class_index[scored], np.asarray(fs.groups)[scored]
    out = np.full((repeats, len(fs.features), len(fs.class_names)), np.nan)
    for r in range(repeats):
        split = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed + r)
        for train, held in split.split(np.zeros(len(scored)), truth, groups):
            lesions = np.concatenate([seen, scored[train]]) if recipe.with_seen else scored[train]
            model = fit(fs, recipe, lesions, seed + r)
            rows = np.isin(fs.lesion, scored[held])
            out[r, rows] = model.predict_proba(fs.features[rows])
    return out


def lesion_scores(fs: FeatureSet, probs: np.ndarray) -> np.ndarray:
    """(..., L): each scored lesion's malignant probability averaged over its box prompts."""
    boxes = fs.kind == SCORED_KIND
    malignant = malignant_probability(fs, probs.reshape(-1, probs.shape[-1])).reshape(probs.shape[:-1])
    return np.stack([malignant[..., boxes & (fs.lesion == i)].mean(axis=-1) for i in fs.unseen_lesions], -1)


def evaluate_recipes(
    fs: FeatureSet, recipes=RECIPES, folds: int = 5, repeats: int = 5, seed: int = 0, n_boot: int = 2000
) -> tuple[dict, Recipe, np.ndarray]:
    """Every recipe's out-of-fold AUROC (per repeat, mean, SD, and a bootstrap CI over lesions of the scores
    averaged over repeats) as a report; the chosen recipe; its out-of-fold predictions."""
    y = fs.malignant_lesions[fs.unseen_lesions]
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
        "n_lesions": len(fs.case_ids),
        "n_scored": len(y),
        "n_malignant_scored": int(y.sum()),
        "n_groups_scored": len({fs.groups[i] for i in fs.unseen_lesions}),
        "recipes": rows,
        "best": best["recipe"],
        "chosen": chosen.name,
        "rule": "the simplest recipe whose mean out-of-fold AUROC is within one SD (over repeats) of the best",
        "scored": "the lesions the network was not trained on (the validation split), fold by fold",
    }
    return report, chosen, predictions[chosen]


def calibrate(fs: FeatureSet, oof: np.ndarray, n_boot: int = 2000, seed: int = 0) -> dict:
    """Temperature and operating points from out-of-fold predictions (every repeat, each box prompt on its own);
    ECE per prompt and per image (the lesion's mean over its box prompts) before and after, with CIs."""
    scored = (fs.kind == SCORED_KIND) & np.isin(fs.lesion, fs.unseen_lesions)
    probs = oof[:, scored].reshape(-1, oof.shape[-1])
    labels = np.tile(fs.class_index[fs.lesion[scored]], len(oof))
    temperature = fit_temperature(probs, labels)
    y_prompt = np.isin(labels, [fs.class_names.index(c) for c in fs.malignant])
    before, after = malignant_probability(fs, probs), malignant_probability(fs, temper(probs, temperature))
    points = {f"sensitivity_{round(100 * t)}": sensitivity_threshold(y_prompt, after, t) for t in SENSITIVITY_TARGETS}
    points["youden"] = youden(y_prompt, after)["threshold"]
    y = fs.malignant_lesions[fs.unseen_lesions]
    tempered = temper(oof.reshape(-1, oof.shape[-1]), temperature).reshape(oof.shape)
    image_before, image_after = lesion_scores(fs, oof).mean(axis=0), lesion_scores(fs, tempered).mean(axis=0)

    return {
        "temperature": temperature,
        "operating_points": points,
        "fitted_on": {
            "what": "out-of-fold predictions of the lesions the network was not trained on (grouped k-fold, every "
            "repeat)",
            "split": "+".join(sorted({fs.splits[i] for i in fs.unseen_lesions})) if fs.splits else "all",
            "n_images": len(y),
            "n_inputs": int(len(labels)),
            "inputs": "box prompts, each on its own",
        },
        "per_input_before": {"ece": expected_calibration_error(y_prompt, before), "brier": brier(y_prompt, before)},
        "per_input_after": {"ece": expected_calibration_error(y_prompt, after), "brier": brier(y_prompt, after)},
        "per_image_before": {
            "ece": expected_calibration_error(y, image_before),
            "ece_ci95": ece_ci95(y, image_before, n_boot, seed),
        },
        "per_image_after": {
            "ece": expected_calibration_error(y, image_after),
            "ece_ci95": ece_ci95(y, image_after, n_boot, seed),
            "brier": brier(y, image_after),
            "reliability": reliability(y, image_after),
        },
        "rates_at_points": {name: binary_rates(y_prompt, after, t) for name, t in points.items()},
    }
