"""Figures of an evaluation report (PNG, matplotlib's Agg canvas): ROC curves with the operating point,
confusion matrix, Jaccard by lesion-size decile, the Jaccard after k clicks beside published curves, the
reliability diagram, the stress test, and overlays of the best and worst segmented images.

Everything is drawn from the report's per-image records; only the overlays run the model again (on the
first stored input of a few images), because masks are not kept in the report. Figures are built
with matplotlib's object API (no pyplot state), so plotting is safe on headless machines and in threads.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from core.prompt import Prompt

from ..clicks import mode_label
from . import stats
from .baselines import baseline_scores
from .markdown import SERIES
from .paper import PUBLISHED_CLICK_CURVES
from .summary import benign_malignant

N_EXAMPLES = 3


def write_plots(report: dict, out_dir: Path, predictor=None, cases: dict | None = None) -> list[Path]:
    """Write every figure the report supports into ``out_dir``; returns their paths.

    ``predictor`` and ``cases`` (case_id -> Case) enable the overlays.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    cls = report["classification"]
    bm = benign_malignant(cls)
    if bm and bm["auroc"] is not None:
        written.append(roc_benign_malignant(report, out_dir / "roc_benign_malignant.png"))
    if cls and cls["task"] != "benign/malignant":
        written.append(roc_per_class(report, out_dir / "roc_per_class.png"))
    if cls and cls["confusion_matrix"] is not None:
        written.append(confusion(cls, out_dir / "confusion_matrix.png"))
    if report["by_size_decile"]:
        written.append(ji_by_decile(report, out_dir / "ji_by_size_decile.png"))
    if report["noc"]:
        written.append(ji_after_clicks(report, out_dir / "ji_after_clicks.png"))
    if bm and bm.get("calibration"):
        written.append(reliability_diagram(bm, out_dir / "reliability.png"))
    if report.get("stress"):
        written.append(stress_plot(report["stress"], out_dir / "stress_test.png"))
    if predictor is not None and cases:
        written.append(overlays(report, predictor, cases, out_dir / "examples_best_worst.png"))
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def _roc_axes(ax, title: str) -> None:
    ax.plot([0, 1], [0, 1], color="0.7", lw=1, ls=":")
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 - specificity", ylabel="sensitivity", title=title, aspect="equal")
    ax.legend(loc="lower right", fontsize=8)


def roc_benign_malignant(report: dict, path: Path) -> Path:
    """ROC of the malignant probability with Youden's point, and the lesion-outline baselines."""
    bm = benign_malignant(report["classification"])
    recs = report["images"]
    y = np.array([r["malignant"] for r in recs], bool)
    fig = Figure(figsize=(5.2, 5.2))
    ax = fig.subplots()
    fpr, tpr, _ = stats.roc_curve(y, [r["classification"]["malignant_prob"] for r in recs])
    ax.plot(fpr, tpr, lw=2, label=f"model (AUROC {bm['auroc']:.3f})")
    ax.plot(1 - bm["specificity"], bm["sensitivity"], "o", color="C3", label="Youden's point")
    for i, (name, b) in enumerate(report["baselines"].items()):
        if b["kind"] == "classification":
            f, t, _ = stats.roc_curve(y, baseline_scores(recs, name))
            ax.plot(f, t, lw=1, ls="--", color=f"C{i + 4}", label=f"{name.replace('_', ' ')} ({b['auroc']:.3f})")
    _roc_axes(ax, "Benign vs malignant")
    return _save(fig, path)


