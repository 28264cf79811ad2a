"""``liverclick reproduce`` and ``reproduce-report``: seeds, resuming and skipping, the summary across seeds,
the verdict and the document, on phantoms at a tiny size."""

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

import training.train
from core.cli import main
from training.adapters import phantom_manifest
from training.cli import _seeds_and_overrides
from training.config import SYSTEMS, TrainConfig
from training.reproduction import ReproductionError
from training.reproduction.run import share_of_cores, system_configs, trained_state
from training.reproduction.summary import BY_KEY, difference_summary, verdict

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
TINY = [
    "width=0.125",
    "input_size=64",
    "batch_size=4",
    "iterations=4",
    "checkpoint_every=2",
    "val_every=100",
    "val_max_images=2",
    "num_workers=0",
    "threads=1",
    "classes=[cyst, hemangioma, metastasis, hcc]",
    "malignant=[metastasis, hcc]",
]


def test_difference_across_seeds_by_hand():
    d = difference_summary([0.02, -0.01, 0.05], [0.01, 0.30, 0.04])
    assert d["mean"] == pytest.approx(0.02) and d["sd"] == pytest.approx(0.03)  # deviations 0, -0.03, +0.03
    assert (d["min"], d["max"], d["n"]) == (-0.01, 0.05, 3)
    assert (d["higher"], d["lower"], d["equal"]) == (2, 1, 0)
    assert (d["significant_higher"], d["significant_lower"]) == (2, 0)
    one = difference_summary([0.0], [None])
    assert one["sd"] is None and (one["equal"], one["significant_higher"]) == (1, 0)


def _d(higher, lower, sig_higher=0, sig_lower=0, n=3):
    return {"n": n, "higher": higher, "lower": lower, "significant_higher": sig_higher, "significant_lower": sig_lower}


def test_verdicts_follow_the_papers_two_claims():
    auroc, ji = BY_KEY["auroc"], BY_KEY["ji_two_click"]  # joint better than cls-only; as good as seg-only
    assert verdict(auroc, _d(3, 0, sig_higher=2)) == "holds"
    assert verdict(auroc, _d(3, 0, sig_higher=1)) == "holds in direction only"
    assert verdict(auroc, _d(2, 1, sig_higher=2)) == "mixed"
    assert verdict(auroc, _d(1, 2)) == "does not hold"
    assert verdict(ji, _d(1, 1)) == "holds"  # never significantly worse, as often higher as lower
    assert verdict(ji, _d(1, 2)) == "mixed"
    assert verdict(ji, _d(2, 1, sig_lower=1)) == "mixed"
    assert verdict(ji, _d(0, 3, sig_lower=2)) == "does not hold"


def test_one_base_config_or_one_per_system(tmp_path):
    data = tmp_path / "m.csv"
    base = system_configs([], ["width=0.5"], data)
    assert [c.system for c in base.values()] == ["seg", "cls", "joint"]
    assert {c.width for c in base.values()} == {0.5} and base["cls"].data == str(data.resolve())
    paper = [CONFIGS / f"paper_{n}.yaml" for n in ("joint", "seg_only", "cls_only")]
    per = system_configs(paper, [], data)
    assert [c.system for c in per.values()] == ["seg", "cls", "joint"]
    assert (per["cls"].iterations, per["joint"].iterations) == (40000, 150000)
    with pytest.raises(ReproductionError, match="both configure"):
        system_configs([paper[0], paper[0], paper[1]], [], data)
    with pytest.raises(ReproductionError, match="one for each"):
        system_configs(paper[:2], [], data)
    with pytest.raises(ReproductionError, match="--seeds"):
        system_configs([], ["seed=3"], data)


