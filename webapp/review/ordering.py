"""The model's first answer for a case, how unsure it is, and the order cases are served in.

Uncertainty, in [0, 1], is the mean of two parts (MONAI Label's active learning serves the most uncertain
sample next; here the model's own two kinds of doubt):

- the class: ``(1 - max p) / (1 - 1/K)`` of the model's class probabilities (calibrated when the model carries
  a calibration), 0 when it is sure, 1 when all K classes are equally likely;
- the outline: ``1 - mean Jaccard`` between the outline of the first prompt and those of JITTERED prompts
  jittered as a hand would (each click moved within CLICK_JITTER of the outline's equivalent radius, each box
  side within BOX_JITTER of its length): an outline that changes when the click moves a little is unstable.

Orders: ``manifest`` (as listed), ``random`` (a permutation seeded by the session's seed), ``uncertain`` (most
uncertain first; ties in manifest order).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from core.metrics import jaccard
from core.prompt import Box, Click, Prompt
from core.runtime import Predictor, PreparedImage

ORDERINGS = ("manifest", "random", "uncertain")
JITTERED = 4
CLICK_JITTER = 0.25
BOX_JITTER = 0.1
MIN_JITTER_PX = 2.0


@dataclass(frozen=True)
class FirstAnswer:
    """The model's outline and classes for a case's first prompt, and how unsure it is of them."""

    mask: np.ndarray
    class_probs: dict[str, float]
    class_uncertainty: float
    outline_instability: float

    @property
    def uncertainty(self) -> float:
        return (self.class_uncertainty + self.outline_instability) / 2

    @property
    def predicted_class(self) -> str:
        return max(self.class_probs, key=self.class_probs.get)


def class_uncertainty(probs: dict[str, float]) -> float:
    """(1 - max p) / (1 - 1/K): 0 for a sure answer, 1 for a uniform one."""
    k = len(probs)
    return float((1.0 - max(probs.values())) / (1.0 - 1.0 / k))


def first_answer(predictor: Predictor, prepared: PreparedImage, prompt: Prompt, seed) -> FirstAnswer:
    """The model's answer to ``prompt`` (replayed as the viewer shows it when the case is opened) and its
    uncertainty (the jitter drawn from ``seed``)."""
    base = predictor.replay(prepared, prompt)
    rng = np.random.default_rng(seed)
    radius = max(MIN_JITTER_PX, CLICK_JITTER * np.sqrt(base.area_px / np.pi))
    agreement = [
        jaccard(
            predictor.replay(prepared, jittered(prompt, radius, prepared.width, prepared.height, rng)).mask, base.mask
        )
        for _ in range(JITTERED)
    ]
    return FirstAnswer(
        base.mask, base.class_probs, class_uncertainty(base.class_probs), 1.0 - float(np.mean(agreement))
    )


def jittered(prompt: Prompt, radius: float, width: int, height: int, rng: np.random.Generator) -> Prompt:
    """``prompt`` as an unsteady hand gives it: every click within ``radius`` pixels of where it was, every box
    side within BOX_JITTER of its length (a box that would collapse is kept), all inside the image."""
    out = []
    for item in prompt.inputs:
        if isinstance(item, Click):
            angle, r = rng.uniform(0, 2 * np.pi), radius * np.sqrt(rng.uniform())
            x = float(np.clip(round(item.x + r * np.cos(angle)), 0, width - 1))
            y = float(np.clip(round(item.y + r * np.sin(angle)), 0, height - 1))
            out.append(Click(x, y, item.positive))
            continue
        dx, dy = BOX_JITTER * (item.x1 - item.x0), BOX_JITTER * (item.y1 - item.y0)
        x0, x1 = (float(np.clip(round(v + rng.uniform(-dx, dx)), 0, width - 1)) for v in (item.x0, item.x1))
        y0, y1 = (float(np.clip(round(v + rng.uniform(-dy, dy)), 0, height - 1)) for v in (item.y0, item.y1))
        out.append(Box(x0, y0, x1, y1) if x1 - x0 >= 1 and y1 - y0 >= 1 else item)
    return Prompt(tuple(out))


def serving_order(uncertainties: list[float], ordering: str, seed: int) -> list[int]:
    """The case indices (manifest order) in the order they are served."""
    n = len(uncertainties)
    if ordering == "manifest":
        return list(range(n))
    if ordering == "random":
        return [int(i) for i in np.random.default_rng(seed).permutation(n)]
    if ordering == "uncertain":
        return sorted(range(n), key=lambda i: (-uncertainties[i], i))
    raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
