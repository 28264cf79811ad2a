"""Agreement in a review session, and its export (``liverclick review export``, the organiser's view).

A reviewer's answer for a case is their latest record of it. Per reviewer: progress; agreement with the model
(their class against the model's first class, the Jaccard index of their final outline against the model's
first outline); against the reference where the worklist gave one. Per pair of reviewers, on the cases both
reviewed: the share of equal classes, Cohen's kappa, and the mean Jaccard index of their outlines. The model's
first answers against the reference close the report.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from pathlib import Path

import numpy as np

from core.metrics import cohen_kappa, jaccard

from ..feedback.record import FeedbackRecord
from .worklist import ReviewSession, StoredCase, Worklists

DISCLAIMER = "Research tool, not for diagnosis: agreement among reviewers of a research model."
REVIEW_COLUMNS = (
    "session", "position", "case", "reviewer", "record", "reviewer_class", "model_class", "reference_class",
    "accepted", "outline_rating", "jaccard_with_model", "jaccard_with_reference", "reviewed_at",
)  # fmt: skip


def latest_reviews(worklists: Worklists, session: ReviewSession) -> dict[tuple[str, int], FeedbackRecord]:
    """(reviewer, case id) -> the reviewer's latest record of the case."""
    latest: dict[tuple[str, int], FeedbackRecord] = {}
    for record in worklists.store.iter_records(images=False, session_id=session.id):
        latest[record.reviewer, record.case_id] = record  # id order: a later record replaces an earlier one
    return latest


def agreement_report(worklists: Worklists, session: ReviewSession) -> tuple[dict, list[dict]]:
    """The session's agreement report (JSON-ready) and its rows, one per reviewer and case reviewed."""
    cases = {c.id: c for c in worklists.cases(session)}
    latest = latest_reviews(worklists, session)
    rows = [_row(session, cases[case_id], record) for (_, case_id), record in sorted(latest.items())]
    reviewers = [_reviewer(session, name, [r for r in rows if r["reviewer"] == name]) for name in session.reviewers]
    pairs = [_pair(a, b, latest, cases) for a, b in itertools.combinations(session.reviewers, 2)]
    referenced = [c for c in cases.values() if c.reference_mask is not None or c.reference_label]
    outlined = [c for c in referenced if c.reference_mask is not None]
    model = {
        "cases": len(referenced),
        "labelled": sum(1 for c in referenced if c.reference_label),
        "outlined": len(outlined),
        "class_accuracy": _mean([c.model_class == c.reference_label for c in referenced if c.reference_label]),
        "outline_jaccard": _mean([jaccard(c.model_mask, c.reference_mask) for c in outlined]),
    }
    report = {
        "notice": DISCLAIMER,
        "session": session.name,
        "model": f"{session.model_name} {session.model_version}",
        "ordering": session.ordering,
        "cases": session.size,
        "reviewers": reviewers,
        "pairs": pairs,
        "model_vs_reference": model,
    }
    return report, rows


def _row(session: ReviewSession, case: StoredCase, record: FeedbackRecord) -> dict:
    reference = case.reference_mask
    return {
        "session": session.name,
        "position": case.position + 1,
        "case": case.key,
        "reviewer": record.reviewer,
        "record": record.id,
        "reviewer_class": record.reference_class,
        "model_class": case.model_class,
        "reference_class": case.reference_label or "",
        "accepted": int(record.accepted),
        "outline_rating": record.outline_rating,
        "jaccard_with_model": round(jaccard(record.mask, case.model_mask), 4),
        "jaccard_with_reference": "" if reference is None else round(jaccard(record.mask, reference), 4),
        "reviewed_at": record.created_at,
    }


def _reviewer(session: ReviewSession, name: str, rows: list[dict]) -> dict:
    with_label = [r for r in rows if r["reference_class"]]
    with_mask = [r for r in rows if r["jaccard_with_reference"] != ""]
    return {
        "reviewer": name,
        "reviewed": len(rows),
        "progress": len(rows) / session.size if session.size else None,
        "accepted": sum(r["accepted"] for r in rows),
        "mean_outline_rating": _mean([r["outline_rating"] for r in rows]),
        "class_agreement_with_model": _mean([r["reviewer_class"] == r["model_class"] for r in rows]),
        "outline_jaccard_with_model": _mean([r["jaccard_with_model"] for r in rows]),
        "classes_with_reference": len(with_label),
        "outlines_with_reference": len(with_mask),
        "class_accuracy_against_reference": _mean([r["reviewer_class"] == r["reference_class"] for r in with_label]),
        "outline_jaccard_against_reference": _mean([r["jaccard_with_reference"] for r in with_mask]),
    }