def roc_per_class(report: dict, path: Path) -> Path:
    """One-vs-rest ROC per class, their macro average (mean sensitivity over a common grid), argmax points."""
    cls = report["classification"]
    recs = report["images"]
    true = np.array([r["true_class"] for r in recs])
    probs = np.array([r["classification"]["class_probs"] for r in recs])
    grid = np.linspace(0, 1, 201)
    curves = []
    fig = Figure(figsize=(5.2, 5.2))
    ax = fig.subplots()
    for k, name in enumerate(cls["class_names"]):
        if not 0 < (true == k).sum() < len(true):
            continue
        fpr, tpr, _ = stats.roc_curve(true == k, probs[:, k])
        curves.append(np.interp(grid, fpr, tpr))
        ax.plot(fpr, tpr, lw=1.2, color=f"C{k}", label=f"{name} ({cls['auroc_per_class'][name]['auroc']:.3f})")
        rates = cls["per_class"][name]
        ax.plot(1 - rates["specificity"], rates["sensitivity"], "o", color=f"C{k}", ms=5)
    if curves:
        ax.plot(grid, np.mean(curves, axis=0), color="k", lw=2, label=f"macro ({cls['auroc']:.3f})")
    _roc_axes(ax, "One-vs-rest (dots: argmax calls)")
    return _save(fig, path)


def confusion(cls: dict, path: Path) -> Path:
    cm = np.asarray(cls["confusion_matrix"])
    names = cls["class_names"]
    fig = Figure(figsize=(1.2 * len(names) + 2, 1.1 * len(names) + 1.5))
    ax = fig.subplots()
    ax.imshow(cm, cmap="Blues")
    for i, j in np.ndindex(cm.shape):
        ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set(
        xticks=range(len(names)),
        yticks=range(len(names)),
        xticklabels=names,
        yticklabels=names,
        xlabel="model",
        ylabel="reference",
        title=f"Confusion matrix ({cls['operating_point'].split(';')[0]})",
    )
    return _save(fig, path)


def ji_by_decile(report: dict, path: Path) -> Path:
    rows = report["by_size_decile"]
    deciles = [r["decile"] for r in rows]
    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for key in (k for k in rows[0] if k in SERIES):
        model = key in report["segmentation"]
        ax.plot(
            deciles,
            [100 * r[key] for r in rows],
            marker="o" if model else ".",
            lw=2 if model else 1,
            ls="-" if model else "--",
            label=SERIES[key],
        )
    ax.set(
        xlabel="lesion-size decile (1 = smallest)",
        ylabel="mean Jaccard index (%)",
        ylim=(0, 100),
        xticks=range(1, 11),
        title="Jaccard by lesion size",
    )
    ax.legend(fontsize=8)
    return _save(fig, path)


def ji_after_clicks(report: dict, path: Path) -> Path:
    """Mean Jaccard after k clicks with its 95% CI band, and the published breast-ultrasound curves."""
    noc = report["noc"]
    k = np.arange(1, len(noc["mean_ji_after_k"]) + 1)
    ci = np.array([[np.nan if v is None else v for v in c] for c in noc["mean_ji_after_k_ci95"]])
    fig = Figure(figsize=(6.4, 4.4))
    ax = fig.subplots()
    ax.fill_between(k, ci[:, 0], ci[:, 1], color="C0", alpha=0.2, lw=0)
    ax.plot(k, noc["mean_ji_after_k"], "o-", color="C0", lw=2, ms=4, label=f"{report['model']['name']} (95% CI)")
    for i, (name, values) in enumerate(PUBLISHED_CLICK_CURVES["curves"].items()):
        ax.plot(PUBLISHED_CLICK_CURVES["clicks"], values, "s--", color=f"C{i + 1}", lw=1, ms=4, label=name)
    ax.axhline(0.85, color="0.6", lw=0.8, ls=":")
    ax.axhline(0.90, color="0.6", lw=0.8, ls=":")
    ax.set(
        xlabel="clicks (RITM's clicker)",
        ylabel="mean Jaccard (IoU)",
        ylim=(0, 1),
        xticks=[1, 3, 5, 9, 12, 15, 20],
        title=f"Jaccard after k clicks; dashed: {PUBLISHED_CLICK_CURVES['source']}",
    )
    ax.title.set_fontsize(8)
    ax.legend(fontsize=7, loc="lower right")
    return _save(fig, path)


