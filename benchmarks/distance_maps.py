"""Time one 512 x 512 pair of distance maps with 15 clicks: OpenCV (used) against scipy's EDT.

python benchmarks/distance_maps.py [--size 512] [--clicks 15] [--repeat 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy import ndimage

from core.benchmark import machine_description
from core.distance import distance_maps


def scipy_maps(fg: np.ndarray, bg: np.ndarray, size: int, truncation: float) -> np.ndarray:
    out = []
    for pts in (fg, bg):
        seeds = np.ones((size, size), bool)
        idx = np.clip(np.rint(pts).astype(int), 0, size - 1)
        seeds[idx[:, 1], idx[:, 0]] = False
        out.append(np.minimum(ndimage.distance_transform_edt(seeds), truncation).astype(np.float32))
    return np.stack(out)


def time_it(fn, repeat: int) -> tuple[float, float]:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return float(np.percentile(times, 50)), float(np.percentile(times, 95))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--clicks", type=int, default=15)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, args.size - 1, size=(args.clicks, 2))
    fg, bg = pts[: args.clicks // 3], pts[args.clicks // 3 :]
    a, b = distance_maps(fg, bg, args.size, 255.0), scipy_maps(fg, bg, args.size, 255.0)
    print(f"max |opencv - scipy| = {np.abs(a - b).max():.2e} px (both exact Euclidean)")
    print(f"{args.size} x {args.size}, {args.clicks} clicks ({len(fg)} fg + {len(bg)} bg), {machine_description()}")
    for name, fn in (
        ("opencv DIST_MASK_PRECISE", lambda: distance_maps(fg, bg, args.size, 255.0)),
        ("scipy distance_transform_edt", lambda: scipy_maps(fg, bg, args.size, 255.0)),
    ):
        p50, p95 = time_it(fn, args.repeat)
        print(f"  {name:30s} p50 {p50:6.2f} ms   p95 {p95:6.2f} ms   (pair of maps)")


if __name__ == "__main__":
    main()
