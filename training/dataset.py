"""Training samples: an image, a simulated prompt and the model's view of both, augmented.

Augmentation (paper): horizontal flip, scaling, brightness/contrast; beyond the paper, acquisition
shifts (:mod:`training.shifts`). Flip and intensity act on the image and mask before the clicks are
drawn; scaling acts through the region the model sees, so the image, mask and clicks stay consistent
because all three go through the same ``Letterbox``. Each sample also carries its clicks in model
pixels, so that training with the model in the loop can add corrections (:mod:`training.corrections`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from core.contract import InputSpec
from core.framing import Extent, frame_for, needs_first_pass, points_extent
from core.geometry import Letterbox
from core.manifest import Case
from core.preprocess import model_input
from core.prompt import Prompt

from .clicks import ClickConfig, tight_box, training_prompt
from .config import TrainConfig
from .shifts import random_shift

MAX_CLICKS = 48  # clicks a sample can hold: its prompt's (at most 15) and the corrections added in training


class ClickDataset(Dataset):
    """Cases held in memory; each item is (input (C, S, S), mask (1, S, S), class index, clicks (MAX_CLICKS, 3)).

    The clicks are (x, y, 1 for foreground / 0 for background) in model pixels, NaN-padded; the
    previous-outline channel, if the contract has one, is zero (a first prompt).
    """

    def __init__(self, cases: list[Case], cfg: TrainConfig, spec: InputSpec):
        self.cfg, self.spec = cfg, spec
        self.cases = cases
        loaded = [c.load() for c in cases]
        self.images = [im for im, _ in loaded]
        self.masks = [m for _, m in loaded]
        self.labels = [cfg.classes.index(c.label) for c in cases]
        self.clicks = ClickConfig(mix=tuple(cfg.click_mix))

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, idx: int):
        # torch seeds every worker differently; draw this sample's randomness from it.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        sequence = int(rng.integers(self.cfg.sequences_per_image))
        prompt_rng = np.random.default_rng([self.cfg.seed, idx, sequence])
        x, y, clicks = self.sample(self.images[idx], self.masks[idx], rng, prompt_rng)
        return torch.from_numpy(x), torch.from_numpy(y), self.labels[idx], torch.from_numpy(clicks)

    def sample(self, gray: np.ndarray, mask: np.ndarray, rng: np.random.Generator, prompt_rng: np.random.Generator):
        cfg = self.cfg
        if cfg.hflip and rng.random() < 0.5:
            gray, mask = np.ascontiguousarray(gray[:, ::-1]), np.ascontiguousarray(mask[:, ::-1])
        if cfg.shift_augment:
            gray = random_shift(gray, rng, cfg.shift_augment)
        contrast = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
        shift = 255 * rng.uniform(-cfg.brightness, cfg.brightness)
        mean = float(gray.mean())
        gray = np.clip((gray.astype(np.float32) - mean) * contrast + mean + shift, 0, 255).astype(np.uint8)
        prompt = training_prompt(mask, prompt_rng, self.clicks)
        frame = self.frame(mask, prompt, rng)
        x = model_input(gray, prompt, frame, self.spec)
        y = frame.image_to_model(mask.astype(np.float32)) >= 0.5
        clicks = np.full((MAX_CLICKS, 3), np.nan, np.float32)
        points = [(*frame.points_to_model(np.array([[c.x, c.y]]))[0], float(c.positive)) for c in prompt.all_clicks()]
        clicks[: len(points)] = points
        return x, y[None].astype(np.float32), clicks

    def frame(self, mask: np.ndarray, prompt: Prompt, rng: np.random.Generator) -> Letterbox:
        """The region the model sees, framed as at run time (core.framing), then scale-jittered."""
        h, w = mask.shape
        scale = float(np.exp(rng.uniform(*np.log(self.cfg.scale))))
        if self.cfg.system == "cls":  # the paper's ideal patch: the frame of the lesion's own outline
            base = frame_for(Prompt(), w, h, self.spec, outline=tight_box(mask))
        else:
            outline = None
            if needs_first_pass(prompt, self.spec) and rng.random() >= self.cfg.whole_image_fraction:
                outline = first_pass_outline(mask, prompt, rng)
            base = frame_for(prompt, w, h, self.spec, outline)
        return _rescaled(base, 1 / scale, rng, mask)


def first_pass_outline(mask: np.ndarray, prompt: Prompt, rng: np.random.Generator) -> Extent:
    """What the runtime's first pass would find: the reference's tight box, each side jittered by up to
    15% of its length, together with the lesion clicks."""
    x0, y0, x1, y1 = tight_box(mask)
    jit = rng.uniform(-0.15, 0.15, 4) * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    corners = (np.array([x0, y0, x1, y1]) + jit).reshape(2, 2)
    return points_extent(np.vstack([corners, prompt.points(True)]))


def _rescaled(frame: Letterbox, factor: float, rng: np.random.Generator, mask: np.ndarray) -> Letterbox:
    """The frame's region grown (factor > 1) or shrunk around a random centre that keeps the lesion in view."""
    x0, y0, x1, y1 = frame.region
    rw, rh = max(8, round((x1 - x0) * factor)), max(8, round((y1 - y0) * factor))
    bx0, by0, bx1, by1 = tight_box(mask)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def start(centre: float, size: int, lo: int, hi: int) -> int:
        # Keep the lesion [lo, hi] inside [s, s + size) when it fits; otherwise centre on it.
        s = centre - size / 2
        s = min(max(s, hi + 1 - size), lo) if size > hi - lo + 1 else (lo + hi + 1) / 2 - size / 2
        return int(round(s + rng.uniform(-0.05, 0.05) * size))

    nx0, ny0 = start(cx, rw, bx0, bx1), start(cy, rh, by0, by1)
    return Letterbox(frame.image_width, frame.image_height, frame.size, (nx0, ny0, nx0 + rw, ny0 + rh))