def _pair(a: str, b: str, latest: dict, cases: dict[int, StoredCase]) -> dict:
    shared = sorted(case for (who, case) in latest if who == a and (b, case) in latest)
    classes_a = [latest[a, c].reference_class for c in shared]
    classes_b = [latest[b, c].reference_class for c in shared]
    kappa = cohen_kappa(classes_a, classes_b)
    return {
        "a": a,
        "b": b,
        "shared_cases": len(shared),
        "class_agreement": _mean([x == y for x, y in zip(classes_a, classes_b, strict=True)]),
        "kappa": None if math.isnan(kappa) else round(kappa, 4),
        "outline_jaccard": _mean([jaccard(latest[a, c].mask, latest[b, c].mask) for c in shared]),
    }


def _mean(values: list) -> float | None:
    return round(float(np.mean(values)), 4) if values else None


# --- writing ---------------------------------------------------------------------------------------------------
def write_export(report: dict, rows: list[dict], out: Path) -> list[Path]:
    """``reviews.csv`` (a row per reviewer and case), ``agreement.csv``, ``agreement.md`` and ``agreement.json``."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "reviews.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=REVIEW_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    with open(out / "agreement.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["kind", "who", "measure", "value"])
        for reviewer in report["reviewers"]:
            writer.writerows(
                ["reviewer", reviewer["reviewer"], k, _cell(v)] for k, v in reviewer.items() if k != "reviewer"
            )
        for pair in report["pairs"]:
            who = f"{pair['a']} / {pair['b']}"
            writer.writerows(["pair", who, k, _cell(v)] for k, v in pair.items() if k not in ("a", "b"))
        writer.writerows(["model", report["model"], k, _cell(v)] for k, v in report["model_vs_reference"].items())
    (out / "agreement.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (out / "agreement.md").write_text(agreement_markdown(report), encoding="utf-8")
    return [out / n for n in ("reviews.csv", "agreement.csv", "agreement.md", "agreement.json")]


def agreement_markdown(report: dict) -> str:
    """The report as Markdown tables (the organiser's view shows the same)."""
    lines = [
        f"# Review session {report['session']}",
        "",
        f"*{report['notice']}*",
        "",
        f"{report['cases']} cases, {report['ordering']} order; model {report['model']}.",
        "",
        "| Reviewer | Reviewed | Accepted | Class = model | Jaccard with model | Class = reference "
        "| Jaccard with reference |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["reviewers"]:
        lines.append(
            f"| {r['reviewer']} | {r['reviewed']} of {report['cases']} | {r['accepted']} | "
            f"{_pct(r['class_agreement_with_model'], r['reviewed'])} | {_num(r['outline_jaccard_with_model'])} | "
            f"{_pct(r['class_accuracy_against_reference'], r['classes_with_reference'])} | "
            f"{_num(r['outline_jaccard_against_reference'])} |"
        )
    lines += [
        "",
        "| Reviewers | Shared cases | Same class | Cohen's kappa | Outline Jaccard |",
        "|---|---|---|---|---|",
    ]
    for p in report["pairs"]:
        lines.append(
            f"| {p['a']} / {p['b']} | {p['shared_cases']} | {_pct(p['class_agreement'], p['shared_cases'])} | "
            f"{_num(p['kappa'])} | "
            f"{_num(p['outline_jaccard'])} |"
        )
    m = report["model_vs_reference"]
    lines += [
        "",
        f"The model's first answers against the reference ({m['cases']} cases with one): class accuracy "
        f"{_pct(m['class_accuracy'], m['labelled'])}, outline Jaccard {_num(m['outline_jaccard'])} "
        f"({m['outlined']} with a reference outline).",
        "",
    ]
    return "\n".join(lines)


def _cell(value) -> str:
    return "" if value is None else str(value)


def _pct(value: float | None, n: int) -> str:
    """A share with its denominator: "100% (1 of 1)"."""
    return "–" if value is None or not n else f"{value:.0%} ({round(value * n)} of {n})"


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"
