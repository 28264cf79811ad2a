"""Per-click latency: ``liverclick benchmark --model NAME|PATH [--provider cpu|cuda] [--json]``.

What a click costs once the image is loaded: distance maps + inference (two passes for a clicks-only
prompt under zoom-in) + post-processing. Prompts cycle through what users do: a box, a single
lesion click, a box refined with a click. Prints p50/p95 and images/s per kind, the provider really
used and the machine; with ``--checkpoint CKPT.pt`` also that training checkpoint in PyTorch eager on the
same inputs (the ORT/PyTorch ratio), loaded like any model (core.runtime.load_model).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from .cli import open_model, set_command
from .prompt import Prompt
from .runtime import Predictor, cpu_threads


def machine_description() -> str:
    """CPU model and usable cores (and the GPU's name when CUDA is in use is added by the caller)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {cpu_threads()} cores"


def synthetic_scan(size: tuple[int, int] = (480, 640), seed: int = 0) -> tuple[np.ndarray, tuple[int, int, int]]:
    """A speckled 8-bit image with a dark round lesion; returns (image, (cx, cy, r))."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = rng.gamma(2.0, 40.0, size=size)
    cx, cy, r = w // 2 + 40, h // 2 - 20, min(h, w) // 8
    yy, xx = np.mgrid[:h, :w]
    img[(xx - cx) ** 2 + (yy - cy) ** 2 < r * r] *= 0.25
    return np.clip(img, 0, 255).astype(np.uint8), (cx, cy, r)


def benchmark_prompts(lesion: tuple[int, int, int], n: int, seed: int = 0) -> list[tuple[str, Prompt]]:
    """``n`` prompts cycling box / click / box + refining click, jittered around the lesion."""
    cx, cy, r = lesion
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        j = rng.integers(-r // 5, r // 5 + 1, size=6)
        box = Prompt().add_box(cx - r + j[0], cy - r + j[1], cx + r + j[2], cy + r + j[3])
        kind = ("box", "click", "box+click")[i % 3]
        if kind == "box":
            out.append((kind, box))
        elif kind == "click":
            out.append((kind, Prompt().add_click(cx + j[4], cy + j[5])))
        else:
            out.append((kind, box.add_click(cx + j[4] // 2, cy + j[5] // 2, positive=True)))
    return out


def time_clicks(predictor: Predictor, image: np.ndarray, prompts, warmup: int) -> dict[str, list[float]]:
    prepared = predictor.prepare(image)
    for _, prompt in prompts[:warmup]:
        predictor.predict(prepared, prompt)
    times: dict[str, list[float]] = {}
    for kind, prompt in prompts[warmup:]:
        t = time.perf_counter()
        predictor.predict(prepared, prompt)
        times.setdefault(kind, []).append((time.perf_counter() - t) * 1000)
    return times


def summarise(times: dict[str, list[float]]) -> dict:
    every = [t for ts in times.values() for t in ts]
    out = {
        "p50_ms": float(np.percentile(every, 50)),
        "p95_ms": float(np.percentile(every, 95)),
        "mean_ms": float(np.mean(every)),
        "n_clicks": len(every),
    }
    out["images_per_s"] = 1000.0 / out["mean_ms"]
    out["by_prompt"] = {
        k: {"p50_ms": float(np.percentile(v, 50)), "p95_ms": float(np.percentile(v, 95))} for k, v in times.items()
    }
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser("benchmark", help="per-click latency of a model")
    p.add_argument("--model", default="default")
    p.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--clicks", type=int, default=100)
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--checkpoint", type=Path, default=None, help="also time this checkpoint in PyTorch eager")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    set_command(p, benchmark_main)


def benchmark_main(args: argparse.Namespace) -> int:
    seg = open_model(args.model, args.provider)
    image, lesion = synthetic_scan()
    prompts = benchmark_prompts(lesion, args.clicks + args.warmup)
    result = {
        "model": seg.name,
        "version": seg.version,
        "provider": seg.provider,
        "input_size": seg.spec.input_size,
        "zoom_context": seg.spec.zoom_context,
        "image": f"{image.shape[1]}x{image.shape[0]}",
        "machine": machine_description(),
        "threads": cpu_threads(),
        "onnxruntime": __import__("onnxruntime").__version__,
        **summarise(time_clicks(seg, image, prompts, args.warmup)),
    }
    if seg.provider == "CUDAExecutionProvider":
        result["gpu"] = os.popen("nvidia-smi --query-gpu=name --format=csv,noheader").read().strip()
    if args.checkpoint:
        torch_times = summarise(time_clicks(open_model(args.checkpoint, args.provider), image, prompts, args.warmup))
        result["pytorch_p50_ms"] = torch_times["p50_ms"]
        result["ort_over_pytorch_p50"] = result["p50_ms"] / torch_times["p50_ms"]
    r = result
    print(
        f"{r['model']} {r['version']} on {r['provider']} ({r['machine']}), S={r['input_size']}, "
        f"zoom {r['zoom_context']:g}, {r['n_clicks']} clicks on a {r['image']} image"
    )
    print(f"  per click: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, {r['images_per_s']:.1f} clicks/s")
    for kind, t in r["by_prompt"].items():
        print(f"    {kind:10s} p50 {t['p50_ms']:.1f} ms, p95 {t['p95_ms']:.1f} ms")
    if "pytorch_p50_ms" in r:
        print(f"  PyTorch eager p50 {r['pytorch_p50_ms']:.1f} ms; ORT / PyTorch = {r['ort_over_pytorch_p50']:.2f}")
    if args.json:
        print(json.dumps(result))
    return 0