def reliability_diagram(bm: dict, path: Path) -> Path:
    """Observed malignant rate against mean predicted probability per bin (per image), with bin counts."""
    cal = bm["calibration"]["per_image"]
    bins = [b for b in cal["reliability"] if b["n"]]
    fig = Figure(figsize=(5, 5.4))
    ax, hist = fig.subplots(2, 1, gridspec_kw={"height_ratios": [4, 1]}, sharex=True)
    ax.plot([0, 1], [0, 1], color="0.6", ls=":", lw=1)
    ax.plot([b["mean_prob"] for b in bins], [b["observed"] for b in bins], "o-", color="C0")
    ax.set(
        ylabel="observed malignant rate",
        xlim=(0, 1),
        ylim=(0, 1),
        title=f"Reliability (ECE {cal['ece']:.3f}, Brier {cal['brier']:.3f})",
    )
    hist.bar([np.mean(b["bin"]) for b in cal["reliability"]], [b["n"] for b in cal["reliability"]], width=0.09)
    hist.set(xlabel="malignant probability", ylabel="images")
    return _save(fig, path)


def stress_plot(stress: dict, path: Path) -> Path:
    """AUROC and box Jaccard under each shift of the stress test, with CIs; the unshifted value as a line."""
    names = list(stress["shifts"])
    rows = [stress["shifts"][n] for n in names]
    fig = Figure(figsize=(9, 0.35 * len(names) + 1.5))
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(names))
    for ax, key, label in ((axes[0], "auroc", "benign/malignant AUROC"), (axes[1], "two_click_ji", "box mean Jaccard")):
        values = np.array([np.nan if r.get(key) is None else r[key] for r in rows], dtype=float)
        ci = np.array([r.get(f"{key}_ci95") or [np.nan, np.nan] for r in rows], dtype=float)
        ax.errorbar(values, y, xerr=np.abs(ci.T - values), fmt="o", color="C0", ecolor="0.6", capsize=2)
        ax.axvline(values[0], color="C3", lw=1, ls="--")
        ax.set(xlabel=label)
    axes[0].axvline(rows[0].get("auroc", np.nan) - stress["max_auroc_drop"], color="0.6", lw=0.8, ls=":")
    axes[0].set(yticks=y, yticklabels=names)
    axes[0].invert_yaxis()
    fig.suptitle("Acquisition-shift stress test (dashed: unshifted; dotted: the allowed AUROC drop)", fontsize=9)
    return _save(fig, path)


def overlays(report: dict, predictor, cases: dict, path: Path) -> Path:
    """The best and worst images by mean Jaccard (two-click if run): reference (green), model (red),
    and the first input (box or clicks), re-predicted from the stored prompt."""
    key = next(iter(report["segmentation"]))
    recs = sorted(report["images"], key=lambda r: (r[key]["mean_ji"], r["case_id"]))
    n = min(N_EXAMPLES, len(recs))
    picks = [("best", r) for r in recs[::-1][:n]] + [("worst", r) for r in recs[:n]]
    fig = Figure(figsize=(3.2 * n, 6.4))
    axes = fig.subplots(2, n, squeeze=False)
    for ax, (which, rec) in zip(axes.ravel(), picks, strict=True):
        gray, ref = cases[rec["case_id"]].load()
        prompt = Prompt.from_dict(rec[key]["inputs"][0])
        pred = predictor.predict(gray, prompt)
        ax.imshow(gray, cmap="gray")
        ax.contour(ref, levels=[0.5], colors="lime", linewidths=1)
        if pred.mask.any():
            ax.contour(pred.mask, levels=[0.5], colors="red", linewidths=1)
        if prompt.box is not None:
            x0, y0, x1, y1 = prompt.box.to_list()
            ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, color="yellow", lw=0.8))
        for c in prompt.clicks:
            ax.plot(c.x, c.y, "+" if c.positive else "x", color="cyan" if c.positive else "orange", ms=8)
        ax.set_title(
            f"{which}: {rec['case_id']} ({rec['label']})\ninput 1 JI {100 * rec[key]['ji'][0]:.1f}%, "
            f"image mean {100 * rec[key]['mean_ji']:.1f}%",
            fontsize=8,
        )
        ax.axis("off")
    fig.suptitle(f"{mode_label(key)}: reference (green), model (red)", fontsize=10)
    return _save(fig, path)
