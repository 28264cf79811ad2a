"""One check of the GPU path, end to end, inside 9 minutes on one H200: the lite recipe's three systems x three
seeds trained in parallel and evaluated, the reproduction report, one model exported with its parity gate, and
per-prompt latency on PyTorch CUDA (and ONNX Runtime's CUDA provider where it exists).

    python benchmarks/gpu_check.py --out OUT [--busi DIR] [--parallel 9] [--seeds 0 1 2]
    python benchmarks/gpu_check.py --dry-run --out OUT    # the same path on the CPU at a tiny size (CI)

Everything it makes lands in OUT (at most 60 MB: reports, logs, ``best.pt`` weights without optimiser state,
the ONNX file); ``OUT/check.json`` is rewritten after every step (its time, what it measured, or its error),
so a check stopped midway still says how far it got. It needs numpy, OpenCV, PyTorch, ONNX and ONNX Runtime,
not gradio. BUSI is read from ``--busi`` (``$LIVERCLICK_BUSI`` or ``../shared/data/busi`` by default).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a bare checkout, nothing installed

MAX_OUT_MB = 60
TINY = [  # the dry run: the same steps at a size the CPU runs in seconds
    "width=0.125",
    "input_size=64",
    "batch_size=4",
    "iterations=6",
    "val_every=3",
    "checkpoint_every=3",
    "val_max_images=4",
    "device=cpu",
    "classes=[cyst, hemangioma, metastasis, hcc]",
    "malignant=[metastasis, hcc]",
]


class Check:
    """The steps' record in ``OUT/check.json``: each step's seconds and result, written as soon as it ends."""

    def __init__(self, out: Path, settings: dict):
        self.out, self.path = out, out / "check.json"
        self.record = {"settings": settings, "steps": {}, "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        self.start = time.perf_counter()

    def run(self, name: str, fn, *args) -> object | None:
        """Run one step; its result (a dict) or its error is recorded. Returns the result, None on failure."""
        t = time.perf_counter()
        print(f"== {name}", flush=True)
        try:
            result = fn(*args)
            self.record["steps"][name] = {"seconds": round(time.perf_counter() - t, 1), **(result or {})}
            ok = result
        except Exception as exc:  # one failed step is reported, and the independent steps still run
            traceback.print_exc()
            self.record["steps"][name] = {"seconds": round(time.perf_counter() - t, 1), "error": repr(exc)}
            ok = None
        self.record["total_seconds"] = round(time.perf_counter() - self.start, 1)
        self.path.write_text(json.dumps(self.record, indent=1) + "\n")
        print(f"   {name}: {self.record['steps'][name]}", flush=True)
        return ok


def environment() -> dict:
    import onnxruntime
    import torch

    from core.benchmark import machine_description

    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "cpu": machine_description(),
        "onnxruntime": onnxruntime.__version__,
        "onnxruntime_providers": onnxruntime.get_available_providers(),
    }


def make_manifest(out: Path, busi: Path | None, dry_run: bool) -> dict:
    from training.adapters import busi_manifest, find_busi, phantom_manifest

    if dry_run:
        path = phantom_manifest(out / "data", n=48, seed=0)
    else:
        source = busi or find_busi()
        if source is None:
            raise FileNotFoundError("BUSI not found: give --busi DIR or set LIVERCLICK_BUSI")
        path = busi_manifest(source, out / "data")
    return {"manifest": str(path)}


def reproduce_all(out: Path, manifest: Path, args: argparse.Namespace) -> dict:
    from training.reproduction.report import write_report
    from training.reproduction.run import reproduce

    run = out / "reproduce"
    reproduce(
        manifest,
        run,
        configs=[ROOT / "configs" / "busi_reproduce_lite.yaml"],
        overrides=TINY if args.dry_run else [],
        seeds=args.seeds,
        n_inputs=2 if args.dry_run else 5,
        n_boot=50 if args.dry_run else 2000,
        command=" ".join(sys.argv),
        parallel=args.parallel,
    )
    written = write_report(run)
    summary = json.loads(written["summary"].read_text())
    verdicts = {key: figure.get("verdict") for key, figure in summary["figures"].items()}
    return {"run": str(run), "timing": summary["timing"], "verdicts": verdicts}


def export_one(out: Path, seed: int) -> dict:
    from export.onnx_export import export_onnx

    checkpoint = out / "reproduce" / f"seed{seed}" / "joint" / "best.pt"
    report = export_onnx(checkpoint, out / "joint.onnx")
    return {"onnx": str(out / "joint.onnx"), "parity": str(report), "passed": report.passed}


def latency(out: Path, seed: int, rounds: int) -> dict:
    """Per-prompt latency on the shipped BUSI examples: the checkpoint in PyTorch on the GPU (or the CPU), and
    the exported file in ONNX Runtime on its CUDA provider where it exists, else on the CPU."""
    from core.benchmark import EXAMPLES, lesion_prompts, summarise, time_prompts
    from core.imageio import load_image
    from core.runtime import Segmenter, cuda_available
    from training.checkpoint import load_for_provider

    images = [(load_image(p).pixels, lesion_prompts(p)) for p in sorted(EXAMPLES.glob("busi_*.png"))]
    predictors = [load_for_provider(out / "reproduce" / f"seed{seed}" / "joint" / "best.pt")]
    if (out / "joint.onnx").exists():
        predictors.append(Segmenter(out / "joint.onnx", provider="cuda" if cuda_available() else "cpu"))
    result = {}
    for predictor in predictors:
        timed = summarise(time_prompts(predictor, images, rounds, warmup=3))
        result[predictor.provider] = {
            kind: {k: round(v, 2) for k, v in t.items() if k.endswith("_ms")} for kind, t in timed["by_prompt"].items()
        }
    return {"latency_ms": result}


def trim(out: Path) -> dict:
    """Keep what the report needs: optimiser states (``last.pt``) and the data folder go; the size is checked."""
    for last in out.glob("reproduce/seed*/*/last.pt"):
        last.unlink()
    shutil.rmtree(out / "data", ignore_errors=True)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    if size > MAX_OUT_MB:
        raise RuntimeError(f"{out} holds {size:.1f} MB, over {MAX_OUT_MB} MB")
    return {"out_mb": round(size, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--busi", type=Path, default=None, help="BUSI's folder (default: $LIVERCLICK_BUSI or ../shared)")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--parallel", type=int, default=None, help="runs at once (default: all of them; 3 in a dry run)")
    ap.add_argument("--rounds", type=int, default=None, help="latency: prompts of each kind per image")
    ap.add_argument("--dry-run", action="store_true", help="the same steps on the CPU at a tiny size, on phantoms")
    args = ap.parse_args(argv)
    args.parallel = args.parallel or (3 if args.dry_run else 3 * len(args.seeds))
    if args.dry_run:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the CPU path, even on a GPU machine
    args.out.mkdir(parents=True, exist_ok=True)
    check = Check(args.out, {k: str(v) for k, v in vars(args).items()})
    check.run("environment", environment)
    made = check.run("manifest", make_manifest, args.out, args.busi, args.dry_run)
    reproduced = made and check.run("reproduce", reproduce_all, args.out, Path(made["manifest"]), args)
    if reproduced:
        check.run("export", export_one, args.out, args.seeds[0])
        check.run("latency", latency, args.out, args.seeds[0], args.rounds or (2 if args.dry_run else 20))
    check.run("trim", trim, args.out)
    failed = [name for name, step in check.record["steps"].items() if "error" in step]
    print(f"check {'FAILED at ' + ', '.join(failed) if failed else 'passed'} in {check.record['total_seconds']} s")
    return 1 if failed or not reproduced else 0


if __name__ == "__main__":
    sys.exit(main())
