"""Per-prompt latency: ``liverclick benchmark --model NAME|PATH [--image PATH ...] [--provider cpu|cuda] [--json]``.

What a prompt costs once the image is prepared, on real images (default: the shipped BUSI examples), for each
kind of prompt a user makes: ``click`` (a first lesion click: a whole-image pass, then the zoomed one),
``box`` and ``correction`` (a corrective click after a first click, fed the outline shown: one pass). For each
it prints the p50/p95 of the whole predict and of the network alone (``network_p50_ms``: ONNX Runtime's
passes, nothing around them), the provider really used and the machine. Each image needs its lesion's prompts:
``IMAGE.json`` beside it (``box``, ``click``, ``correction``), or ``--box`` for a single image. Prompts are
jittered by a few pixels, so that no two runs see quite the same region. With ``--checkpoint CKPT.pt`` also
that training checkpoint in PyTorch eager on the same prompts (the ORT/PyTorch ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from .cli import CommandError, open_model, set_command
from .imageio import ImageError, load_image
from .prompt import Prompt
from .runtime import Predictor, cpu_threads

# The viewer's example images, installed beside core: the BUSI ones carry their lesion's prompts.
EXAMPLES = Path(__file__).resolve().parents[1] / "webapp" / "examples"
KINDS = ("click", "box", "correction")
JITTER_PX = 3


def machine_description() -> str:
    """CPU model and usable cores (and the GPU's name when CUDA is in use is added by the caller)."""
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {cpu_threads()} cores"


def lesion_prompts(image: Path, box: list[int] | None = None) -> dict:
    """The prompts of an image's lesion: ``IMAGE.json`` beside it, or a box (click at its centre, correction
    halfway to a corner)."""
    if box is not None:
        x0, y0, x1, y1 = box
        cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
        correction = {"x": (cx + x0) // 2, "y": (cy + y0) // 2, "positive": True}
        return {"box": box, "click": {"x": cx, "y": cy, "positive": True}, "correction": correction}
    sidecar = image.with_suffix(".json")
    if not sidecar.is_file():
        raise CommandError(f"{image}: no {sidecar.name} with the lesion's prompts beside it; give --box X0 Y0 X1 Y1")
    return json.loads(sidecar.read_text())


def jittered(
    prompts: dict, rng: np.random.Generator, width: int, height: int
) -> dict[str, tuple[Prompt, Prompt | None]]:
    """Each kind's prompt (and, for a correction, the first click it corrects), moved by up to JITTER_PX."""

    def at(point: dict) -> tuple[int, int]:
        dx, dy = rng.integers(-JITTER_PX, JITTER_PX + 1, size=2)
        return int(np.clip(point["x"] + dx, 0, width - 1)), int(np.clip(point["y"] + dy, 0, height - 1))

    first = Prompt().add_click(*at(prompts["click"]))
    corner = (prompts["box"][:2], prompts["box"][2:])
    (x0, y0), (x1, y1) = (at({"x": x, "y": y}) for x, y in corner)
    fix = prompts["correction"]
    return {
        "click": (first, None),
        "box": (Prompt().add_box(x0, y0, x1, y1), None),
        "correction": (first.add_click(*at(fix), positive=bool(fix["positive"])), first),
    }


def time_prompts(predictor: Predictor, images: list[tuple[np.ndarray, dict]], rounds: int, warmup: int) -> dict:
    """``rounds`` of every kind on every image: {kind: {"total": [ms], "network": [ms]}}."""
    rng = np.random.default_rng(0)
    prepared = [(predictor.prepare(gray), prompts) for gray, prompts in images]
    times: dict[str, dict[str, list[float]]] = {k: {"total": [], "network": []} for k in KINDS}
    for r in range(warmup + rounds):
        for prep, prompts in prepared:
            for kind, (prompt, before) in jittered(prompts, rng, prep.width, prep.height).items():
                previous = None if before is None else predictor.predict(prep, before).mask
                t = time.perf_counter()
                p = predictor.predict(prep, prompt, previous)
                total = (time.perf_counter() - t) * 1000
                if r >= warmup:
                    times[kind]["total"].append(total)
                    times[kind]["network"].append(p.timings_ms.get("first_pass", 0.0) + p.timings_ms["inference"])
    return times


def summarise(times: dict) -> dict:
    """p50/p95 of the whole predict and of the network alone, per kind and over all prompts."""

    def pct(values: list[float], q: float) -> float:
        return float(np.percentile(values, q))

    every = [t for kind in times.values() for t in kind["total"]]
    out = {"p50_ms": pct(every, 50), "p95_ms": pct(every, 95), "n_prompts": len(every), "by_prompt": {}}
    for kind, t in times.items():
        out["by_prompt"][kind] = {
            "p50_ms": pct(t["total"], 50),
            "p95_ms": pct(t["total"], 95),
            "network_p50_ms": pct(t["network"], 50),
            "network_p95_ms": pct(t["network"], 95),
            "n": len(t["total"]),
        }
    box = out["by_prompt"]["box"]
    out["box_over_network"] = box["p50_ms"] / box["network_p50_ms"]
    return out


def register(subparsers) -> None:
    p = subparsers.add_parser("benchmark", help="per-prompt latency of a model on real images")
    p.add_argument("--model", default="default")
    p.add_argument("--provider", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument(
        "--image", type=Path, action="append", default=None, help="an image (repeatable); default: the examples"
    )
    p.add_argument("--box", type=int, nargs=4, default=None, metavar=("X0", "Y0", "X1", "Y1"), help="its lesion")
    p.add_argument("--rounds", type=int, default=20, help="prompts of each kind per image")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--checkpoint", type=Path, default=None, help="also time this checkpoint in PyTorch eager")
    p.add_argument("--json", action="store_true", help="end with one JSON line")
    set_command(p, benchmark_main)


def benchmark_main(args: argparse.Namespace) -> int:
    paths = args.image or sorted(EXAMPLES.glob("busi_*.png"))
    if not paths:
        raise CommandError(f"no images: give --image (the examples are not installed at {EXAMPLES})")
    if args.box is not None and len(paths) != 1:
        raise CommandError("--box is the lesion of one image: give exactly one --image with it")
    if args.rounds < 1 or args.warmup < 0:
        raise CommandError("--rounds must be >= 1 and --warmup >= 0")
    images = []
    for path in paths:
        try:
            images.append((load_image(path).pixels, lesion_prompts(path, args.box)))
        except (OSError, ImageError, ValueError) as exc:
            raise CommandError(f"{path}: {exc}") from None
    seg = open_model(args.model, args.provider)
    result = {
        "model": seg.name,
        "version": seg.version,
        "provider": seg.provider,
        "input_size": seg.spec.input_size,
        "zoom_context": seg.spec.zoom_context,
        "images": [f"{p.name} ({g.shape[1]}x{g.shape[0]})" for p, (g, _) in zip(paths, images, strict=True)],
        "machine": machine_description(),
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "threads": cpu_threads(),
        "onnxruntime": __import__("onnxruntime").__version__,
        **summarise(time_prompts(seg, images, args.rounds, args.warmup)),
    }
    if seg.provider == "CUDAExecutionProvider":
        result["gpu"] = os.popen("nvidia-smi --query-gpu=name --format=csv,noheader").read().strip()
    if args.checkpoint:
        torch_times = summarise(time_prompts(open_model(args.checkpoint, args.provider), images, args.rounds, 1))
        result["pytorch_p50_ms"] = torch_times["p50_ms"]
        result["ort_over_pytorch_p50"] = result["p50_ms"] / torch_times["p50_ms"]
    print_result(result)
    if args.json:
        print(json.dumps(result))
    return 0


def print_result(r: dict) -> None:
    print(
        f"{r['model']} {r['version']} on {r['provider']} ({r['machine']}, load average {r['load_average'] or 0:.1f}), "
        f"S={r['input_size']}, zoom {r['zoom_context']:g}, {r['n_prompts']} prompts on {', '.join(r['images'])}"
    )
    for kind, t in r["by_prompt"].items():
        print(
            f"  {kind:10s} p50 {t['p50_ms']:.1f} ms, p95 {t['p95_ms']:.1f} ms; "
            f"network alone p50 {t['network_p50_ms']:.1f} ms, p95 {t['network_p95_ms']:.1f} ms"
        )
    print(f"  box: whole predict / network alone = {r['box_over_network']:.2f} (p50)")
    if "pytorch_p50_ms" in r:
        print(f"  PyTorch eager p50 {r['pytorch_p50_ms']:.1f} ms; ORT / PyTorch = {r['ort_over_pytorch_p50']:.2f}")
