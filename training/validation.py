"""Validation during training: the evaluation protocol on the validation split, shared among the ranks.

Under a process group every rank validates its share of the images and receives every record, so no rank
waits on another's validation (past NCCL's timeout) and all agree on the score that picks ``best.pt``.
"""

from __future__ import annotations

import numpy as np
import torch.distributed as dist

from core.manifest import Case

from .checkpoint import TorchPredictor
from .config import TrainConfig
from .evaluation.protocol import evaluate_image
from .evaluation.stats import auroc
from .networks import ClickNet

VAL_INPUTS = 5  # simulated inputs per image and mode, as the evaluation protocol
VAL_CLICKS = 5  # RITM clicks per image for the Jaccard after 5 clicks (previous-outline models)


def _process_group() -> tuple[int, int]:
    """(rank, world size) of the default process group, (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def validate(model: ClickNet, cfg: TrainConfig, cases: list[Case], seed: int = 0) -> dict:
    """Validation with the evaluation protocol: mean Jaccard over the five two-click and five one-click
    inputs per image, the benign/malignant AUROC of the two-click inputs averaged per image, and for a
    model trained with corrections the Jaccard after five clicks of RITM's clicker.

    The network is run where it is, in eval mode, and left as it was found (device, dtype, mode). Under a
    process group every rank validates its share of the images (rank 0's batch-norm statistics broadcast
    first) and all receive every record, so no rank waits on another's validation and all agree on the score.
    """
    rank, world = _process_group()
    if world > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer, 0)
    predictor = TorchPredictor(model, cfg.spec())
    modes = ("two-click",) if cfg.system == "cls" else ("two-click", "one-click")
    clicks = cfg.system != "cls" and (cfg.previous_mask or cfg.corrective_clicks > 0)
    settings = dict(modes=modes, seed=seed, n_inputs=VAL_INPUTS, run_noc=clicks, disk_radius=None)
    records = [evaluate_image(predictor, c, **settings, max_clicks=VAL_CLICKS) for c in cases[rank::world]]
    if world > 1:
        shares: list = [None] * world
        dist.all_gather_object(shares, records)
        records = [r for share in shares for r in share]
    out = {}
    if cfg.system != "cls":
        out["val_ji_two_click"] = float(np.mean([r["two_click"]["mean_ji"] for r in records]))
        out["val_ji_one_click"] = float(np.mean([r["one_click"]["mean_ji"] for r in records]))
    if clicks:
        out["val_ji_5_clicks"] = float(np.mean([r["noc"]["ji_after_click"][-1] for r in records]))
    truth = np.array([r["label"] in cfg.malignant for r in records])
    if cfg.system != "seg" and 0 < truth.sum() < len(truth):
        scores = np.array([np.mean(r["two_click"]["malignant_prob"]) for r in records])
        out["val_auroc"] = float(auroc(truth, scores))
    out["val_score"] = float(np.mean(list(out.values()))) if out else 0.0
    return out