def test_a_finished_training_is_found_and_another_recipe_refused(tmp_path):
    cfg = TrainConfig.load(None, ["width=0.125", "iterations=4", "seed=1"])
    saved = {**cfg.to_dict(), "data": "elsewhere/manifest.csv", "num_workers": 6}  # where and how fast: may differ
    torch.save({"config": saved, "iteration": 4, "elapsed_s": 12.34}, tmp_path / "last.pt")
    assert trained_state(tmp_path, cfg) == {"iteration": 4, "train_seconds": 12.3}
    assert trained_state(tmp_path / "not-yet", cfg) == {}
    for changed in ("width=0.25", "seed=2"):
        other = TrainConfig.load(None, ["width=0.125", "iterations=4", "seed=1", changed])
        with pytest.raises(ReproductionError, match=f"another config \\({changed.split('=')[0]}: "):
            trained_state(tmp_path, other)


def test_seeds_give_back_the_overrides_they_swallow():
    args = argparse.Namespace(seeds=["0", "2", "width=0.5"], seed=None, overrides=["lr=0.1"])
    assert _seeds_and_overrides(args) == ([0, 2], ["width=0.5", "lr=0.1"])
    assert _seeds_and_overrides(argparse.Namespace(seeds=None, seed=4, overrides=[]))[0] == [4]
    assert _seeds_and_overrides(argparse.Namespace(seeds=None, seed=None, overrides=[]))[0] == [0]


def _interrupt_after(monkeypatch, system: str, seed: int, iteration: int):
    """Stop training (as Ctrl-C would) once ``last.pt`` of one system/seed is written at ``iteration``."""
    save = training.train.save_checkpoint

    def saving(path, model, cfg, **state):
        save(path, model, cfg, **state)
        if (path.name, cfg.system, cfg.seed, state["iteration"]) == ("last.pt", system, seed, iteration):
            raise KeyboardInterrupt

    monkeypatch.setattr(training.train, "save_checkpoint", saving)


@pytest.mark.slow
def test_reproduce_seeds_resume_summary_and_report(tmp_path, monkeypatch, capsys):
    manifest = phantom_manifest(tmp_path / "phantoms", n=32, seed=1)
    out = tmp_path / "repro"
    args = ["reproduce", "--data", str(manifest), "--out", str(out), "--seeds", "0", "1"]
    args += ["--inputs-per-image", "2", "--bootstrap", "50", *TINY]

    _interrupt_after(monkeypatch, "joint", 1, 2)
    assert main(args) == 130  # interrupted in the last system's training
    monkeypatch.undo()
    done = {p: p.stat().st_mtime_ns for p in out.glob("seed*/*.json")}
    assert sorted(p.relative_to(out).as_posix() for p in done) == [
        *(f"seed0/{s}.json" for s in ("cls", "joint", "seg")),
        "seed1/cls.json",
        "seed1/seg.json",
    ]
    capsys.readouterr()

    assert main(args) == 0  # continues: five skipped, the last resumed at iteration 2
    printed = capsys.readouterr().out
    assert printed.count("done before, skipped") == 5 and "at iteration 2" in printed
    assert all(p.stat().st_mtime_ns == t for p, t in done.items())
    with open(out / "seed1" / "joint" / "log.csv") as fh:
        assert [row["iteration"] for row in csv.DictReader(fh)] == ["0", "4"]  # untrained once, then the end

    reports = {(s, sys): json.loads((out / f"seed{s}" / f"{sys}.json").read_text()) for s in (0, 1) for sys in SYSTEMS}
    assert reports[(1, "cls")]["model"]["system"] == "classification only"
    assert set(reports[(1, "cls")]["segmentation"]) == {"two_click"}
    assert reports[(0, "joint")]["protocol"]["seed"] == 0 and reports[(1, "joint")]["protocol"]["seed"] == 1
    assert reports[(1, "joint")]["reproduce"]["iteration"] == 4

    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1]
    ji = summary["figures"]["ji_two_click"]
    ji_of = {key: r["segmentation"]["two_click"]["mean_ji"] for key, r in reports.items()}
    diffs = [ji_of[(s, "joint")] - ji_of[(s, "seg")] for s in (0, 1)]
    assert [r["difference"]["difference"] for r in ji["per_seed"]] == pytest.approx(diffs)
    assert ji["difference"]["mean"] == pytest.approx(np.mean(diffs))
    assert ji["difference"]["sd"] == pytest.approx(np.std(diffs, ddof=1))
    assert ji["difference"]["higher"] == sum(d > 0 for d in diffs)
    auroc = summary["figures"]["auroc"]["per_seed"]
    for row, s in zip(auroc, (0, 1), strict=True):
        cls_auc = reports[(s, "cls")]["classification"]["benign_malignant"]["auroc"]
        joint_auc = reports[(s, "joint")]["classification"]["benign_malignant"]["auroc"]
        assert row["difference"]["difference"] == pytest.approx(joint_auc - cls_auc)
    assert {"auroc_multi", "accuracy_multi", "sensitivity"} <= set(summary["figures"])

    docs = tmp_path / "docs"
    regenerate = ["reproduce-report", str(out), "--markdown", str(docs / "reproduction.md")]
    regenerate += ["--plots", str(docs / "reproduction")]
    assert main(regenerate) == 0
    text = (docs / "reproduction.md").read_text()
    for part in ("## Verdict", "Table 1. Segmentation", "Table 2. Benign vs malignant", "Table 2b. Multi-class"):
        assert part in text
    assert "--seeds 0 1" in text and "width: 0.125" in text and "torchrun" in text and "NoC: not run" in text
    assert "| iterations | `150000` / `40000` / `150000` | `4` |" in text  # versus the paper's recipes
    assert "(reproduction/systems_by_seed.png)" in text and (docs / "reproduction" / "systems_by_seed.png").is_file()
    assert main(regenerate) == 0 and (docs / "reproduction.md").read_text() == text  # from the folder alone

    single = ["reproduce", "--data", str(manifest), "--out", str(out), "--seed", "0"]
    assert main([*single, "--inputs-per-image", "2", "--bootstrap", "50", *TINY]) == 0  # all done before
    assert capsys.readouterr().out.count("done before, skipped") == 3
    assert main([*args, "width=0.25"]) == 2  # another recipe in the same folder is refused
    assert "other settings (configs.seg.width: 0.125 -> 0.25" in capsys.readouterr().err


