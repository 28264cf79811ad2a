"""The paper's three systems (Fig. 2): segmentation only, classification only, joint.

- Encoder: VGG16 with batch norm, 13 conv layers in 5 stages, with a width multiplier (x0.25 runs
  on a laptop CPU, x1.0 is the paper's size).
- Segmentation head, DRIU-style (Maninis et al. 2016): a small conv on stages 2-5, bilinear
  upsampling to the input size, concatenation, 1x1 conv to one logit. Because the 1x1 conv and the
  bilinear upsampling are both linear, each side's slice of the 1x1 weights is applied at the side's
  own resolution and one channel per side is upsampled and summed: the same function with the same
  parameters, several times cheaper (tests/test_losses_networks.py checks the equivalence).
- Classification head: fully connected layers on pooled stage-5 features; with ``cls_pool="mask"``
  the pooling is also weighted by the predicted mask (beyond the paper), so that the classifier
  looks at the lesion the clicks select.

Every system maps (N, C_in, S, S) -> (mask logits (N, 1, S, S), class logits (N, C)); C_in is the
contract's channel count (3 for the paper's image and two distance maps), and classification only reads
the image channel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .config import SYSTEMS

VGG16_STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))
SIDE_CHANNELS = 16


def _conv_bn_relu(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VGG16BN(nn.Module):
    """VGG16-BN feature extractor returning the outputs of the five stages."""

    def __init__(self, in_channels: int = 3, width: float = 1.0):
        super().__init__()
        self.channels = [max(8, int(round(c * width))) for c, _ in VGG16_STAGES]
        stages, cin = [], in_channels
        for cout, (_, n) in zip(self.channels, VGG16_STAGES, strict=True):
            stages.append(nn.Sequential(*[_conv_bn_relu(cin if i == 0 else cout, cout) for i in range(n)]))
            cin = cout
        self.stages = nn.ModuleList(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            if i:
                x = F.max_pool2d(x, 2)
            x = stage(x)
            feats.append(x)
        return feats


class DRIUHead(nn.Module):
    """Side outputs of stages 2-5 -> one mask logit at the input resolution."""

    def __init__(self, channels: list[int]):
        super().__init__()
        self.sides = nn.ModuleList(_conv_bn_relu(c, SIDE_CHANNELS) for c in channels[1:])
        # The 1x1 conv over the concatenated sides, kept as one weight so it stays the paper's layer.
        self.fuse = nn.Conv2d(SIDE_CHANNELS * len(self.sides), 1, 1)

    def forward(self, feats: list[torch.Tensor], size: tuple[int, int]) -> torch.Tensor:
        weights = self.fuse.weight.split(SIDE_CHANNELS, dim=1)
        out = self.fuse.bias.view(1, 1, 1, 1)
        for side, feat, w in zip(self.sides, feats[1:], weights, strict=True):
            low = F.conv2d(side(feat), w)  # this side's slice of the 1x1 conv, at its own resolution
            out = out + F.interpolate(low, size=size, mode="bilinear", align_corners=False)
        return out


class ClassifierHead(nn.Module):
    """Pooled stage-5 features -> FC -> ReLU -> dropout -> FC -> class logits."""

    def __init__(self, channels: int, num_classes: int, pool: str = "avg", hidden: int = 256, dropout: float = 0.3):
        super().__init__()
        if pool not in ("avg", "mask"):
            raise ValueError(f"cls_pool must be 'avg' or 'mask', got {pool!r}")
        self.pool = pool
        features = channels * (2 if pool == "mask" else 1)
        self.fc = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, feat: torch.Tensor, mask_logit: torch.Tensor | None = None) -> torch.Tensor:
        pooled = feat.mean(dim=(2, 3))
        if self.pool == "mask":
            weight = torch.sigmoid(F.adaptive_avg_pool2d(mask_logit, feat.shape[-2:]))
            lesion = (feat * weight).sum(dim=(2, 3)) / weight.sum(dim=(2, 3)).clamp_min(1e-3)
            pooled = torch.cat([pooled, lesion], dim=1)
        return self.fc(pooled)


class ClickNet(nn.Module):
    """One of the three systems on a shared VGG16-BN encoder."""

    def __init__(
        self,
        system: str = "joint",
        num_classes: int = 2,
        width: float = 0.25,
        cls_pool: str = "avg",
        in_channels: int = 3,
        cls_dropout: float = 0.3,
    ):
        super().__init__()
        if system not in SYSTEMS:
            raise ValueError(f"system must be one of {', '.join(SYSTEMS)}, got {system!r}")
        if system != "joint" and cls_pool == "mask":
            cls_pool = "avg"
        self.system, self.num_classes = system, num_classes
        # Classification only sees the image patch, not the clicks (paper, Fig. 2b).
        self.encoder = VGG16BN(in_channels=1 if system == "cls" else in_channels, width=width)
        ch = self.encoder.channels
        self.seg_head = DRIUHead(ch) if system in ("joint", "seg") else None
        self.cls_head = (
            ClassifierHead(ch[-1], num_classes, cls_pool, dropout=cls_dropout) if system in ("joint", "cls") else None
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        feats = self.encoder(x[:, :1] if self.system == "cls" else x)
        # A missing branch answers "nothing segmented" / uniform class probabilities.
        segmenting = self.seg_head is not None
        mask_logit = self.seg_head(feats, (h, w)) if segmenting else x.new_full((n, 1, h, w), -20.0)
        if self.cls_head is not None:
            cls_logit = self.cls_head(feats[-1], mask_logit if segmenting else None)
        else:
            cls_logit = x.new_zeros((n, self.num_classes))
        return mask_logit, cls_logit


def build_network(cfg) -> ClickNet:
    return ClickNet(cfg.system, len(cfg.classes), cfg.width, cfg.cls_pool, cfg.spec().in_channels, cfg.cls_dropout)


class WithProbabilities(nn.Module):
    """Folds sigmoid and the calibrated softmax (logits / temperature) into the network: what is exported
    and what evaluation runs."""

    def __init__(self, net: nn.Module, temperature: float = 1.0):
        super().__init__()
        self.net = net
        self.temperature = float(temperature)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mask_logit, cls_logit = self.net(x)
        return torch.sigmoid(mask_logit), torch.softmax(cls_logit / self.temperature, dim=1)
