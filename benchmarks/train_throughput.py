"""Training throughput (images/s) of the joint network: forward + backward + optimiser step on random
batches, so the figure is the network's, not the data pipeline's.

    python benchmarks/train_throughput.py --width 0.25 --size 256 --batch 16 [--steps 10] [--device cuda] [--amp]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from core.benchmark import machine_description
from training.networks import ClickNet


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--width", type=float, default=0.25)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--amp", action="store_true", help="float16 autocast (CUDA)")
    args = ap.parse_args()
    device = torch.device(args.device)
    net = ClickNet("joint", 2, args.width, "mask").to(device, memory_format=torch.channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=1e-4, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=args.amp)
    x = torch.randn(args.batch, 3, args.size, args.size, device=device).contiguous(memory_format=torch.channels_last)
    y = (torch.rand(args.batch, 1, args.size, args.size, device=device) > 0.5).float()
    label = torch.randint(0, 2, (args.batch,), device=device)

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.float16, enabled=args.amp):
            mask, cls = net(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            mask.float(), y
        ) + torch.nn.functional.cross_entropy(cls.float(), label)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(2):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else machine_description()
    result = {
        "width": args.width,
        "size": args.size,
        "batch": args.batch,
        "amp": args.amp,
        "device": where,
        "threads": torch.get_num_threads(),
        "images_per_s": args.batch * args.steps / seconds,
    }
    print(
        f"joint x{args.width:g} at {args.size}px, batch {args.batch}{' amp' if args.amp else ''} on {where}: "
        f"{result['images_per_s']:.1f} images/s"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
