"""Plots of a reproduction (matplotlib's object API, Agg): each system's figure per seed with its 95% CI and the
mean across seeds, the paper's value beside; and each difference (joint minus the single-task system) per seed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure as Canvas

from ..config import SYSTEMS
from .summary import FIGURES

COLOURS = {"seg": "C0", "cls": "C1", "joint": "C2"}
OFFSET = {"seg": -0.12, "cls": -0.12, "joint": 0.12}


def _panels(n: int) -> tuple[Canvas, list]:
    cols = min(3, n)
    rows = -(-n // cols)
    fig = Canvas(figsize=(4.2 * cols, 3.4 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, list(axes[:n])


def _save(fig: Canvas, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _paper_value(text: str | None) -> float | None:
    """The leading number of the paper's figure as the report prints it ('70.0 ± 10.9', '0.970 (0.956, ...)')."""
    return float(text.split()[0]) if text else None


def write_plots(summary: dict, out_dir: Path) -> list[Path]:
    """``systems_by_seed.png`` and ``differences_by_seed.png`` in ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    figs = [(f, summary["figures"][f.key]) for f in FIGURES if f.key in summary["figures"]]
    return [
        systems_plot(figs, out_dir / "systems_by_seed.png"),
        differences_plot(figs, out_dir / "differences_by_seed.png"),
    ]


def systems_plot(figs: list, path: Path) -> Path:
    """Per figure: each seed's value of the two systems compared, with its 95% CI; the mean ± SD across seeds
    at the right; the paper's values dashed."""
    canvas, axes = _panels(len(figs))
    for ax, (fig, f) in zip(axes, figs, strict=True):
        scale = 100 if fig.percent else 1
        seeds = [r["seed"] for r in f["per_seed"]]
        for system in (fig.versus, "joint"):
            x = np.arange(len(seeds)) + OFFSET[system]
            values = np.array([r[system]["value"] for r in f["per_seed"]]) * scale
            ci = np.array([[np.nan if c is None else c for c in r[system]["ci95"]] for r in f["per_seed"]])
            err = np.abs(ci.T * scale - values)
            ax.errorbar(x, values, yerr=err, fmt="o", color=COLOURS[system], capsize=3, label=SYSTEMS[system])
            s = f["across_seeds"][system]
            ax.errorbar(
                len(seeds) + OFFSET[system],
                s["mean"] * scale,
                yerr=(s["sd"] or 0) * scale,
                fmt="D",
                color=COLOURS[system],
                mfc="white",
                capsize=3,
            )
            paper = _paper_value(f["paper"].get(system))
            if paper is not None:
                ax.axhline(paper, color=COLOURS[system], ls="--", lw=1, alpha=0.7)
        ax.set_xticks(range(len(seeds) + 1), [f"seed {s}" for s in seeds] + ["mean ± SD"])
        ax.set(title=fig.label, ylabel="%" if fig.percent else "AUROC")
        ax.legend(fontsize=7, loc="lower right")
    canvas.suptitle("Per seed with 95% CIs; dashed: the paper (liver data)", fontsize=9)
    return _save(canvas, path)


def differences_plot(figs: list, path: Path) -> Path:
    """Per figure: joint minus the single-task system per seed (filled: p < 0.05; bars: DeLong's CI for AUROC)."""
    canvas, axes = _panels(len(figs))
    for ax, (fig, f) in zip(axes, figs, strict=True):
        scale = 100 if fig.percent else 1
        for i, r in enumerate(f["per_seed"]):
            d = r["difference"]
            ci = d.get("ci95")
            err = None if not ci else [[(d["difference"] - ci[0]) * scale], [(ci[1] - d["difference"]) * scale]]
            significant = d["p"] is not None and d["p"] < 0.05
            ax.errorbar(
                i,
                d["difference"] * scale,
                yerr=err,
                fmt="o",
                color="C3",
                capsize=3,
                mfc="C3" if significant else "white",
            )
        s = f["difference"]
        n = len(f["per_seed"])
        ax.errorbar(n, s["mean"] * scale, yerr=(s["sd"] or 0) * scale, fmt="D", color="k", mfc="white", capsize=3)
        ax.axhline(0, color="0.6", lw=1)
        ax.set_xticks(range(n + 1), [f"seed {r['seed']}" for r in f["per_seed"]] + ["mean ± SD"])
        unit = "points" if fig.percent else "AUROC"
        ax.set(title=f"{fig.label}: joint − {fig.versus}", ylabel=unit)
    canvas.suptitle("Joint minus the single-task system; filled: p < 0.05 (paired test)", fontsize=9)
    return _save(canvas, path)
