"""The paper's comparison matrix in one command:
``liverclick reproduce --data MANIFEST.csv --out DIR [--config BASE.yaml] [key=value ...]``.

Trains the three systems (segmentation only, classification only, joint) from one base config, evaluates
each on the test split with the paper's protocol, and writes the paper's tables side by side with paired
p-values (Wilcoxon for Jaccard, DeLong for AUROC, McNemar for accuracy) and the paper's own figures for
reference. Binary data gives the benign/malignant tables; 4-class data the full matrix. Each training run
resumes from its folder, so an interrupted reproduction continues where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.manifest import read_manifest

from .checkpoint import load_predictor
from .clicks import mode_label
from .config import SYSTEMS, TrainConfig
from .evaluation.compare import compare_reports
from .evaluation.markdown import fmt_auc, fmt_p, fmt_pct, markdown_table
from .evaluation.paper import PAPER
from .evaluation.protocol import evaluate, write_json
from .evaluation.summary import benign_malignant
from .train import train


def reproduce(
    data: Path, out: Path, base: Path | None, overrides: list[str], seed: int = 0, n_inputs: int = 5, noc: bool = True
) -> dict:
    """Train and evaluate the three systems; returns {system: report} plus the paired comparisons."""
    reports = {}
    for system in SYSTEMS:
        cfg = TrainConfig.load(base, [*overrides, f"system={system}", f"data={Path(data).resolve()}"])
        best = train(cfg, out / system)
        cases, _ = read_manifest(cfg.data, split="test", labels=tuple(cfg.classes))
        modes = ("two-click",) if system == "cls" else ("two-click", "one-click")
        report = evaluate(load_predictor(best), cases, modes, seed, n_inputs, noc and system != "cls", progress=True)
        report["model"]["system"] = SYSTEMS[system]
        write_json(report, out / f"{system}.json")
        reports[system] = report
    comparisons = {
        "joint_vs_seg": compare_reports(reports["joint"], reports["seg"]),
        "joint_vs_cls": compare_reports(reports["joint"], reports["cls"]),
    }
    (out / "comparisons.json").write_text(json.dumps(comparisons, indent=1) + "\n")
    (out / "tables.md").write_text(tables_markdown(reports, comparisons))
    return {"reports": reports, "comparisons": comparisons}


def tables_markdown(reports: dict, comparisons: dict) -> str:
    """Tables 1 and 2 of the paper for our data, with the paper's figures beside them."""
    seg = comparisons["joint_vs_seg"]["segmentation"]
    lines = [
        "# Reproduction of Ryu et al. 2021, Tables 1-2",
        "",
        "Our figures: the test split of the manifest, five simulated inputs per image; "
        "the paper's: private liver data (for reference, not comparable one-to-one).",
        "",
        "## Table 1. Segmentation, mean Jaccard index (%)",
        "",
    ]
    rows = []
    for key in ("two_click", "one_click"):
        if key in seg:
            s = seg[key]
            paper = {r[0]: r[1] for r in PAPER["segmentation"][key]}
            rows.append(
                [
                    mode_label(key),
                    fmt_pct(s["b"]),
                    fmt_pct(s["a"]),
                    fmt_p(s["p"]),
                    str(paper.get("segmentation only", "–")),
                    str(paper.get("joint, trained benign/malignant", paper.get("joint", "–"))),
                ]
            )
    lines += markdown_table(["Mode", "Seg only", "Joint", "p (Wilcoxon)", "Paper: seg only", "Paper: joint"], rows)
    cls = comparisons["joint_vs_cls"]["classification"].get("benign_malignant")
    bm = {s: benign_malignant(reports[s]["classification"]) for s in ("cls", "joint")}
    lines += ["", "## Table 2. Benign vs malignant (two-click inputs for the joint system)", ""]
    if cls and all(bm.values()):
        paper = PAPER["benign/malignant"]
        rows = [
            [
                "AUROC",
                fmt_auc(bm["cls"]["auroc"], bm["cls"]["auroc_ci95"]),
                fmt_auc(bm["joint"]["auroc"], bm["joint"]["auroc_ci95"]),
                fmt_p(cls["auroc"]["p"]),
                f"{paper['classification only']['auroc'][0]:.3f}",
                f"{paper['joint']['auroc'][0]:.3f}",
            ]
        ]
        for name in ("sensitivity", "specificity", "accuracy"):
            if name in cls:
                rows.append(
                    [
                        f"{name.capitalize()} (%)",
                        fmt_pct(cls[name]["b"]),
                        fmt_pct(cls[name]["a"]),
                        fmt_p(cls[name]["p"]),
                        f"{paper['classification only'][name][0]:.1f}",
                        f"{paper['joint'][name][0]:.1f}",
                    ]
                )
        lines += markdown_table(["", "Cls only", "Joint", "p", "Paper: cls only", "Paper: joint"], rows)
    else:
        lines.append("(not available: the test split lacks one of the classes)")
    mc = comparisons["joint_vs_cls"]["classification"].get("multi_class")
    if mc:
        paper = PAPER["multi-class"]
        lines += ["", "## Table 2b. Multi-class", ""]
        lines += markdown_table(
            ["", "Cls only", "Joint", "p", "Paper: cls only", "Paper: joint"],
            [
                [
                    "AUROC, macro",
                    f"{mc['auroc_macro']['b']:.3f}",
                    f"{mc['auroc_macro']['a']:.3f}",
                    fmt_p(mc["auroc_macro"]["p"]),
                    f"{paper['classification only']['auroc'][0]:.3f}",
                    f"{paper['joint']['auroc'][0]:.3f}",
                ],
                [
                    "Accuracy (%)",
                    fmt_pct(mc["accuracy"]["b"]),
                    fmt_pct(mc["accuracy"]["a"]),
                    fmt_p(mc["accuracy"]["p"]),
                    f"{paper['classification only']['accuracy'][0]:.1f}",
                    f"{paper['joint']['accuracy'][0]:.1f}",
                ],
            ],
        )
    return "\n".join(lines) + "\n"