def test_cores_are_divided_among_parallel_runs():
    assert share_of_cores(9, 16, cuda=True) == {"num_workers": 1, "threads": 1}  # a data worker each, at least
    assert share_of_cores(3, 16, cuda=True) == {"num_workers": 4, "threads": 1}
    assert share_of_cores(2, 2, cuda=False) == {"num_workers": 0, "threads": 1}
    assert share_of_cores(2, 16, cuda=False) == {"num_workers": 1, "threads": 7}


@pytest.mark.slow
def test_parallel_runs_give_the_reports_of_runs_one_after_another(tmp_path, capsys):
    """--parallel 3 trains the three systems of a seed at once, each in its own process with its own log, and
    the reports are those of the same runs one after another (same settings: one thread, no data workers)."""
    manifest = phantom_manifest(tmp_path / "phantoms", n=32, seed=1)
    common = ["--data", str(manifest), "--seeds", "0", "--inputs-per-image", "2", "--bootstrap", "20", *TINY]
    assert main(["reproduce", "--out", str(tmp_path / "serial"), *common]) == 0
    capsys.readouterr()
    assert main(["reproduce", "--out", str(tmp_path / "parallel"), "--parallel", "3", *common]) == 0
    printed = capsys.readouterr().out
    assert printed.count("started (log") == 3 and printed.count(": done in") == 3
    for system in SYSTEMS:
        serial, parallel = (
            json.loads((tmp_path / k / "seed0" / f"{system}.json").read_text()) for k in ("serial", "parallel")
        )
        assert (tmp_path / "parallel" / "seed0" / f"{system}.log").read_text().count("training in") == 1
        assert serial["segmentation"] == parallel["segmentation"]
        assert serial["classification"] == parallel["classification"]
    assert (tmp_path / "parallel" / "reproduction.md").is_file()
