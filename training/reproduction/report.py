"""``liverclick reproduce-report DIR``: the run folder's reports -> the summary across seeds (JSON), the paper's
Tables 1-2 beside the paper's figures with a verdict in words (Markdown, e.g. ``docs/reproduction.md``) and
the plots. Everything is read from the run folder, so the document is regenerated without training."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ..config import SYSTEMS
from ..evaluation.markdown import fmt_p, markdown_table
from . import write_json_atomic
from .plots import write_plots
from .recipe import run_section
from .summary import BY_KEY, Figure, summarize

SHORT = {"seg": "Seg only", "cls": "Cls only", "joint": "Joint"}
OTHER = {"seg": "segmentation-only", "cls": "classification-only"}
TABLES = (
    ("Table 1. Segmentation: mean Jaccard index per image (%)", ("ji_two_click", "ji_one_click")),
    ("Table 2. Benign vs malignant (two-click inputs)", ("auroc", "sensitivity", "specificity", "accuracy")),
    ("Table 2b. Multi-class (two-click inputs)", ("auroc_multi", "accuracy_multi")),
)
VERDICTS = ("holds", "holds in direction only", "mixed", "does not hold")


def load_reports(run_dir: Path, seeds) -> dict[int, dict[str, dict]]:
    """``reports[seed][system]`` for every report the run folder holds."""
    out: dict[int, dict[str, dict]] = {}
    for seed in seeds:
        for system in SYSTEMS:
            path = run_dir / f"seed{seed}" / f"{system}.json"
            if path.exists():
                out.setdefault(seed, {})[system] = json.loads(path.read_text(encoding="utf-8"))
    return out


def write_report(
    run_dir: Path, markdown: Path | None = None, plots: Path | None = None, summary_json: Path | None = None
) -> dict[str, Path]:
    """Summarise the run folder across seeds; write the JSON summary, the Markdown and the plots (by default
    into the run folder). Returns the paths written, by kind."""
    run_dir = Path(run_dir)
    markdown = Path(markdown or run_dir / "reproduction.md")
    plots = Path(plots or run_dir / "plots")
    summary_json = Path(summary_json or run_dir / "summary.json")
    record = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    summary = summarize(load_reports(run_dir, record["seeds"]), record["settings"]["bootstrap"])
    written = write_plots(summary, plots)
    regenerate = f"liverclick reproduce-report {run_dir} --markdown {markdown} --plots {plots}"
    links = [os.path.relpath(p, markdown.parent) for p in written]
    markdown.parent.mkdir(parents=True, exist_ok=True)
    markdown.write_text(reproduction_markdown(record, summary, run_dir, regenerate, links), encoding="utf-8")
    write_json_atomic(summary, summary_json)
    return {"markdown": markdown, "summary": summary_json, **{p.stem: p for p in written}}


def fmt(fig: Figure, x: float | None, signed: bool = False) -> str:
    if x is None:
        return "–"
    v = 100 * x if fig.percent else x
    return f"{v:+.{1 if fig.percent else 3}f}" if signed else f"{v:.{1 if fig.percent else 3}f}"


def fmt_ci(fig: Figure, ci, signed: bool = False) -> str:
    return "" if not ci or ci[0] is None else f" ({fmt(fig, ci[0], signed)}, {fmt(fig, ci[1], signed)})"


def fmt_spread(fig: Figure, s: dict, signed: bool = False) -> str:
    """``mean ± SD (min to max)`` across seeds."""
    if s["sd"] is None:
        return fmt(fig, s["mean"], signed)
    sd = fmt(fig, s["sd"])
    return f"{fmt(fig, s['mean'], signed)} ± {sd} ({fmt(fig, s['min'], signed)} to {fmt(fig, s['max'], signed)})"


def fmt_signs(d: dict) -> str:
    return (
        f"higher {d['higher']}/{d['n']} ({d['significant_higher']} sig.), "
        f"lower {d['lower']}/{d['n']} ({d['significant_lower']} sig.)"
    )


def _value_cell(fig: Figure, v: dict) -> str:
    sd = f" ± {fmt(fig, v['sd'])}" if v.get("sd") is not None else ""
    return fmt(fig, v["value"]) + sd + fmt_ci(fig, v["ci95"])


def table_markdown(title: str, keys, summary: dict) -> list[str]:
    """One of the paper's tables: across seeds beside the paper's figures, then each seed with CIs and tests."""
    present = [(BY_KEY[k], summary["figures"][k]) for k in keys if k in summary["figures"]]
    if not present:
        return []
    versus = present[0][0].versus
    v_name, n = SHORT[versus], len(summary["seeds"])
    rows = [
        [
            fig.label,
            fmt_spread(fig, f["across_seeds"][versus]),
            fmt_spread(fig, f["across_seeds"]["joint"]),
            fmt_spread(fig, f["difference"], signed=True),
            fmt_signs(f["difference"]),
            f["paper"].get(versus, "–"),
            f["paper"].get("joint", "–"),
            f["paper"].get("p", "–"),
            f["verdict"],
        ]
        for fig, f in present
    ]
    lines = [f"## {title}", "", f"Across {n} seed{'s' * (n != 1)}: mean ± SD (range) of the seeds' figures.", ""]
    lines += markdown_table(
        ["", v_name, "Joint", f"Joint − {v_name.lower()}", "Seeds", f"Paper: {v_name.lower()}", "Paper: joint"]
        + ["Paper p", "Paper's finding here"],
        rows,
    )
    per_seed = [
        [
            str(r["seed"]),
            fig.label,
            _value_cell(fig, r[versus]),
            _value_cell(fig, r["joint"]),
            fmt(fig, r["difference"]["difference"], signed=True) + fmt_ci(fig, r["difference"].get("ci95"), True),
            r["difference"]["test"],
            fmt_p(r["difference"]["p"]),
        ]
        for fig, f in present
        for r in f["per_seed"]
    ]
    sd = " (Jaccard: mean ± SD over images)" if versus == "seg" else ""
    lines += [f"Per seed, with 95% CIs{sd} and the paired test of joint against {OTHER[versus]}:", ""]
    lines += markdown_table(
        ["Seed", "", f"{v_name} (95% CI)", "Joint (95% CI)", "Joint − " + v_name.lower()] + ["Test", "p"],
        sorted(per_seed, key=lambda r: int(r[0])),
    )
    return lines


def figure_sentence(fig: Figure, f: dict) -> str:
    d, unit = f["difference"], " points" if fig.percent else ""
    spread = (
        ""
        if d["sd"] is None
        else f" (SD {fmt(fig, d['sd'])}, range {fmt(fig, d['min'], True)} to {fmt(fig, d['max'], True)})"
    )
    return (
        f"- **{fig.label}: {f['verdict']}.** Joint minus {OTHER[fig.versus]} {fmt(fig, d['mean'], True)}{unit} on "
        f"average{spread}; joint higher in {d['higher']} of {d['n']} seed{'s' * (d['n'] != 1)} "
        f"({d['significant_higher']} significantly), lower in {d['lower']} ({d['significant_lower']} significantly)."
    )


def _grouped(figs: list[tuple[Figure, dict]]) -> str:
    parts = []
    for status in VERDICTS:
        names = [f"*{fig.label}*" for fig, f in figs if f["verdict"] == status]
        if names:
            listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
            parts.append(f"{status} for {listed}")
    return "; ".join(parts)


def verdict_markdown(summary: dict, record: dict) -> list[str]:
    """The verdict in words, from the numbers: per part of the paper's finding, then per figure."""
    figs = [(BY_KEY[k], f) for k, f in summary["figures"].items()]
    n, data = len(summary["seeds"]), summary["data"]
    held = sum(f["verdict"] == "holds" for _, f in figs)
    labels = ", ".join(f"{k} {v}" for k, v in data["labels"].items())
    lines = [
        "## Verdict",
        "",
        f"On the {data['n_images']} test images of `{record['data']}` ({labels}), across {n} "
        f"seed{'s' * (n != 1)}, the paper's finding holds for {held} of {len(figs)} figures.",
        "",
    ]
    for versus, claim in (("seg", "segments as well as or better than"), ("cls", "classifies better than")):
        part = [(fig, f) for fig, f in figs if fig.versus == versus]
        if part:
            lines.append(f"- The joint system {claim} {OTHER[versus]}: {_grouped(part)}.")
    lines += ["", "Per figure:", ""] + [figure_sentence(fig, f) for fig, f in figs]
    lines += [
        "",
        "A figure *holds* when the joint system is higher than classification-only in every seed and "
        "significantly (p < 0.05) in most, or, for segmentation, is never significantly below segmentation-only "
        "and higher in at least as many seeds as lower; *holds in direction only* when it is higher in every seed "
        "but not significantly in most; *mixed* when the seeds disagree; *does not hold* otherwise. Each seed's "
        "test is paired on the same test images and inputs; the seeds differ in training and in the simulated "
        "inputs, so agreement across seeds says whether a difference is larger than training noise"
        + (". With fewer than three seeds that agreement says little." if n < 3 else "."),
        "",
        "The paper's figures are from private liver ultrasound at the paper's size; these runs are on other "
        "data at the size given below (*What this run changes*), so they test whether the paper's finding carries "
        "over, not the paper's own numbers.",
        "",
    ]
    if summary["incomplete_seeds"]:
        missing = "; ".join(f"seed {s}: {', '.join(m)}" for s, m in summary["incomplete_seeds"].items())
        lines += [f"Not yet in these figures (reports missing): {missing}.", ""]
    return lines


def reproduction_markdown(record: dict, summary: dict, run_dir: Path, regenerate: str, plots: list[str]) -> str:
    """The whole document: verdict, the paper's tables across seeds and per seed, plots, the run and its recipe."""
    lines = [
        "# Does joint training help? Ryu et al. 2021, Tables 1–2, reproduced",
        "",
        "Research tool, not for diagnosis. Generated from the run folder "
        f"`{run_dir}` by `{regenerate}`: edit the code, not this file.",
        "",
    ]
    lines += verdict_markdown(summary, record)
    for title, keys in TABLES:
        lines += table_markdown(title, keys, summary)
    if plots:
        lines += ["## Plots", ""] + [f"![{Path(p).stem.replace('_', ' ')}]({p})" for p in plots] + [""]
    lines += run_section(record, summary)
    return "\n".join(lines) + "\n"
