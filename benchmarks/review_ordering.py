"""How much reviewer time the most-uncertain-first order saves: cases reviewed until the first N model errors.

For every lesion of a manifest split, the model's first answer to one click at the reference mask's deepest
point (as a review session without prompts starts) and its uncertainty (webapp.review.ordering). An error is a
wrong class (the most likely class is not the label), a poor outline (Jaccard with the reference below
--poor), or either. For N = 1, 5, 10, ... errors: how many cases a reviewer works through before the N-th
error, in the uncertainty order against random orders (the mean and the 5-95 % range over --seeds orders);
also with the class part or the outline part of the uncertainty alone.

    python benchmarks/review_ordering.py --model default --manifest data/busi/manifest.csv --split test \
        --out docs/evaluation/review_ordering_busi.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from core.benchmark import machine_description
from core.manifest import read_manifest
from core.metrics import jaccard
from core.prompt import Prompt
from core.runtime import load_model
from webapp.review.cases import deepest_point
from webapp.review.ordering import first_answer


def cases_until(errors: np.ndarray, order: np.ndarray, n: int) -> int | None:
    """Cases reviewed, in ``order``, until the n-th error is found (None: there are fewer)."""
    found = np.cumsum(errors[order])
    hit = np.nonzero(found >= n)[0]
    return int(hit[0]) + 1 if len(hit) else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="default")
    ap.add_argument("--manifest", type=Path, required=True)
    ap.add_argument("--split", default="test")
    ap.add_argument("--poor", type=float, default=0.5, help="an outline below this Jaccard is an error")
    ap.add_argument("--seeds", type=int, default=1000, help="random orders to average over")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    model = load_model(args.model, "cpu")
    cases, _ = read_manifest(args.manifest, split=args.split, labels=model.spec.class_names)
    rows, start = [], time.perf_counter()
    for i, case in enumerate(tqdm(cases, desc="first answers", unit="case")):
        pixels, mask = case.load()
        answer = first_answer(model, model.prepare(pixels), Prompt().add_click(*deepest_point(mask)), seed=(0, i))
        rows.append(
            {
                "case": case.case_id,
                "label": case.label,
                "predicted": answer.predicted_class,
                "jaccard": jaccard(answer.mask, mask),
                "class_uncertainty": answer.class_uncertainty,
                "outline_instability": answer.outline_instability,
                "uncertainty": answer.uncertainty,
            }
        )
    took = time.perf_counter() - start
    wrong_class = np.array([r["predicted"] != r["label"] for r in rows])
    poor = np.array([r["jaccard"] < args.poor for r in rows])
    errors = {"wrong class": wrong_class, "poor outline": poor, "either": wrong_class | poor}
    scores = {k: np.array([r[k] for r in rows]) for k in ("uncertainty", "class_uncertainty", "outline_instability")}
    rng = np.random.default_rng(0)
    randoms = [rng.permutation(len(rows)) for _ in range(args.seeds)]
    report = {
        "model": f"{model.name} {model.version}",
        "manifest": str(args.manifest),
        "split": args.split,
        "cases": len(rows),
        "poor_outline_below": args.poor,
        "seconds": round(took, 1),
        "machine": machine_description(),
        "results": {},
    }
    print(f"\n{len(rows)} cases of {args.manifest} ({args.split}), {model.name} {model.version}, {took:.0f} s")
    for kind, err in errors.items():
        total = int(err.sum())
        table = []
        for n in sorted({1, 5, 10, 20, total // 2, total} - {0}):
            if n > total:
                continue
            line = {"errors": n}
            for name, score in scores.items():
                line[name] = cases_until(err, np.argsort(-score, kind="stable"), n)
            found = [cases_until(err, order, n) for order in randoms]
            line["random_mean"] = round(float(np.mean(found)), 1)
            line["random_5_95"] = [int(np.percentile(found, 5)), int(np.percentile(found, 95))]
            table.append(line)
        report["results"][kind] = {"errors": total, "until": table}
        print(f"\n{kind}: {total} of {len(rows)} cases")
        print("  errors found | uncertainty | class only | outline only | random (mean, 5-95 %)")
        for line in table:
            print(
                f"  {line['errors']:>12} | {line['uncertainty']:>11} | {line['class_uncertainty']:>10} | "
                f"{line['outline_instability']:>12} | {line['random_mean']:>6} ({line['random_5_95'][0]}-"
                f"{line['random_5_95'][1]})"
            )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({**report, "cases_detail": rows}, indent=2) + "\n")
        print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
