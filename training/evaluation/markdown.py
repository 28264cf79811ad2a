"""The report as Markdown: the paper's Tables 1-3 with the baselines beside, then what goes beyond the paper."""

from __future__ import annotations

import numpy as np

from ..clicks import mode_key, mode_label
from .paper import PAPER
from .summary import benign_malignant

# Readable names of the per-image Jaccard series (model by mode, and the segmentation baselines).
SERIES = {
    "two_click": "model, two-click",
    "one_click": "model, one-click",
    "box": "box",
    "ellipse": "inscribed ellipse",
    "disk": "disk around the click",
}


def fmt_pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def _pct_ci(ci) -> str:
    return "–" if ci is None or ci[0] is None else f"({fmt_pct(ci[0])}, {fmt_pct(ci[1])})"


def _pct_with_ci(x: float | None, ci) -> str:
    return "–" if x is None else f"{fmt_pct(x)} {_pct_ci(ci)}"


def fmt_auc(x: float | None, ci=None) -> str:
    if x is None:
        return "–"
    return f"{x:.3f}" + ("" if ci is None or ci[0] is None else f" ({ci[0]:.3f}, {ci[1]:.3f})")


def fmt_p(p: float | None) -> str:
    return "–" if p is None else ("< 0.001" if p < 0.001 else f"{p:.3f}")


def _paper(triple, auroc: bool = False) -> str:
    value, lo, hi = triple
    return f"{value:.3f} ({lo:.3f}, {hi:.3f})" if auroc else f"{value:.1f} ({lo:.1f}, {hi:.1f})"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
        "",
    ]


def markdown_report(report: dict) -> str:
    """The report as Markdown: the paper's Tables 1-3 with the baselines beside, then what goes beyond."""
    m, d, p = report["model"], report["data"], report["protocol"]
    lines = [
        f"# Evaluation of {m['name']} {m['version']}",
        "",
        f"Data: `{d.get('manifest', '?')}`, split `{d.get('split', '?')}`: {d['n_images']} images "
        f"({', '.join(f'{k} {v}' for k, v in d['labels'].items())}), {d['n_inputs']} simulated inputs per image "
        f"and mode, seed {p['seed']}. Provider: {m['provider']}.",
        "",
        "Research tool, not for diagnosis. The paper's columns are Ryu et al. (Eur Radiol 2021) on their "
        "private liver data: a reference, not comparable one-to-one. CIs: " + p["ci"] + ".",
        "",
        "## Table 1. Segmentation (Jaccard index per image, %)",
        "",
    ]
    seg, base = report["segmentation"], report["baselines"]
    rows = []
    for key, label in (("two_click", "Two-click (box)"), ("one_click", "One-click")):
        if key not in seg:
            continue
        paper = "; ".join(f"{n}: {v:.1f}" + (f" ± {sd:.1f}" if sd else "") for n, v, sd in PAPER["segmentation"][key])
        s = seg[key]
        rows.append([label, "model", f"{fmt_pct(s['mean_ji'])} ± {fmt_pct(s['sd_ji'])}", _pct_ci(s["ci95"]), paper])
        for b in base.values():
            if b["kind"] == "segmentation" and mode_key(b["inputs"]) == key:
                rows.append(
                    [
                        label,
                        f"baseline: {b['what']}",
                        f"{fmt_pct(b['mean_ji'])} ± {fmt_pct(b['sd_ji'])}",
                        _pct_ci(b["ci95"]),
                        "–",
                    ]
                )
    lines += markdown_table(["Input", "System", "Mean JI ± SD", "95% CI", "Paper (liver)"], rows)
    lines.append(f"One-click baseline disk radius: {p['disk_radius']}.")
    lines.append("")
    lines += _classification_markdown(report)
    lines += _beyond_markdown(report)
    if report.get("stress"):
        lines += _stress_markdown(report["stress"])
    return "\n".join(lines) + "\n"


