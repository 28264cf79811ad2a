"""``liverclick classifier --checkpoint CKPT --data MANIFEST --out DIR``: the classification head refitted on the
frozen network, its recipe chosen by repeated grouped cross-validation over the train and validation lesions,
calibrated out of fold.

Writes into DIR: ``features.npz`` (the cached pooled features; reused when present for the same checkpoint),
``crossval.json`` and ``crossval.md`` (every recipe's out-of-fold AUROC, the choice, the calibration),
``calibration.json`` (for ``liverclick export --calibration``), ``reliability.png`` and ``head.pt``: the checkpoint
with the chosen recipe refitted on all the lesions and installed as its head. The test split is not read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from core.cli import CommandError, set_command
from core.manifest import ManifestError, read_manifest


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "classifier", help="refit the classification head on the frozen network, chosen by grouped cross-validation"
    )
    p.add_argument("--checkpoint", type=Path, required=True, help="training checkpoint (.pt) of a joint network")
    p.add_argument("--data", type=Path, required=True, help="manifest CSV (its train and val splits are used)")
    p.add_argument("--out", type=Path, required=True, help="folder for the features, the report and head.pt")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% CIs")
    set_command(p, classifier_main)


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def classifier_main(args: argparse.Namespace) -> int:
    from ..checkpoint import TorchPredictor, load_checkpoint, save_checkpoint
    from ..config import TrainConfig
    from ..evaluation.plots import reliability_diagram
    from .crossval import calibrate, evaluate_recipes, fit
    from .features import FeatureSet, extract
    from .head import install_head

    if args.folds < 2 or args.repeats < 1:
        raise CommandError("--folds must be >= 2 and --repeats >= 1")
    try:
        cases, _ = read_manifest(args.data)
    except ManifestError as exc:
        raise CommandError(str(exc)) from None
    cases = [c for c in cases if c.split in ("train", "val")]
    net, cfg, spec, ckpt = load_checkpoint(args.checkpoint)
    if net.cls_head is None:
        raise CommandError(f"{args.checkpoint} is a {cfg.system} network without a classification head")
    args.out.mkdir(parents=True, exist_ok=True)
    cache, digest = args.out / "features.npz", file_digest(args.checkpoint)
    fs = FeatureSet.load(cache) if cache.exists() else None
    if fs is None or fs.source.get("checkpoint_sha256") != digest or fs.case_ids != [c.case_id for c in cases]:
        fs = extract(TorchPredictor(net, spec), cases)
        fs.source.update(checkpoint=str(args.checkpoint), checkpoint_sha256=digest)
        fs.save(cache)
    fs.splits = [c.split for c in cases]  # the manifest says which lesions the network was trained on
    print(f"{len(fs.features)} prompts of {len(cases)} lesions ({args.out / 'features.npz'})")

    report, chosen, oof = evaluate_recipes(fs, folds=args.folds, repeats=args.repeats, n_boot=args.bootstrap)
    calibration = calibrate(fs, oof, n_boot=args.bootstrap)
    lesions = np.arange(len(cases)) if chosen.with_seen else fs.unseen_lesions
    install_head(net, fit(fs, chosen, lesions))
    head = {"recipe": chosen.name, "fitted_on": f"{len(lesions)} train and validation lesions, every prompt kind"}
    save_checkpoint(
        args.out / "head.pt", net, TrainConfig(**ckpt["config"]), iteration=ckpt.get("iteration"), classifier=head
    )
    report.update(checkpoint=str(args.checkpoint), features=fs.source, head=head, calibration=calibration)
    (args.out / "crossval.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "calibration.json").write_text(json.dumps(calibration, indent=1) + "\n")
    (args.out / "crossval.md").write_text(crossval_markdown(report))
    reliability_diagram({"calibration": {"per_image": calibration["per_image_after"]}}, args.out / "reliability.png")
    best = next(r for r in report["recipes"] if r["recipe"] == chosen.name)
    print(
        f"chosen: {chosen.name}: out-of-fold AUROC {best['auroc_mean']:.3f} (SD {best['auroc_sd']:.3f} over "
        f"{args.repeats} repeats); temperature {calibration['temperature']:.3f}, per-image ECE "
        f"{calibration['per_image_before']['ece']:.3f} -> {calibration['per_image_after']['ece']:.3f}"
    )
    print(f"wrote {args.out}/head.pt, calibration.json, crossval.json, crossval.md, reliability.png")
    return 0


def crossval_markdown(report: dict) -> str:
    """The recipes' table, the choice and the calibration, for docs/experiments.md."""
    cal = report["calibration"]
    lines = [
        f"Grouped {report['folds']}-fold cross-validation by `split_group`, {report['repeats']} repeats: heads fitted "
        f"on the {report['n_lesions']} train and validation lesions (or the unseen ones alone) less a fold, scored "
        f"on the held-out folds of the {report['n_scored']} lesions the network was not trained on "
        f"({report['n_malignant_scored']} malignant, {report['n_groups_scored']} groups); a lesion's score is its "
        "mean malignant probability over its box prompts.",
        "",
        "| Recipe | Out-of-fold AUROC, mean (SD) over repeats | AUROC of the mean scores (95% CI) |",
        "|---|---|---|",
    ]
    for row in report["recipes"]:
        low, high = row["auroc_ci95"]
        mark = " **(chosen)**" if row["recipe"] == report["chosen"] else ""
        lines.append(
            f"| {row['recipe']}{mark} | {row['auroc_mean']:.3f} ({row['auroc_sd']:.3f}) | "
            f"{row['auroc_of_mean_scores']:.3f} ({low:.3f}–{high:.3f}) |"
        )
    before, after = cal["per_image_before"], cal["per_image_after"]
    points = ", ".join(f"{k} {v:.3f}" for k, v in cal["operating_points"].items())
    lines += [
        "",
        f"Chosen by the rule: {report['rule']} (best: {report['best']}).",
        "",
        f"Calibration out of fold: temperature {cal['temperature']:.3f}; per-image ECE {before['ece']:.3f} "
        f"({before['ece_ci95'][0]:.3f}–{before['ece_ci95'][1]:.3f}) before, {after['ece']:.3f} "
        f"({after['ece_ci95'][0]:.3f}–{after['ece_ci95'][1]:.3f}) after; per-prompt ECE "
        f"{cal['per_input_before']['ece']:.3f} -> {cal['per_input_after']['ece']:.3f}; operating points: {points}.",
        "",
    ]
    return "\n".join(lines)
