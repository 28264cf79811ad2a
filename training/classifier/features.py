"""The classifier's inputs, computed once: the pooled stage-5 feature of every lesion under many simulated prompts.

With the encoder and the segmentation head fixed, the classification head sees one vector per prompt: the
stage-5 features pooled over the whole view and under the predicted outline (``ClassifierHead``'s input). Each
lesion is run through the runtime's own predictor (framing, zoom, previous outline) under boxes, single clicks,
corrections by RITM's clicker after a box, and boxes on images put through random acquisition shifts, and the
vector the head received on the pass that gave the shown outline is kept. Fitting a head on them then costs
seconds, so its recipe can be chosen by repeated grouped cross-validation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from core.manifest import Case
from core.prompt import Prompt

from ..checkpoint import TorchPredictor
from ..clicks import Lesion, case_seed, jittered_box, next_click, one_click
from ..shifts import random_shift

# Prompts per lesion, by kind. "box" are the evaluation's two-click inputs: a lesion's score is read from them.
PROMPTS = {"box": 6, "click": 3, "correction": 3, "shifted_box": 4}
SHIFT_PROBABILITY = 0.5  # each acquisition-shift transform's chance on a shifted image (training uses 0.2)
FEATURE_SEED = 1_000  # far from the evaluation's seeds (0 ...): the cached prompts are not the test inputs


@dataclass
class FeatureSet:
    """Pooled features (one row per prompt) with what each row is: its lesion (index into the per-lesion lists)
    and the prompt's kind; per lesion the case id, label and group."""

    features: np.ndarray  # (N, D) float32
    lesion: np.ndarray  # (N,) int
    kind: np.ndarray  # (N,) str
    case_ids: list[str]
    labels: list[str]
    groups: list[str]
    class_names: list[str]
    malignant: list[str]
    source: dict = field(default_factory=dict)  # the checkpoint and settings the features came from
    splits: list[str] = field(default_factory=list)  # per lesion: its manifest split ("train": the network saw it)

    @property
    def unseen_lesions(self) -> np.ndarray:
        """The lesions the network was not trained on: the only ones whose predictions say how it generalises."""
        return np.flatnonzero(np.asarray(self.splits or [""] * len(self.case_ids)) != "train")

    @property
    def malignant_lesions(self) -> np.ndarray:
        """(L,) bool: each lesion's truth, benign/malignant."""
        return np.isin(self.labels, self.malignant)

    @property
    def class_index(self) -> np.ndarray:
        """(L,) int: each lesion's class among the model's classes."""
        return np.array([self.class_names.index(label) for label in self.labels])

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = ("case_ids", "labels", "groups", "class_names", "malignant", "source", "splits")
        meta = {k: getattr(self, k) for k in keys}
        np.savez_compressed(path, features=self.features, lesion=self.lesion, kind=self.kind, meta=json.dumps(meta))

    @classmethod
    def load(cls, path: Path) -> FeatureSet:
        with np.load(path, allow_pickle=False) as data:
            return cls(data["features"], data["lesion"], data["kind"], **json.loads(str(data["meta"])))


class PooledFeatures:
    """Keeps the input of the classifier's first layer on every pass of the network (a forward pre-hook)."""

    def __init__(self, net: torch.nn.Module):
        self.last: np.ndarray | None = None
        self.hook = net.cls_head.fc[0].register_forward_pre_hook(self._keep)

    def _keep(self, _module, args) -> None:
        self.last = args[0].detach().float().cpu().numpy()

    def close(self) -> None:
        self.hook.remove()


def lesion_features(predictor: TorchPredictor, pooled: PooledFeatures, case: Case, seed: int) -> dict[str, list]:
    """One lesion's pooled features under the prompts of :data:`PROMPTS`, by kind."""
    gray, ref = case.load()
    lesion, rng = Lesion(ref), np.random.default_rng(case_seed(seed, case.case_id))
    prepared = predictor.prepare(gray)
    out: dict[str, list] = {kind: [] for kind in PROMPTS}

    def shown(image, prompt: Prompt, previous=None):
        prediction = predictor.predict(image, prompt, previous)
        return prediction, pooled.last[-1].copy()

    boxes = [jittered_box(lesion, rng) for _ in range(PROMPTS["box"])]
    first = None
    for prompt in boxes:
        prediction, feature = shown(prepared, prompt)
        if first is None:
            first = prompt, prediction
        out["box"].append(feature)
    for _ in range(PROMPTS["click"]):
        out["click"].append(shown(prepared, one_click(lesion, rng))[1])
    prompt, prediction = first
    clicked = np.zeros(ref.shape, bool)
    for _ in range(PROMPTS["correction"]):
        click = next_click(prediction.mask, ref, clicked)
        if click is None:
            break
        clicked[int(click.y), int(click.x)] = True
        prompt = prompt.add_click(click.x, click.y, click.positive)
        prediction, feature = shown(prepared, prompt, prediction.mask)
        out["correction"].append(feature)
    for _ in range(PROMPTS["shifted_box"]):
        shifted = predictor.prepare(random_shift(gray, rng, SHIFT_PROBABILITY))
        out["shifted_box"].append(shown(shifted, jittered_box(lesion, rng))[1])
    return out


def extract(
    predictor: TorchPredictor, cases: list[Case], *, seed: int = FEATURE_SEED, progress: bool = True
) -> FeatureSet:
    """The feature set of ``cases`` (seeded per case: the same rows whatever the order or the other cases)."""
    net = predictor.model.net
    if net.cls_head is None:
        raise ValueError("the network has no classification head")
    pooled = PooledFeatures(net)
    rows, lesions, kinds = [], [], []
    try:
        for i, case in enumerate(tqdm(cases, desc="features", unit="lesion", disable=None if progress else True)):
            for kind, features in lesion_features(predictor, pooled, case, seed).items():
                rows += features
                lesions += [i] * len(features)
                kinds += [kind] * len(features)
    finally:
        pooled.close()
    spec = predictor.spec
    return FeatureSet(
        features=np.stack(rows).astype(np.float32),
        lesion=np.array(lesions),
        kind=np.array(kinds),
        case_ids=[c.case_id for c in cases],
        labels=[c.label for c in cases],
        groups=[c.group for c in cases],
        class_names=list(spec.class_names),
        malignant=list(spec.malignant_classes),
        source={"seed": seed, "prompts": dict(PROMPTS), "shift_probability": SHIFT_PROBABILITY},
        splits=[c.split for c in cases],
    )
