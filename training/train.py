"""The training loop: ``liverclick train --config C.yaml [--out DIR] [key=value ...]``.

One process on a laptop CPU, or ``torchrun --nproc_per_node=N -m training.train --config C.yaml``
for DistributedDataParallel on N GPUs (NCCL) or N CPU processes (gloo). Iteration-based as in the
paper; validation (Jaccard in both test modes, AUROC) every ``val_every`` iterations into
``log.csv``; ``last.pt`` is rewritten every ``checkpoint_every`` iterations and a run resumes from
it; ``best.pt`` keeps the best validation score.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler
from tqdm import tqdm

from core.manifest import Case, ManifestError, read_manifest
from core.runtime import cpu_threads

from .checkpoint import TorchPredictor, init_from_checkpoint, save_checkpoint
from .config import TrainConfig, add_train_arguments
from .corrections import add_corrections
from .dataset import ClickDataset
from .evaluation.protocol import evaluate_image
from .evaluation.stats import auroc
from .losses import alpha_focal_loss, binary_focal_loss, class_alpha, soft_jaccard_loss
from .networks import ClickNet, build_network

LOG_FIELDS = [
    "iteration",
    "epoch",
    "lr",
    "loss",
    "seg_loss",
    "cls_loss",
    "images_per_s",
    "elapsed_s",
    "val_ji_two_click",
    "val_ji_one_click",
    "val_ji_5_clicks",
    "val_auroc",
    "val_score",
]


class RunLog:
    """Validation rows into ``log.csv`` (appended, so a resumed run continues it) and, when TensorBoard is
    installed, into its event files beside it."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / "log.csv"
        if not self.path.exists():
            with open(self.path, "w", newline="") as fh:
                csv.DictWriter(fh, LOG_FIELDS).writeheader()
        try:
            from torch.utils.tensorboard import SummaryWriter

            self.board = SummaryWriter(str(out_dir / "tensorboard"))
        except ImportError:  # tensorboard is optional
            self.board = None

    def write(self, row: dict) -> str:
        """Log one row; returns its summary line."""
        with open(self.path, "a", newline="") as fh:
            csv.DictWriter(fh, LOG_FIELDS, extrasaction="ignore").writerow(
                {k: (f"{v:.5g}" if isinstance(v, float) else v) for k, v in row.items()}
            )
        if self.board is not None:
            for key in LOG_FIELDS[2:]:
                if isinstance(row.get(key), (int, float)):
                    self.board.add_scalar(key, row[key], row["iteration"])
            self.board.flush()
        return " ".join(f"{k}={row[k]:.4g}" for k in LOG_FIELDS[-5:] if k in row) + f" @ {row['iteration']}"


