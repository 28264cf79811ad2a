"""Across seeds: the paper's Tables 1-2 figures of each system and of each paired difference (joint minus the
single-task system), per seed and summarised (mean, SD, range, how many seeds agree on the sign and how many
are significant), with a verdict per figure on the paper's finding."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config import SYSTEMS
from ..evaluation.compare import compare_reports
from ..evaluation.paper import PAPER, PAPER_P
from ..evaluation.summary import benign_malignant
from . import ReproductionError

ALPHA = 0.05  # a paired test below this is counted as significant


@dataclass(frozen=True)
class Figure:
    key: str
    label: str
    versus: str  # the single-task system the joint one is compared with: seg | cls
    percent: bool  # a rate shown in % (else an AUROC)

    @property
    def claim(self) -> str:
        """The paper's finding for this figure, joint against ``versus``."""
        return "as well as or better" if self.versus == "seg" else "better"


FIGURES = (
    Figure("ji_two_click", "Mean JI, two-click", "seg", True),
    Figure("ji_one_click", "Mean JI, one-click", "seg", True),
    Figure("auroc", "AUROC, benign/malignant", "cls", False),
    Figure("sensitivity", "Sensitivity, benign/malignant", "cls", True),
    Figure("specificity", "Specificity, benign/malignant", "cls", True),
    Figure("accuracy", "Accuracy, benign/malignant", "cls", True),
    Figure("auroc_multi", "AUROC, multi-class (macro)", "cls", False),
    Figure("accuracy_multi", "Accuracy, multi-class", "cls", True),
)
BY_KEY = {f.key: f for f in FIGURES}


def figure_value(fig: Figure, report: dict) -> dict | None:
    """A system's figure in one report: value, 95% CI (and the SD over images for a Jaccard); None if absent."""
    if fig.key.startswith("ji_"):
        s = report["segmentation"].get(fig.key[3:])
        return s and {"value": s["mean_ji"], "sd": s["sd_ji"], "ci95": s["ci95"]}
    cls = report["classification"]
    if fig.key.endswith("_multi"):
        block, name = (cls if cls and cls["task"] != "benign/malignant" else None), fig.key.removesuffix("_multi")
    else:
        block, name = benign_malignant(cls), fig.key
    if not block or block.get(name) is None:
        return None
    return {"value": block[name], "ci95": block[f"{name}_ci95"]}


def figure_difference(fig: Figure, comparison: dict) -> dict | None:
    """Joint minus the single-task system in one seed's paired comparison (``compare_reports(joint, other)``)."""
    if fig.key.startswith("ji_"):
        t = comparison["segmentation"].get(fig.key[3:])
    elif fig.key.endswith("_multi"):
        mc = comparison["classification"].get("multi_class") or {}
        t = mc.get("auroc_macro" if fig.key == "auroc_multi" else "accuracy")
    else:
        t = (comparison["classification"].get("benign_malignant") or {}).get(fig.key)
    if t is None:
        return None
    if "difference" in t:  # DeLong: the difference with its CI
        return {"difference": t["difference"], "ci95": t["ci95"], "p": t["p"], "test": t["test"]}
    test = f"{t['test']} ({t['method']})" if t.get("method") else t["test"]
    return {"difference": t["a"] - t["b"], "p": t["p"], "test": test}


def spread(values) -> dict:
    """Mean, sample SD (None for one value), minimum and maximum across seeds."""
    v = np.asarray(values, dtype=np.float64)
    return {
        "n": len(v),
        "mean": float(v.mean()),
        "sd": float(v.std(ddof=1)) if len(v) > 1 else None,
        "min": float(v.min()),
        "max": float(v.max()),
    }


def difference_summary(differences, p_values) -> dict:
    """The spread of a difference across seeds and how many seeds agree on its sign (and significantly)."""
    d = np.asarray(differences, dtype=np.float64)
    significant = np.array([p is not None and p < ALPHA for p in p_values], bool)
    return {
        **spread(d),
        "higher": int((d > 0).sum()),
        "lower": int((d < 0).sum()),
        "equal": int((d == 0).sum()),
        "significant_higher": int(((d > 0) & significant).sum()),
        "significant_lower": int(((d < 0) & significant).sum()),
    }