def _classification_markdown(report: dict) -> list[str]:
    cls = report["classification"]
    if not cls:
        return [
            "## Table 2. Classification",
            "",
            "Not evaluated: the labels name neither the model's classes nor benign/malignant.",
            "",
        ]
    lines = [
        "## Table 2. Classification",
        "",
        f"From the {cls['inputs']} inputs; {report['protocol']['classification_averaging']}.",
        "",
    ]
    bm = benign_malignant(cls)
    if bm:
        lines += _benign_malignant_markdown(report, bm)
    if cls["task"] != "benign/malignant":
        rows = [
            [
                "AUROC (macro, one-vs-rest)",
                fmt_auc(cls["auroc"], cls["auroc_ci95"]),
                *(_paper(PAPER["multi-class"][s]["auroc"], True) for s in ("joint", "classification only")),
            ]
        ]
        rows += [[f"AUROC {n}", fmt_auc(a["auroc"], a["ci95"]), "–", "–"] for n, a in cls["auroc_per_class"].items()]
        for metric, label in (
            ("sensitivity", "Sensitivity (macro, %)"),
            ("specificity", "Specificity (macro, %)"),
            ("accuracy", "Accuracy (%)"),
        ):
            rows.append(
                [
                    label,
                    _pct_with_ci(cls[metric], cls[metric + "_ci95"]),
                    *(_paper(PAPER["multi-class"][s][metric]) for s in ("joint", "classification only")),
                ]
            )
        header = [" / ".join(cls["class_names"]), "Model", "Paper: joint", "Paper: classification only"]
        lines += markdown_table(header, rows)
    lines += ["## Table 3. Confusion matrix (rows: reference, columns: model)", ""]
    names = cls["class_names"]
    if cls["confusion_matrix"] is None:
        lines += ["Undefined: the test set holds one class only.", ""]
    else:
        lines += _confusion_table(names, cls["confusion_matrix"], "per image")
    if "per_input" in cls and cls["task"] != "benign/malignant":
        lines += _confusion_table(names, cls["per_input"]["confusion_matrix"], "per input, as the paper counts")
    if tuple(n.lower() for n in names) == PAPER["confusion_classes"]:
        lines += _confusion_table(names, PAPER["confusion_matrix"], "paper, joint system, liver data (reference)")
    return lines


def _benign_malignant_markdown(report: dict, bm: dict) -> list[str]:
    """The benign/malignant table beside the baselines and the paper, its operating point and calibration."""
    lines: list[str] = []
    base = {n: b for n, b in report["baselines"].items() if b["kind"] == "classification"}
    header = [
        "Benign/malignant",
        "Model",
        *(f"Baseline: {n.replace('_', ' ')}" for n in base),
        "Paper: joint",
        "Paper: classification only",
    ]
    rows = [
        [
            "AUROC",
            fmt_auc(bm["auroc"], bm["auroc_ci95"]),
            *(fmt_auc(b["auroc"], b["auroc_ci95"]) for b in base.values()),
            *(_paper(PAPER["benign/malignant"][s]["auroc"], True) for s in ("joint", "classification only")),
        ]
    ]
    for metric in ("sensitivity", "specificity", "accuracy"):
        rows.append(
            [
                f"{metric.capitalize()} (%)",
                _pct_with_ci(bm[metric], bm[metric + "_ci95"]),
                *(_pct_with_ci(b[metric], b[metric + "_ci95"]) for b in base.values()),
                *(_paper(PAPER["benign/malignant"][s][metric]) for s in ("joint", "classification only")),
            ]
        )
    lines += markdown_table(header, rows)
    threshold = "undefined" if bm["threshold"] is None else f"{bm['threshold']:.3f}"
    lines += [
        f"Sensitivity, specificity and accuracy at {bm['operating_point']} (model threshold "
        f"{threshold}); the reference baselines score the reference outline (an oracle input), the "
        "predicted ones the model's own two-click outlines (shape alone, no texture).",
        "",
    ]
    lines += _calibration_markdown(bm)
    return lines


def _calibration_markdown(bm: dict) -> list[str]:
    """ECE and Brier score of the malignant probability, and the model's own operating points on this data."""
    cal = bm.get("calibration")
    if not cal:
        return []
    ci = cal["per_image"].get("ece_ci95")
    ci_text = f" (95% CI {ci[0]:.3f}–{ci[1]:.3f})" if ci else ""
    lines = [
        f"Calibration of the malignant probability ({cal['bins']} equal-width bins): ECE "
        f"{cal['per_image']['ece']:.3f}{ci_text} and Brier score {cal['per_image']['brier']:.3f} per image (inputs "
        f"averaged); ECE {cal['per_input']['ece']:.3f} and Brier {cal['per_input']['brier']:.3f} per input, as the "
        "viewer shows it.",
        "",
    ]
    points = bm.get("operating_points") or {}
    if points:
        rows = [
            [
                name.replace("_", " "),
                f"{p['threshold']:.3f}",
                _pct_with_ci(p["sensitivity"], p["sensitivity_ci95"]),
                _pct_with_ci(p["specificity"], p["specificity_ci95"]),
            ]
            for name, p in points.items()
        ]
        lines += ["The model's operating points (thresholds chosen on validation), on this data:", ""]
        lines += markdown_table(["Operating point", "Threshold", "Sensitivity (%)", "Specificity (%)"], rows)
    return lines


def _stress_markdown(stress: dict) -> list[str]:
    """The acquisition-shift stress test: box Jaccard and AUROC under each fixed shift."""
    rows = []
    for name, r in stress["shifts"].items():
        change = "–" if "auroc_change" not in r else f"{r['auroc_change']:+.3f} (p {fmt_p(r['auroc_change_p'])})"
        rows.append(
            [
                name,
                r["what"],
                f"{fmt_pct(r['two_click_ji'])} ({100 * r['ji_change']:+.1f})",
                fmt_auc(r["auroc"], r["auroc_ci95"]),
                change,
            ]
        )
    worst = stress["worst_auroc_drop"]
    return [
        "## Acquisition-shift stress test",
        "",
        f"{stress['n_images']} images, {stress['inputs_per_image']} two-click inputs each ({stress['prompts']}); "
        f"largest AUROC drop {'–' if worst is None else f'{worst:.3f}'} (target <= {stress['max_auroc_drop']}).",
        "",
        *markdown_table(["Shift", "What", "Box JI (%) (change)", "AUROC (95% CI)", "AUROC change (DeLong p)"], rows),
    ]