def _dist_env() -> tuple[int, int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def lr_factor(cfg: TrainConfig, it: int) -> float:
    """Paper: full rate for the first half, a tenth for the second; or cosine; optional linear warm-up."""
    warm = min(1.0, (it + 1) / cfg.warmup) if cfg.warmup else 1.0
    if cfg.lr_schedule == "step":
        return warm * (1.0 if it < cfg.iterations // 2 else 0.1)
    return warm * 0.5 * (1 + math.cos(math.pi * min(it, cfg.iterations) / cfg.iterations))


VAL_INPUTS = 5  # simulated inputs per image and mode, as the evaluation protocol
VAL_CLICKS = 5  # RITM clicks per image for the Jaccard after 5 clicks (previous-outline models)


def validate(model: ClickNet, cfg: TrainConfig, cases: list[Case], seed: int = 0) -> dict:
    """Validation with the evaluation protocol: mean Jaccard over the five two-click and five one-click
    inputs per image, the benign/malignant AUROC of the two-click inputs averaged per image, and for a
    model trained with corrections the Jaccard after five clicks of RITM's clicker."""
    predictor = TorchPredictor(model, cfg.spec())
    modes = ("two-click",) if cfg.system == "cls" else ("two-click", "one-click")
    clicks = cfg.system != "cls" and (cfg.previous_mask or cfg.corrective_clicks > 0)
    records = [evaluate_image(predictor, c, modes, seed, VAL_INPUTS, clicks, None, VAL_CLICKS) for c in cases]
    out = {}
    if cfg.system != "cls":
        out["val_ji_two_click"] = float(np.mean([r["two_click"]["mean_ji"] for r in records]))
        out["val_ji_one_click"] = float(np.mean([r["one_click"]["mean_ji"] for r in records]))
    if clicks:
        out["val_ji_5_clicks"] = float(np.mean([r["noc"]["ji_after_click"][-1] for r in records]))
    truth = np.array([c.label in cfg.malignant for c in cases])
    if cfg.system != "seg" and 0 < truth.sum() < len(truth):
        scores = np.array([np.mean(r["two_click"]["malignant_prob"]) for r in records])
        out["val_auroc"] = float(auroc(truth, scores))
    out["val_score"] = float(np.mean(list(out.values()))) if out else 0.0
    return out


def train(cfg: TrainConfig, out_dir: Path) -> Path:
    """Train as configured, resuming from ``out_dir/last.pt`` if present; returns the best checkpoint."""
    rank, world, local_rank = _dist_env()
    distributed = world > 1
    use_cuda = torch.cuda.is_available()
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if use_cuda else "gloo")
    device = torch.device(f"cuda:{local_rank}" if use_cuda else "cpu")
    if use_cuda:
        torch.cuda.set_device(device)
    torch.set_num_threads(cfg.threads or max(1, cpu_threads() // world))
    torch.manual_seed(cfg.seed * 1000 + rank)
    main_process = rank == 0
    out_dir.mkdir(parents=True, exist_ok=True)

    cases, problems = read_manifest(cfg.data, labels=tuple(cfg.classes), skip_bad=cfg.skip_bad_rows)
    if main_process and problems:
        print(f"skipped {len(problems)} bad manifest rows:\n  " + "\n  ".join(problems), file=sys.stderr)
    train_cases = [c for c in cases if c.split == "train"]
    val_cases = [c for c in cases if c.split == "val"][: cfg.val_max_images or None]
    if not train_cases:
        raise ValueError(f"{cfg.data} has no rows with split 'train'")
    spec = cfg.spec()
    dataset = ClickDataset(train_cases, cfg, spec)
    sampler = (
        DistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=True, seed=cfg.seed)
        if distributed
        else RandomSampler(dataset)
    )
    loader = DataLoader(
        dataset,
        batch_size=cfg.batch_size,
        sampler=sampler,
        num_workers=cfg.num_workers,
        drop_last=len(dataset) >= cfg.batch_size * world,
        persistent_workers=cfg.num_workers > 0,
    )

    net = build_network(cfg)
    if cfg.init_from:
        n = init_from_checkpoint(net, cfg.init_from, cfg.init_stages, spec, cfg.init_heads)
        if main_process:
            print(f"initialised {n} tensors from {cfg.init_from}")
    net = net.to(device, memory_format=torch.channels_last)
    model = DistributedDataParallel(net, device_ids=[local_rank] if use_cuda else None) if distributed else net
    head = {id(p) for p in (net.cls_head.parameters() if net.cls_head is not None else ())}
    params = [
        {"params": [p for p in net.parameters() if p.requires_grad and id(p) not in head], "lr": cfg.lr},
        {
            "params": [p for p in net.parameters() if p.requires_grad and id(p) in head],
            "lr": cfg.lr * cfg.cls_lr_factor,
        },
    ]
    if cfg.optimizer == "sgd":
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    else:
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: lr_factor(cfg, it))
    amp = cfg.amp and use_cuda
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    counts = Counter(dataset.labels)
    alpha = (
        class_alpha([counts[i] for i in range(len(cfg.classes))])
        if cfg.balance_classes
        else torch.ones(len(cfg.classes))
    ).to(device)

    iteration, best, elapsed_before = 0, -1.0, 0.0
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if last_path.exists():
        state = torch.load(last_path, map_location=device, weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        iteration, best, elapsed_before = state["iteration"], state.get("best", -1.0), state.get("elapsed_s", 0.0)
        if main_process:
            print(f"resumed from {last_path} at iteration {iteration}")
    log = RunLog(out_dir) if main_process else None

    def checkpoint(path: Path) -> None:
        save_checkpoint(
            path,
            net,
            cfg,
            optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(),
            iteration=iteration,
            best=best,
            elapsed_s=elapsed_before + time.time() - start,
        )

    start = time.time()
    if main_process and iteration == 0 and val_cases:  # the untrained network: what training must beat
        net.eval()
        row = {"iteration": 0, "epoch": 0, "lr": cfg.lr, **validate(net, cfg, val_cases, cfg.seed)}
        net.train()
        print(log.write(row) + " (untrained)")
    bar = tqdm(
        total=cfg.iterations,
        initial=iteration,
        desc="train",
        unit="it",
        disable=not main_process,
        mininterval=1 if sys.stderr.isatty() else 30,
    )
    running: dict[str, float] = {}
    seen, window_start = 0, time.time()
    # How many corrections a batch gets (0..corrective_clicks), and which of its samples; seeded per rank and
    # resumed iteration.
    corrections_rng = np.random.default_rng([cfg.seed, rank, iteration])
    epoch = iteration * cfg.batch_size * world // max(1, len(dataset))
    model.train()
    while iteration < cfg.iterations:
        if distributed:
            sampler.set_epoch(epoch)
        for x, y, label, clicks in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            label = label.to(device, non_blocking=True)
            n = int(corrections_rng.integers(cfg.corrective_clicks + 1))
            chosen = torch.from_numpy(corrections_rng.random(len(x)) < cfg.corrected_share)
            if n and chosen.any():
                x[chosen] = add_corrections(net, x[chosen], y[chosen], clicks[chosen], spec, n)
            x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
                mask_logit, cls_logit = model(x)
            mask_logit, cls_logit = mask_logit.float(), cls_logit.float()
            seg_loss = cls_loss = torch.zeros((), device=device)
            if cfg.system != "cls":
                seg_loss = binary_focal_loss(mask_logit, y, cfg.focal_gamma)
                if cfg.jaccard_weight:
                    seg_loss = seg_loss + cfg.jaccard_weight * soft_jaccard_loss(mask_logit, y)
            if cfg.system != "seg":
                cls_loss = cfg.cls_weight * alpha_focal_loss(
                    cls_logit, label, alpha, cfg.focal_gamma, cfg.label_smoothing
                )
            loss = seg_loss + cls_loss
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            iteration += 1
            seen += len(x) * world
            for k, v in (("loss", loss.detach()), ("seg_loss", seg_loss.detach()), ("cls_loss", cls_loss.detach())):
                running[k] = 0.9 * running.get(k, v.item()) + 0.1 * v.item()
            if main_process:
                bar.update(1)
                bar.set_postfix(loss=f"{running['loss']:.4f}", img_s=f"{seen / (time.time() - window_start):.1f}")
            is_last = iteration >= cfg.iterations
            if main_process and (iteration % cfg.val_every == 0 or is_last):
                row = {
                    "iteration": iteration,
                    "epoch": epoch,
                    "lr": scheduler.get_last_lr()[0],
                    "images_per_s": seen / (time.time() - window_start),
                    "elapsed_s": elapsed_before + time.time() - start,
                    **running,
                }
                if val_cases:
                    net.eval()
                    row.update(validate(net, cfg, val_cases, cfg.seed))
                    net.train()
                    if row["val_score"] > best:
                        best = row["val_score"]
                        checkpoint(best_path)
                bar.write(log.write(row))
                seen, window_start = 0, time.time()
            if main_process and (iteration % cfg.checkpoint_every == 0 or is_last):
                checkpoint(last_path)
            if is_last:
                break
        epoch += 1
    bar.close()
    if main_process and not best_path.exists():
        checkpoint(best_path)
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return best_path


def cli_main(args: argparse.Namespace) -> int:
    try:
        cfg = TrainConfig.load(args.config, args.overrides)  # also checks the contract it describes
    except (ValueError, OSError) as exc:
        print(f"liverclick train: bad config: {exc}", file=sys.stderr)
        return 2
    out = args.out or Path("runs") / Path(args.config).stem
    try:
        best = train(cfg, out)
    except ManifestError as exc:
        print(f"liverclick train: {exc}\n(set skip_bad_rows=true to train on the good rows)", file=sys.stderr)
        return 2
    if _dist_env()[0] == 0:
        print(f"done: best checkpoint {best}; log {out / 'log.csv'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``torchrun -m training.train``."""
    parser = argparse.ArgumentParser(prog="python -m training.train")
    add_train_arguments(parser)
    return cli_main(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
