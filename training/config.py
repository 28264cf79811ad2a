"""Training configuration: one YAML file per experiment, ``key=value`` overrides on the command line."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from core.contract import InputSpec

# The paper's three systems (Fig. 2), by name, in the order reproduce trains them.
SYSTEMS = {"seg": "segmentation only", "cls": "classification only", "joint": "joint"}


@dataclass
class TrainConfig:
    # what to train
    system: str = "joint"  # one of SYSTEMS
    data: str = ""  # manifest CSV (relative paths: to the config file's folder)
    classes: list[str] = field(default_factory=lambda: ["benign", "malignant"])
    malignant: list[str] = field(default_factory=lambda: ["malignant"])
    width: float = 0.25
    input_size: int = 256
    zoom_context: float = 0.0  # 0: whole image (paper); >= 1: zoom-in around the prompt
    zoom_min_side: int = 64
    click_encoding: str = "distance"  # distance (paper) | disk (RITM) | both
    distance_truncation: float = 255.0  # model pixels (paper: 255)
    disk_radius: float = 5.0  # model pixels
    previous_mask: bool = False  # an input channel with the model's previous outline (RITM, SAM)
    cls_pool: str = "avg"  # avg (paper) | mask (pool stage-5 features under the predicted mask)
    # schedule (paper: SGD 0.9, wd 5e-4, 150k iterations, lr 5e-4 then 5e-5 for the second half)
    iterations: int = 150_000
    batch_size: int = 16
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 5e-4
    lr_schedule: str = "step"  # step (x0.1 at half) | cosine
    warmup: int = 0
    momentum: float = 0.9
    weight_decay: float = 5e-4
    # losses
    focal_gamma: float = 2.0
    jaccard_weight: float = 0.0  # soft-Jaccard term added to the pixelwise focal loss (0 = paper)
    cls_weight: float = 1.0
    balance_classes: bool = True  # alpha of the focal loss from inverse class frequency
    label_smoothing: float = 0.0  # of the class targets (0 = paper)
    cls_dropout: float = 0.3  # before the classifier's last layer
    cls_lr_factor: float = 1.0  # the classifier head's learning rate relative to lr
    # inputs
    sequences_per_image: int = 15  # distinct simulated click sequences per image (paper)
    click_mix: list[float] = field(default_factory=lambda: [0.4, 0.3, 0.3])  # box, one click, random clicks
    whole_image_fraction: float = 0.3  # zoom-in: share of clicks-only samples seen whole (the first pass)
    # model in the loop (RITM): up to this many no-grad passes per batch, each adding the clicker's next click
    # at the model's own error and feeding its outline forward (0 = the paper's independent prompts)
    corrective_clicks: int = 0
    corrected_share: float = 1.0  # the share of each batch's samples given those corrections (RITM: all)
    # after the corrections, the share of corrected samples whose previous outline is blanked: the network also
    # learns to outline from the clicks alone, as for a first click (0: never)
    previous_dropout: float = 0.0
    shift_augment: float = 0.0  # probability of each acquisition-shift transform (gain, TGC, speckle, blur, ...)
    hflip: bool = True
    scale: list[float] = field(default_factory=lambda: [0.8, 1.25])
    brightness: float = 0.15  # +- fraction of the range
    contrast: float = 0.2  # +- fraction
    cls_patch_context: float = 2.0  # classification only: patch side / lesion side (paper: twice)
    # running
    skip_bad_rows: bool = False  # False: a bad manifest row stops training, naming it; True: skip and report
    seed: int = 0
    num_workers: int = 1
    val_every: int = 500
    val_max_images: int = 0  # 0 = the whole validation split
    checkpoint_every: int = 250
    init_from: str = ""  # checkpoint whose early encoder layers start this run (paper: breast US)
    init_stages: int = 5  # how many encoder stages init_from copies
    init_heads: bool = False  # init_from also copies the segmentation and classification heads (fine-tuning)
    amp: bool = True  # float16 autocast, on CUDA only
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N; under torchrun, the local rank's GPU
    threads: int = 0  # torch CPU threads (0: all the cores this process may use)

    @classmethod
    def load(cls, path: str | Path | None = None, overrides: list[str] | tuple = ()) -> TrainConfig:
        data: dict = {}
        if path is not None:
            path = Path(path)
            data = yaml.safe_load(path.read_text()) or {}
            if data.get("data") and not Path(data["data"]).is_absolute():
                data["data"] = str((path.parent / data["data"]).resolve())
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ValueError(f"unknown config keys {unknown} in {path}")
        cfg = cls(**data)
        for item in overrides:
            key, sep, value = item.partition("=")
            if not sep or key not in known:
                raise ValueError(f"override {item!r} must be KEY=VALUE with KEY one of the config fields")
            setattr(cfg, key, yaml.safe_load(value) if value else "")
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.system not in SYSTEMS:
            raise ValueError(f"system must be one of {', '.join(SYSTEMS)}, got {self.system!r}")
        if self.optimizer not in ("sgd", "adamw") or self.lr_schedule not in ("step", "cosine"):
            raise ValueError("optimizer must be sgd|adamw and lr_schedule step|cosine")
        shares = (self.corrected_share, self.shift_augment, self.previous_dropout)
        if self.corrective_clicks < 0 or not all(0 <= share <= 1 for share in shares):
            raise ValueError(
                "corrective_clicks must be >= 0, corrected_share, shift_augment and previous_dropout in [0, 1]"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("label_smoothing must lie in [0, 1)")
        self.spec()  # raises ContractError for an invalid contract

    def spec(self) -> InputSpec:
        """The input contract this configuration trains for."""
        context = self.cls_patch_context if self.system == "cls" else self.zoom_context
        return InputSpec(
            input_size=int(self.input_size),
            class_names=tuple(self.classes),
            malignant_classes=tuple(self.malignant),
            zoom_context=float(context),
            zoom_min_side=int(self.zoom_min_side),
            click_encoding=self.click_encoding,
            distance_truncation=float(self.distance_truncation),
            disk_radius=float(self.disk_radius),
            previous_mask=bool(self.previous_mask),
        )

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``liverclick train`` and of ``torchrun -m training.train``."""
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=None, help="run folder (checkpoints, logs)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="override config entries")