def _confusion_table(names, cm, caption: str) -> list[str]:
    cm = np.asarray(cm)
    rows = [
        [
            f"{n} (n={int(cm[i].sum())})",
            *(str(int(v)) for v in cm[i]),
            fmt_pct(cm[i, i] / cm[i].sum() if cm[i].sum() else None),
        ]
        for i, n in enumerate(names)
    ]
    rows.append(["Total", *("" for _ in names), fmt_pct(np.trace(cm) / cm.sum() if cm.sum() else None)])
    return [f"*{caption}*", "", *markdown_table(["", *names, "Accuracy (%)"], rows)]


CURVE_CLICKS = (1, 2, 3, 5, 7, 9, 12, 15, 20)  # the columns of the Jaccard-after-k table


def _beyond_markdown(report: dict) -> list[str]:
    lines = ["## Beyond the paper", ""]
    noc_ = report["noc"]
    if noc_:
        lines += [
            f"NoC with the clicker of {noc_['clicker']}; every pass is fed the outline before it; at most "
            f"{noc_['max_clicks']} clicks, an image never reaching the threshold counting as {noc_['max_clicks']}:",
            "",
        ]
        rows = [
            [
                f"NoC@{t}",
                f"{noc_[f'noc{t}']:.2f} ({noc_[f'noc{t}_ci95'][0]:.2f}, {noc_[f'noc{t}_ci95'][1]:.2f})",
                fmt_pct(noc_[f"noc{t}_failed"]),
            ]
            for t in (85, 90)
        ]
        lines += markdown_table(["", "Mean clicks (95% CI)", "Never reached (%)"], rows)
        ks = [k for k in CURVE_CLICKS if k <= len(noc_["mean_ji_after_k"])]
        lines += ["Mean Jaccard (%) after k clicks:", ""]
        lines += markdown_table(
            ["Clicks", *map(str, ks)],
            [
                ["Mean JI", *(fmt_pct(noc_["mean_ji_after_k"][k - 1]) for k in ks)],
                ["95% CI", *(_pct_ci(noc_["mean_ji_after_k_ci95"][k - 1]) for k in ks)],
            ],
        )
    deciles = report["by_size_decile"]
    if deciles:
        cols = [c for c in deciles[0] if c in SERIES]
        lines += ["Mean JI (%) by lesion-size decile (ten groups of equal size by reference area):", ""]
        lines += markdown_table(
            ["Decile", "n", "Area (px)", *(SERIES[c] for c in cols)],
            [
                [
                    str(r["decile"]),
                    str(r["n_images"]),
                    f"{r['area_px'][0]}–{r['area_px'][1]}",
                    *(fmt_pct(r[c]) for c in cols),
                ]
                for r in deciles
            ],
        )
    seg = report["segmentation"]
    if seg:
        labels = sorted({lab for s in seg.values() for lab in s["by_class"]})
        lines += ["Mean JI (%) by class:", ""]
        lines += markdown_table(
            ["Class", *(f"{mode_label(k)} (n)" for k in seg)],
            [
                [
                    lab,
                    *(
                        f"{fmt_pct(s['by_class'][lab]['mean_ji'])} ± {fmt_pct(s['by_class'][lab]['sd_ji'])} "
                        f"({s['by_class'][lab]['n_images']})"
                        for s in seg.values()
                    ),
                ]
                for lab in labels
            ],
        )
    return lines


def one_line(report: dict) -> str:
    parts = [f"{report['data']['n_images']} images"]
    for key, s in report["segmentation"].items():
        parts.append(f"{mode_label(key)} JI {fmt_pct(s['mean_ji'])} ± {fmt_pct(s['sd_ji'])}%")
    bm = benign_malignant(report["classification"])
    if bm:
        parts.append(f"benign/malignant AUROC {fmt_auc(bm['auroc'])}")
        if bm.get("calibration"):
            parts.append(f"ECE {bm['calibration']['per_image']['ece']:.3f}")
    if report["classification"] and report["classification"]["task"] != "benign/malignant":
        parts.append(
            f"{report['classification']['task']} AUROC {fmt_auc(report['classification']['auroc'])}, "
            f"accuracy {fmt_pct(report['classification']['accuracy'])}%"
        )
    if report["noc"]:
        after = report["noc"]["mean_ji_after_k"]
        parts.append(f"NoC@85 {report['noc']['noc85']:.2f}, NoC@90 {report['noc']['noc90']:.2f}")
        parts.append("JI after 1/5/9 clicks " + "/".join(fmt_pct(after[k - 1]) for k in (1, 5, 9) if k <= len(after)))
    return "; ".join(parts)
