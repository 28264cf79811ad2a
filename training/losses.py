"""Losses of the paper (Lin et al. 2017 focal loss): pixelwise for the mask, alpha-balanced for the
class; the joint system sums them. A soft-Jaccard term for the mask is available (beyond the paper)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def binary_focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Mean over pixels of -(1 - p_t)^gamma log(p_t)."""
    ce = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    p_t = torch.exp(-ce)
    return ((1 - p_t) ** gamma * ce).mean()


def soft_jaccard_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """1 - soft IoU per image, averaged over the batch."""
    p = torch.sigmoid(logits).flatten(1)
    t = target.flatten(1)
    inter = (p * t).sum(1)
    union = p.sum(1) + t.sum(1) - inter
    return (1 - (inter + eps) / (union + eps)).mean()


def alpha_focal_loss(
    logits: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor, gamma: float = 2.0
) -> torch.Tensor:
    """Multi-class alpha-balanced focal loss: mean of -alpha_y (1 - p_y)^gamma log(p_y)."""
    logp = F.log_softmax(logits, dim=1).gather(1, target[:, None]).squeeze(1)
    return (-alpha.to(logits.dtype)[target] * (1 - logp.exp()) ** gamma * logp).mean()


def class_alpha(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (a class with no sample gets weight 1)."""
    c = torch.tensor([max(n, 1) for n in counts], dtype=torch.float32)
    w = c.sum() / c
    return w / w.mean()
