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
    logits: torch.Tensor, target: torch.Tensor, alpha: torch.Tensor, gamma: float = 2.0, smoothing: float = 0.0
) -> torch.Tensor:
    """Multi-class alpha-balanced focal loss: mean of -alpha_y sum_c q_c (1 - p_c)^gamma log(p_c), where q is
    the one-hot target of class y smoothed towards uniform by ``smoothing`` (0 gives the paper's
    -alpha_y (1 - p_y)^gamma log p_y)."""
    logp = F.log_softmax(logits, dim=1)
    q = F.one_hot(target, logits.shape[1]).to(logits.dtype) * (1 - smoothing) + smoothing / logits.shape[1]
    per_class = -q * (1 - logp.exp()) ** gamma * logp
    return (alpha.to(logits.dtype)[target] * per_class.sum(dim=1)).mean()


def class_alpha(counts: list[int]) -> torch.Tensor:
    """Inverse-frequency weights normalised to mean 1 (a class with no sample gets weight 1)."""
    c = torch.tensor([max(n, 1) for n in counts], dtype=torch.float32)
    w = c.sum() / c
    return w / w.mean()