def verdict(fig: Figure, d: dict) -> str:
    """Whether the paper's finding holds for a figure across seeds: holds, holds in direction only, mixed, or
    does not hold. Joint "better": higher in every seed and significantly in most; "as well as or better":
    never significantly lower and higher in at least as many seeds as lower."""
    n = d["n"]
    if fig.claim == "better":
        if d["higher"] == n:
            return "holds" if 2 * d["significant_higher"] > n else "holds in direction only"
        return "mixed" if d["higher"] > d["lower"] else "does not hold"
    if 2 * d["significant_lower"] > n:
        return "does not hold"
    if d["significant_lower"] == 0 and d["higher"] >= d["lower"]:
        return "holds"
    return "mixed"


def paper_reference(fig: Figure, multi_class: bool) -> dict:
    """The paper's own figures for ``fig`` (liver data): per system a text, and the p-value, where it gives them."""
    task = "multi-class" if multi_class else "benign/malignant"
    if fig.key == "ji_two_click":
        rows = {name: f"{v:.1f} ± {sd:.1f}" for name, v, sd in PAPER["segmentation"]["two_click"]}
        joint = rows["joint, trained 4-class" if multi_class else "joint, trained benign/malignant"]
        return {"seg": rows["segmentation only"], "joint": joint, "p": PAPER_P["two_click"][task]}
    if fig.key == "ji_one_click":
        return {"joint": f"{PAPER['segmentation']['one_click'][0][1]:.1f}"}
    name = fig.key.removesuffix("_multi")
    table = PAPER["multi-class" if fig.key.endswith("_multi") else "benign/malignant"]
    fmt = "{:.1f} ({:.1f}, {:.1f})" if fig.percent else "{:.3f} ({:.3f}, {:.3f})"
    return {
        "cls": fmt.format(*table["classification only"][name]),
        "joint": fmt.format(*table["joint"][name]),
        "p": PAPER_P["multi-class" if fig.key.endswith("_multi") else "benign/malignant"][name],
    }


def summarize(reports: dict[int, dict[str, dict]], n_boot: int = 2000) -> dict:
    """``reports[seed][system]`` -> per-seed paired comparisons and, per figure, each seed's values and
    difference and their summary across the seeds that have all three systems."""
    seeds = sorted(s for s, r in reports.items() if set(r) >= set(SYSTEMS))
    if not seeds:
        raise ReproductionError("no seed has the reports of all three systems yet")
    comparisons = {
        s: {other: compare_reports(reports[s]["joint"], reports[s][other], n_boot, s) for other in ("seg", "cls")}
        for s in seeds
    }
    first = reports[seeds[0]]["joint"]
    multi_class = len(first["model"]["class_names"]) > 2
    figures = {}
    for fig in FIGURES:
        rows = []
        for s in seeds:
            values = {sys: figure_value(fig, reports[s][sys]) for sys in (fig.versus, "joint")}
            diff = figure_difference(fig, comparisons[s][fig.versus])
            if diff is None or None in values.values():
                break
            rows.append({"seed": s, **values, "difference": diff})
        else:
            d = difference_summary([r["difference"]["difference"] for r in rows], [r["difference"]["p"] for r in rows])
            figures[fig.key] = {
                "label": fig.label,
                "versus": fig.versus,
                "claim": fig.claim,
                "per_seed": rows,
                "across_seeds": {sys: spread([r[sys]["value"] for r in rows]) for sys in (fig.versus, "joint")},
                "difference": d,
                "verdict": verdict(fig, d),
                "paper": paper_reference(fig, multi_class),
            }
    return {
        "seeds": seeds,
        "incomplete_seeds": {s: sorted(set(SYSTEMS) - set(r)) for s, r in reports.items() if s not in seeds},
        "data": first["data"],
        "multi_class": multi_class,
        "figures": figures,
        "comparisons": comparisons,
        "timing": {
            s: {
                sys: {
                    "iterations": r.get("reproduce", {}).get("iteration"),
                    "train_seconds": r.get("reproduce", {}).get("train_seconds"),
                    "evaluate_seconds": r["timing"]["seconds"],
                }
                for sys, r in by_system.items()
            }
            for s, by_system in sorted(reports.items())
        },
    }
