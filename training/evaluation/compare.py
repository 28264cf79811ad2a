"""Paired tests of two reports on the same images (``liverclick compare``): Wilcoxon signed-rank for
Jaccard, DeLong for AUROC, McNemar for accuracy, a paired bootstrap for the macro AUROC."""

from __future__ import annotations

import numpy as np

from ..clicks import mode_label
from . import stats
from .markdown import fmt_p, fmt_pct, markdown_table
from .summary import benign_malignant


class ReportMismatch(ValueError):
    """Two reports that cannot be paired (different test sets)."""


def _paired_records(a: dict, b: dict) -> tuple[list[dict], list[dict]]:
    """The two reports' per-image records in the same order; ReportMismatch unless the test sets agree."""
    ra = {r["case_id"]: r for r in a["images"]}
    rb = {r["case_id"]: r for r in b["images"]}
    only_a, only_b = sorted(set(ra) - set(rb)), sorted(set(rb) - set(ra))
    if only_a or only_b:
        raise ReportMismatch(
            f"the reports are on different test sets ({len(ra)} and {len(rb)} images; {len(only_a)} only in the "
            f"first, e.g. {only_a[:3]}, {len(only_b)} only in the second, e.g. {only_b[:3]}): paired tests need "
            "the same images. Evaluate both models on the same manifest, split and --limit."
        )
    relabelled = [i for i in ra if ra[i]["label"] != rb[i]["label"]]
    if relabelled:
        raise ReportMismatch(f"the reports label {len(relabelled)} images differently, e.g. {relabelled[:3]}")
    ids = [r["case_id"] for r in a["images"]]
    return [ra[i] for i in ids], [rb[i] for i in ids]


def compare_reports(a: dict, b: dict, n_boot: int = 2000, seed: int = 0) -> dict:
    """Paired tests of report ``a`` against ``b`` on the same images: Wilcoxon signed-rank for Jaccard,
    DeLong for AUROC, McNemar for accuracy (and for sensitivity / specificity at each Youden point),
    and a paired bootstrap for the macro AUROC of multi-class models."""
    ra, rb = _paired_records(a, b)
    out: dict = {
        "a": {k: a["model"].get(k) for k in ("name", "version", "path")},
        "b": {k: b["model"].get(k) for k in ("name", "version", "path")},
        "n_images": len(ra),
        "segmentation": {},
        "classification": {},
        "notes": [],
    }
    pa_, pb_ = a["protocol"], b["protocol"]
    if (pa_["seed"], pa_["inputs_per_image"]) != (pb_["seed"], pb_["inputs_per_image"]):
        out["notes"].append("the reports used different seeds or numbers of inputs: images are paired, inputs are not")
    for key in ("two_click", "one_click"):
        if key in a["segmentation"] and key in b["segmentation"]:
            ja, jb = [r[key]["mean_ji"] for r in ra], [r[key]["mean_ji"] for r in rb]
            out["segmentation"][key] = {
                "a": float(np.mean(ja)),
                "b": float(np.mean(jb)),
                "test": "Wilcoxon signed-rank",
                **stats.wilcoxon_paired(ja, jb),
            }
    bma, bmb = benign_malignant(a["classification"]), benign_malignant(b["classification"])
    if bma and bmb and bma["threshold"] is not None and bmb["threshold"] is not None:
        y = np.array([r["malignant"] for r in ra], bool)
        sa = np.array([r["classification"]["malignant_prob"] for r in ra])
        sb = np.array([r["classification"]["malignant_prob"] for r in rb])
        ca, cb = (sa >= bma["threshold"]) == y, (sb >= bmb["threshold"]) == y
        out["classification"]["benign_malignant"] = {
            "auroc": {"test": "DeLong, paired", **stats.delong_test(y, sa, sb)},
            **{
                name: {
                    "a": float(ca[sel].mean()),
                    "b": float(cb[sel].mean()),
                    "test": "McNemar",
                    **stats.mcnemar(ca[sel], cb[sel]),
                }
                for name, sel in (("sensitivity", y), ("specificity", ~y), ("accuracy", np.ones_like(y)))
                if sel.any()
            },
        }
    ma, mb = a["classification"], b["classification"]
    if ma and mb and ma["task"] != "benign/malignant" and ma["class_names"] == mb["class_names"]:
        out["classification"]["multi_class"] = _compare_multiclass(ra, rb, ma["class_names"], n_boot, seed)
    return out


