"""The acquisition-shift stress test: the two-click protocol on the same images under fixed synthetic shifts.

Each shift of :data:`training.shifts.STRESS_SHIFTS` changes every image the same way (parameters apart from,
mostly beyond, the training augmentation's ranges); the prompts are the unshifted run's (seeded by case id),
so every difference comes from the image. Per shift: box (two-click) mean Jaccard, benign/malignant AUROC
with its CI, the change from the unshifted figures and DeLong's paired test of the AUROC change.
"""

from __future__ import annotations

import numpy as np

from core.manifest import Case
from core.runtime import Predictor

from ..shifts import STRESS_SHIFTS
from . import stats
from .protocol import evaluate
from .summary import benign_malignant

MAX_AUROC_DROP = 0.05  # the robustness target: no shift may cost more AUROC than this


def stress_test(
    predictor: Predictor, cases: list[Case], *, seed: int = 0, n_inputs: int = 5, n_boot: int = 1000, progress=False
) -> dict:
    """The unshifted two-click evaluation and one per stress shift: the ``stress`` section of a report."""
    runs = {"none": ("no shift", None), **STRESS_SHIFTS}
    rows, base_scores = {}, None
    for name, (what, transform) in runs.items():
        report = evaluate(
            predictor,
            cases,
            modes=("two-click",),
            seed=seed,
            n_inputs=n_inputs,
            noc=False,
            n_boot=n_boot,
            progress=progress,
            transform=transform,
        )
        seg, bm = report["segmentation"]["two_click"], benign_malignant(report["classification"])
        row = {"what": what, "two_click_ji": seg["mean_ji"], "two_click_ji_ci95": seg["ci95"]}
        if bm:
            row.update(auroc=bm["auroc"], auroc_ci95=bm["auroc_ci95"])
            scores = np.array([r["classification"]["malignant_prob"] for r in report["images"]])
            y = np.array([r["malignant"] for r in report["images"]], bool)
            if base_scores is None:
                base_scores = scores
            else:
                test = stats.delong_test(y, scores, base_scores)
                row.update(auroc_change=test["difference"], auroc_change_ci95=test["ci95"], auroc_change_p=test["p"])
        row["ji_change"] = row["two_click_ji"] - rows.get("none", row)["two_click_ji"]
        rows[name] = row
    drops = [-r["auroc_change"] for r in rows.values() if "auroc_change" in r]
    return {
        "n_images": len(cases),
        "inputs_per_image": n_inputs,
        "prompts": "the unshifted run's two-click inputs (seeded by case id)",
        "max_auroc_drop": MAX_AUROC_DROP,
        "worst_auroc_drop": max(drops) if drops else None,
        "shifts": rows,
    }
