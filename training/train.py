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

from core.manifest import ManifestError, read_manifest
from core.runtime import cpu_threads

from .checkpoint import init_from_checkpoint, save_checkpoint
from .config import TrainConfig, add_train_arguments
from .corrections import add_corrections
from .dataset import ClickDataset
from .losses import alpha_focal_loss, binary_focal_loss, class_alpha, soft_jaccard_loss
from .networks import build_network
from .validation import validate

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


def training_device(cfg: TrainConfig, local_rank: int = 0) -> torch.device:
    """The device a process trains on: ``cfg.device`` (auto: CUDA when available); under torchrun, CUDA is the
    local rank's GPU. Made current here, before any process group is created (NCCL binds to it)."""
    wanted = cfg.device if cfg.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(wanted)
    if device.type == "cuda":
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


class Trainer:
    """One training run, in the steps a reader can follow: set-up (device and process group, data, network,
    optimiser, resumption), :meth:`step`, :meth:`validate_and_log` and :meth:`checkpoint`; :meth:`fit` loops.

    ``last.pt`` (with the optimiser's state) is rewritten every ``checkpoint_every`` iterations and a run
    resumes from it; ``best.pt`` (weights, contract and config) keeps the best validation score.
    """

    def __init__(self, cfg: TrainConfig, out_dir: Path):
        self.cfg, self.out_dir = cfg, out_dir
        self.rank, self.world, local_rank = _dist_env()
        self.device = training_device(cfg, local_rank)
        self.owns_group = self.world > 1 and not dist.is_initialized()
        if self.owns_group:
            cuda = self.device.type == "cuda"
            dist.init_process_group("nccl" if cuda else "gloo", device_id=self.device if cuda else None)
        torch.set_num_threads(cfg.threads or max(1, cpu_threads() // self.world))
        torch.manual_seed(cfg.seed * 1000 + self.rank)
        self.main = self.rank == 0
        out_dir.mkdir(parents=True, exist_ok=True)
        self.spec = cfg.spec()
        self._set_up_data()
        self._set_up_network()
        self.iteration, self.best, self.elapsed_before, self.start = 0, -1.0, 0.0, time.time()
        self.last_path, self.best_path = out_dir / "last.pt", out_dir / "best.pt"
        if self.last_path.exists():
            self._resume()
        self.log = RunLog(out_dir) if self.main else None
        # How many corrections a batch gets (0..corrective_clicks), and which of its samples; seeded per rank
        # and resumed iteration.
        self.corrections_rng = np.random.default_rng([cfg.seed, self.rank, self.iteration])

    def _set_up_data(self) -> None:
        cfg = self.cfg
        cases, problems = read_manifest(cfg.data, labels=tuple(cfg.classes), skip_bad=cfg.skip_bad_rows)
        if self.main and problems:
            print(f"skipped {len(problems)} bad manifest rows:\n  " + "\n  ".join(problems), file=sys.stderr)
        train_cases = [c for c in cases if c.split == "train"]
        self.val_cases = [c for c in cases if c.split == "val"][: cfg.val_max_images or None]
        if not train_cases:
            raise ValueError(f"{cfg.data} has no rows with split 'train'")
        self.dataset = ClickDataset(train_cases, cfg, self.spec)
        if self.world > 1:
            self.sampler = DistributedSampler(
                self.dataset, num_replicas=self.world, rank=self.rank, shuffle=True, seed=cfg.seed
            )
        else:
            self.sampler = RandomSampler(self.dataset)
        self.loader = DataLoader(
            self.dataset,
            batch_size=cfg.batch_size,
            sampler=self.sampler,
            num_workers=cfg.num_workers,
            drop_last=len(self.dataset) >= cfg.batch_size * self.world,
            persistent_workers=cfg.num_workers > 0,
            pin_memory=self.device.type == "cuda",
        )

    def _set_up_network(self) -> None:
        cfg = self.cfg
        net = build_network(cfg)
        if cfg.init_from:
            n = init_from_checkpoint(net, cfg.init_from, cfg.init_stages, self.spec, cfg.init_heads)
            if self.main:
                print(f"initialised {n} tensors from {cfg.init_from}")
        self.net = net.to(self.device, memory_format=torch.channels_last)
        cuda = self.device.type == "cuda"
        self.model = (
            DistributedDataParallel(self.net, device_ids=[self.device.index] if cuda else None)
            if self.world > 1
            else self.net
        )
        head = {id(p) for p in (net.cls_head.parameters() if net.cls_head is not None else ())}
        trained = [p for p in net.parameters() if p.requires_grad]
        params = [
            {"params": [p for p in trained if id(p) not in head], "lr": cfg.lr},
            {"params": [p for p in trained if id(p) in head], "lr": cfg.lr * cfg.cls_lr_factor},
        ]
        if cfg.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lambda it: lr_factor(cfg, it))
        self.amp = cfg.amp and cuda
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        counts = Counter(self.dataset.labels)
        n_classes = len(cfg.classes)
        alpha = class_alpha([counts[i] for i in range(n_classes)]) if cfg.balance_classes else torch.ones(n_classes)
        self.alpha = alpha.to(self.device)

    def _resume(self) -> None:
        state = torch.load(self.last_path, map_location=self.device, weights_only=False)
        self.net.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.iteration, self.best = state["iteration"], state.get("best", -1.0)
        self.elapsed_before = state.get("elapsed_s", 0.0)
        if self.main:
            print(f"resumed from {self.last_path} at iteration {self.iteration}")

    def step(self, x: torch.Tensor, y: torch.Tensor, label: torch.Tensor, clicks: torch.Tensor) -> dict:
        """One optimiser step on a batch (after the model-in-the-loop corrections); returns its losses."""
        cfg, device = self.cfg, self.device
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        label = label.to(device, non_blocking=True)
        n = int(self.corrections_rng.integers(cfg.corrective_clicks + 1))
        chosen = torch.from_numpy(self.corrections_rng.random(len(x)) < cfg.corrected_share)
        if n and chosen.any():
            on_device = chosen.to(device)
            x[on_device] = add_corrections(self.net, x[on_device], y[on_device], clicks[chosen], self.spec, n)
            if cfg.previous_dropout and self.spec.previous_mask:
                blank = chosen & torch.from_numpy(self.corrections_rng.random(len(x)) < cfg.previous_dropout)
                x[blank.to(device), -1] = 0
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.float16, enabled=self.amp):
            mask_logit, cls_logit = self.model(x)
        mask_logit, cls_logit = mask_logit.float(), cls_logit.float()
        seg_loss = cls_loss = torch.zeros((), device=device)
        if cfg.system != "cls":
            seg_loss = binary_focal_loss(mask_logit, y, cfg.focal_gamma)
            if cfg.jaccard_weight:
                seg_loss = seg_loss + cfg.jaccard_weight * soft_jaccard_loss(mask_logit, y)
        if cfg.system != "seg":
            cls_loss = cfg.cls_weight * alpha_focal_loss(
                cls_logit, label, self.alpha, cfg.focal_gamma, cfg.label_smoothing
            )
        loss = seg_loss + cls_loss
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.iteration += 1
        return {"loss": loss.detach(), "seg_loss": seg_loss.detach(), "cls_loss": cls_loss.detach()}

    def validate_and_log(self, row: dict) -> str | None:
        """Validate on every rank (when there are validation images), keep the best, log ``row`` on rank 0."""
        if self.val_cases:
            row.update(validate(self.net, self.cfg, self.val_cases, self.cfg.seed))
            if row["val_score"] > self.best and self.iteration > 0:
                self.best = row["val_score"]
                if self.main:
                    self.checkpoint(self.best_path, with_optimizer=False)
        return self.log.write(row) if self.main else None

    def checkpoint(self, path: Path, with_optimizer: bool = True) -> None:
        """Write the network (and for resuming, the optimiser and schedule) with the contract and config."""
        resume = (
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
            if with_optimizer
            else {}
        )
        elapsed = self.elapsed_before + time.time() - self.start
        save_checkpoint(path, self.net, self.cfg, iteration=self.iteration, best=self.best, elapsed_s=elapsed, **resume)

    def fit(self) -> Path:
        """Train to ``cfg.iterations``; returns the best checkpoint."""
        cfg = self.cfg
        if self.iteration == 0 and self.val_cases:  # the untrained network: what training must beat
            line = self.validate_and_log({"iteration": 0, "epoch": 0, "lr": cfg.lr})
            if line:
                print(line + " (untrained)")
        bar = tqdm(
            total=cfg.iterations,
            initial=self.iteration,
            desc="train",
            unit="it",
            disable=not self.main,
            mininterval=1 if sys.stderr.isatty() else 30,
        )
        running: dict[str, float] = {}
        seen, window_start = 0, time.time()
        epoch = self.iteration * cfg.batch_size * self.world // max(1, len(self.dataset))
        self.model.train()
        while self.iteration < cfg.iterations:
            if self.world > 1:
                self.sampler.set_epoch(epoch)
            for batch in self.loader:
                losses = self.step(*batch)
                seen += len(batch[0]) * self.world
                for key, value in losses.items():
                    running[key] = 0.9 * running.get(key, value.item()) + 0.1 * value.item()
                bar.update(1)
                bar.set_postfix(loss=f"{running['loss']:.4f}", img_s=f"{seen / (time.time() - window_start):.1f}")
                done = self.iteration >= cfg.iterations
                if self.iteration % cfg.val_every == 0 or done:
                    row = {
                        "iteration": self.iteration,
                        "epoch": epoch,
                        "lr": self.scheduler.get_last_lr()[0],
                        "images_per_s": seen / (time.time() - window_start),
                        "elapsed_s": self.elapsed_before + time.time() - self.start,
                        **running,
                    }
                    line = self.validate_and_log(row)
                    if line:
                        bar.write(line)
                    seen, window_start = 0, time.time()
                if self.main and (self.iteration % cfg.checkpoint_every == 0 or done):
                    self.checkpoint(self.last_path)
                if done:
                    break
            epoch += 1
        bar.close()
        if self.main and not self.best_path.exists():
            self.checkpoint(self.best_path, with_optimizer=False)
        return self.best_path

    def close(self) -> None:
        """Leave the process group as found: destroy it only if this run created it."""
        if self.owns_group:
            dist.barrier()
            dist.destroy_process_group()


def train(cfg: TrainConfig, out_dir: Path) -> Path:
    """Train as configured, resuming from ``out_dir/last.pt`` if present; returns the best checkpoint."""
    trainer = Trainer(cfg, out_dir)
    try:
        return trainer.fit()
    finally:
        trainer.close()


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
