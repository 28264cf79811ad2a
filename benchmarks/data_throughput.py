"""Training samples per second of the data pipeline (``ClickDataset``), one core, per config; optionally beside
another revision of the code measured in the same run on the same CPU, with a digest of the samples drawn so
that "the same samples, faster" can be read off.

    python benchmarks/data_throughput.py [--config C.yaml ...] [--samples 3000] [--baseline 608dade] [--json]

Each config draws ``--samples`` samples in a seeded random order from its training split (BUSI from
``../shared`` by default, or ``--data MANIFEST.csv``), from a freshly built dataset: what a run computes once
per case is timed apart (``load_s``: decoding and what is kept per case) and both are summed for one run of
the lite recipes (``run_cpu_s``: 4000 iterations of 16). One process, one thread (a data worker's view).
``--baseline REV`` exports that revision with ``git archive`` and measures it the same way, alternating with
this tree.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = ["configs/busi_reproduce_lite.yaml", "configs/busi_joint_lite.yaml"]
DIGEST_SAMPLES = 200  # samples hashed for the identity check
RUN_SAMPLES = 4000 * 16  # one run of the lite recipes: 4000 iterations of 16


def measure(config: str, manifest: str, samples: int, seed: int) -> dict:
    """Time ``samples`` draws from a fresh ClickDataset of ``config``'s training split (this process's code),
    OpenCV and torch on one thread; hash the first draws made with OpenCV's default threads, as the old code
    ran (OpenCV's one-thread distance transform rounds some distances differently in the last bit)."""
    import cv2
    import numpy as np
    import torch

    from core.manifest import read_manifest
    from training.config import TrainConfig
    from training.dataset import ClickDataset

    cfg, ignored = config_for_this_code(TrainConfig, ROOT / config, [f"data={manifest}", "init_from="])
    cases, _ = read_manifest(cfg.data, split="train", labels=tuple(cfg.classes))
    order = np.random.default_rng(seed).integers(len(cases), size=max(samples, DIGEST_SAMPLES))
    digest, dataset = hashlib.sha256(), ClickDataset(cases, cfg, cfg.spec())
    torch.manual_seed(seed)
    for idx in order[:DIGEST_SAMPLES]:
        x, y, label, clicks = dataset[int(idx)]
        for part in (x.numpy(), y.numpy(), clicks.numpy(), np.int64(label)):
            digest.update(part.tobytes())

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    start = time.perf_counter()
    dataset = ClickDataset(cases, cfg, cfg.spec())
    load_s = time.perf_counter() - start
    torch.manual_seed(seed)
    times = []
    for idx in order[:samples]:
        t0 = time.perf_counter()
        dataset[int(idx)]
        times.append(time.perf_counter() - t0)
    ms = np.array(times) * 1e3
    rate = samples / (ms.sum() / 1e3)
    return {
        "config": config,
        "cases": len(dataset),
        "samples": samples,
        "load_s": round(load_s, 2),
        "samples_per_s": round(rate, 1),
        "ms_p50": round(float(np.percentile(ms, 50)), 3),
        "ms_p95": round(float(np.percentile(ms, 95)), 3),
        "run_cpu_s": round(load_s + RUN_SAMPLES / rate),
        "digest": digest.hexdigest()[:16],
        "ignored_keys": ignored,
    }


def config_for_this_code(config_class, path: Path, overrides: list[str]):
    """The config at ``path`` as this process's code reads it, less the keys that code does not know (a newer
    recipe's training-loop settings, such as ``previous_dropout``, which an older data pipeline never reads), and
    the keys left out."""
    import dataclasses

    import yaml

    data = yaml.safe_load(path.read_text()) or {}
    known = {f.name for f in dataclasses.fields(config_class)}
    ignored = sorted(set(data) - known)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump({k: v for k, v in data.items() if k in known}, f)
    try:
        return config_class.load(f.name, overrides), ignored
    finally:
        os.unlink(f.name)


def measure_in(tree: Path, args: list[str]) -> dict:
    """Run :func:`measure` with the code of ``tree`` (this file, that tree's packages)."""
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--measure", *args],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def default_manifest() -> str:
    from training.adapters import busi_manifest, find_busi

    busi = find_busi()
    if busi is None:
        sys.exit("BUSI not found (set LIVERCLICK_BUSI or give --data MANIFEST.csv)")
    folder = Path(tempfile.mkdtemp(prefix="liverclick-data-"))
    return str(busi_manifest(busi, folder))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", nargs="+", default=DEFAULT_CONFIGS, help="training configs (paths from the root)")
    ap.add_argument("--data", help="manifest CSV (default: BUSI's, made from ../shared)")
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--baseline", metavar="REV", help="also measure this git revision, alternating with this tree")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # one config, this tree, JSON out
    args = ap.parse_args()
    if args.measure:
        print(json.dumps(measure(args.config[0], args.data, args.samples, args.seed)))
        return

    from core.benchmark import machine_description

    manifest = str(Path(args.data).resolve()) if args.data else default_manifest()
    trees = {"this tree": ROOT}
    with tempfile.TemporaryDirectory(prefix="liverclick-baseline-") as tmp:
        if args.baseline:
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.baseline], capture_output=True, check=True
            )
            subprocess.run(["tar", "-x", "-C", tmp], input=archive.stdout, check=True)
            trees = {args.baseline: Path(tmp), **trees}
        rows = []
        for config in args.config:
            for name, tree in trees.items():
                common = ["--config", config, "--data", manifest, "--samples", str(args.samples)]
                row = measure_in(tree, [*common, "--seed", str(args.seed)])
                rows.append({"code": name, **row})
                if not args.json:
                    print(
                        f"{config} [{name}]: {row['samples_per_s']:.0f} samples/s "
                        f"(p50 {row['ms_p50']:.2f} ms, p95 {row['ms_p95']:.2f} ms per sample; "
                        f"load {row['load_s']:.1f} s; one run {row['run_cpu_s']} CPU-s; digest {row['digest']})",
                        flush=True,
                    )
    result = {"machine": machine_description(), "threads": 1, "rows": rows}
    if args.baseline:
        result["speedup"] = {
            config: round(new["samples_per_s"] / old["samples_per_s"], 2)
            for config in args.config
            for old, new in [[r for r in rows if r["config"] == config]]
        }
        result["identical_samples"] = {
            config: old["digest"] == new["digest"]
            for config in args.config
            for old, new in [[r for r in rows if r["config"] == config]]
        }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"machine: {result['machine']}, one thread per process")
        for config, speedup in result.get("speedup", {}).items():
            same = "identical" if result["identical_samples"][config] else "DIFFERENT"
            print(f"{config}: {speedup:.2f}x the samples/s of {args.baseline}; first {DIGEST_SAMPLES} samples {same}")


if __name__ == "__main__":
    main()