def _compare_multiclass(ra: list[dict], rb: list[dict], names, n_boot: int, seed: int) -> dict:
    true = np.array([r["true_class"] for r in ra])
    pa = np.array([r["classification"]["class_probs"] for r in ra])
    pb = np.array([r["classification"]["class_probs"] for r in rb])

    def macro_difference(idx):
        return stats.one_vs_rest_auroc(true[idx], pa[idx])[1] - stats.one_vs_rest_auroc(true[idx], pb[idx])[1]

    ca, cb = pa.argmax(axis=1) == true, pb.argmax(axis=1) == true
    return {
        "auroc_macro": {
            "a": stats.one_vs_rest_auroc(true, pa)[1],
            "b": stats.one_vs_rest_auroc(true, pb)[1],
            "test": f"paired bootstrap ({n_boot} resamples within classes)",
            "p": stats.paired_bootstrap_test(macro_difference, len(true), n_boot, seed, strata=true),
        },
        "auroc_per_class": {
            n: {"test": "DeLong, paired", **stats.delong_test(true == k, pa[:, k], pb[:, k])}
            for k, n in enumerate(names)
            if 0 < (true == k).sum() < len(true)
        },
        "accuracy": {"a": float(ca.mean()), "b": float(cb.mean()), "test": "McNemar", **stats.mcnemar(ca, cb)},
    }


def compare_markdown(result: dict) -> str:
    """The paired comparison as a Markdown table (A vs B, difference, test, p)."""
    a, b = result["a"], result["b"]
    lines = [
        f"# {a['name']} {a['version']} (A) vs {b['name']} {b['version']} (B)",
        "",
        f"{result['n_images']} paired images. " + " ".join(result["notes"]),
        "",
    ]
    rows = []
    for key, s in result["segmentation"].items():
        rows.append(
            [
                f"Mean JI, {mode_label(key)} (%)",
                fmt_pct(s["a"]),
                fmt_pct(s["b"]),
                f"{100 * (s['a'] - s['b']):+.1f}",
                s["test"],
                fmt_p(s["p"]),
            ]
        )
    bm = result["classification"].get("benign_malignant")
    if bm:
        t = bm["auroc"]
        rows.append(
            [
                "AUROC, benign/malignant",
                f"{t['auroc_a']:.3f}",
                f"{t['auroc_b']:.3f}",
                f"{t['difference']:+.3f} ({t['ci95'][0]:+.3f}, {t['ci95'][1]:+.3f})",
                t["test"],
                fmt_p(t["p"]),
            ]
        )
        for name in ("sensitivity", "specificity", "accuracy"):
            if name in bm:
                s = bm[name]
                rows.append(
                    [
                        f"{name.capitalize()}, benign/malignant (%)",
                        fmt_pct(s["a"]),
                        fmt_pct(s["b"]),
                        f"{100 * (s['a'] - s['b']):+.1f}",
                        f"{s['test']} ({s['method']})",
                        fmt_p(s["p"]),
                    ]
                )
    mc = result["classification"].get("multi_class")
    if mc:
        t = mc["auroc_macro"]
        rows.append(
            ["AUROC, macro", f"{t['a']:.3f}", f"{t['b']:.3f}", f"{t['a'] - t['b']:+.3f}", t["test"], fmt_p(t["p"])]
        )
        for n, t in mc["auroc_per_class"].items():
            rows.append(
                [
                    f"AUROC, {n} vs rest",
                    f"{t['auroc_a']:.3f}",
                    f"{t['auroc_b']:.3f}",
                    f"{t['difference']:+.3f}",
                    t["test"],
                    fmt_p(t["p"]),
                ]
            )
        s = mc["accuracy"]
        rows.append(
            [
                "Accuracy, argmax (%)",
                fmt_pct(s["a"]),
                fmt_pct(s["b"]),
                f"{100 * (s['a'] - s['b']):+.1f}",
                f"{s['test']} ({s['method']})",
                fmt_p(s["p"]),
            ]
        )
    lines += markdown_table(["", "A", "B", "A − B", "Test", "p"], rows)
    return "\n".join(lines) + "\n"
