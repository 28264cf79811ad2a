"""Training samples: an image, a simulated prompt and the model's view of both, augmented.

Augmentation (paper): horizontal flip, scaling, brightness/contrast; beyond the paper, acquisition
shifts (:mod:`training.shifts`). Flip and intensity act on the image and mask before the clicks are
drawn; scaling acts through the region the model sees, so the image, mask and clicks stay consistent
because all three go through the same ``Letterbox``. Each sample also carries its clicks in model
pixels, so that training with the model in the loop can add corrections (:mod:`training.corrections`).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from core.contract import InputSpec
from core.framing import Extent, frame_for, needs_first_pass, points_extent
from core.geometry import Letterbox
from core.manifest import Case
from core.preprocess import model_input
from core.prompt import Prompt

from .clicks import ClickConfig, Lesion, as_lesion, training_prompt
from .config import TrainConfig
from .shifts import random_shift

MAX_CLICKS = 48  # clicks a sample can hold: its prompt's (at most 15) and the corrections added in training


class CaseView:
    """One case in one orientation, as sampling reads it: the image, its mean grey and the :class:`Lesion`
    (pixels, box, band, core), kept for the whole run instead of recomputed per sample."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, clicks: ClickConfig):
        self.image, self.lesion, self.clicks = image, Lesion(mask), clicks
        self.mean = float(image.mean())
        # Computed here, before the data workers fork, so that they share them rather than each recompute.
        self.lesion.band(clicks)
        self.lesion.core(clicks)

    def flipped(self) -> CaseView:
        """The case mirrored left to right (the paper's horizontal flip)."""
        image, mask = self.image[:, ::-1], self.lesion.mask[:, ::-1]
        return CaseView(np.ascontiguousarray(image), np.ascontiguousarray(mask), self.clicks)


class ClickDataset(Dataset):
    """Cases held in memory; each item is (input (C, S, S), mask (1, S, S), class index, clicks (MAX_CLICKS, 3)).

    The clicks are (x, y, 1 for foreground / 0 for background) in model pixels, NaN-padded; the
    previous-outline channel, if the contract has one, is zero (a first prompt). What depends on the case
    alone is computed once per case and orientation (:class:`CaseView`); a sample is the same, bit for bit,
    as one computed from the image and mask afresh.
    """

    def __init__(self, cases: list[Case], cfg: TrainConfig, spec: InputSpec):
        self.cfg, self.spec = cfg, spec
        self.cases = cases
        self.clicks = ClickConfig(mix=tuple(cfg.click_mix))
        self.views = []  # per case: as stored, and mirrored when the config flips
        for case in cases:
            view = CaseView(*case.load(), self.clicks)
            self.views.append((view, view.flipped() if cfg.hflip else None))
        self.labels = [cfg.classes.index(c.label) for c in cases]

    def __len__(self) -> int:
        return len(self.cases)

    def __getitem__(self, idx: int):
        # torch seeds every worker differently; draw this sample's randomness from it.
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
        sequence = int(rng.integers(self.cfg.sequences_per_image))
        prompt_rng = np.random.default_rng([self.cfg.seed, idx, sequence])
        x, y, clicks = self.sample(idx, rng, prompt_rng)
        return torch.from_numpy(x), torch.from_numpy(y), self.labels[idx], torch.from_numpy(clicks)

    def sample(self, idx: int, rng: np.random.Generator, prompt_rng: np.random.Generator):
        cfg = self.cfg
        view = self.views[idx][int(cfg.hflip and rng.random() < 0.5)]
        gray, mean = view.image, view.mean
        if cfg.shift_augment:
            gray = random_shift(gray, rng, cfg.shift_augment)
            mean = view.mean if gray is view.image else float(gray.mean())
        contrast = 1 + rng.uniform(-cfg.contrast, cfg.contrast)
        shift = 255 * rng.uniform(-cfg.brightness, cfg.brightness)
        # Brightness and contrast as a table of the 256 grey levels: the same float32 arithmetic per pixel.
        levels = np.arange(256, dtype=np.float32)
        gray = cv2.LUT(gray, np.clip((levels - mean) * contrast + mean + shift, 0, 255).astype(np.uint8))
        prompt = training_prompt(view.lesion, prompt_rng, self.clicks)
        frame = self.frame(view.lesion, prompt, rng)
        x = model_input(gray, prompt, frame, self.spec)
        y = frame.image_to_model(view.lesion.mask, np.float32) >= 0.5
        clicks = np.full((MAX_CLICKS, 3), np.nan, np.float32)
        given = prompt.all_clicks()
        if given:
            clicks[: len(given), :2] = frame.points_to_model(np.array([[c.x, c.y] for c in given]))
            clicks[: len(given), 2] = [float(c.positive) for c in given]
        return x, y[None].astype(np.float32), clicks

    def frame(self, mask: np.ndarray | Lesion, prompt: Prompt, rng: np.random.Generator) -> Letterbox:
        """The region the model sees, framed as at run time (core.framing), then scale-jittered."""
        lesion = as_lesion(mask)
        h, w = lesion.mask.shape
        scale = float(np.exp(rng.uniform(*np.log(self.cfg.scale))))
        if self.cfg.system == "cls":  # the paper's ideal patch: the frame of the lesion's own outline
            base = frame_for(Prompt(), w, h, self.spec, outline=lesion.box)
        else:
            outline = None
            if needs_first_pass(prompt, self.spec) and rng.random() >= self.cfg.whole_image_fraction:
                outline = first_pass_outline(lesion, prompt, rng)
            base = frame_for(prompt, w, h, self.spec, outline)
        return _rescaled(base, 1 / scale, rng, lesion)


def first_pass_outline(lesion: Lesion, prompt: Prompt, rng: np.random.Generator) -> Extent:
    """What the runtime's first pass would find: the reference's tight box, each side jittered by up to
    15% of its length, together with the lesion clicks."""
    x0, y0, x1, y1 = lesion.box
    jit = rng.uniform(-0.15, 0.15, 4) * np.array([x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    corners = (np.array([x0, y0, x1, y1]) + jit).reshape(2, 2)
    return points_extent(np.vstack([corners, prompt.points(True)]))


def _rescaled(frame: Letterbox, factor: float, rng: np.random.Generator, lesion: Lesion) -> Letterbox:
    """The frame's region grown (factor > 1) or shrunk around a random centre that keeps the lesion in view."""
    x0, y0, x1, y1 = frame.region
    rw, rh = max(8, round((x1 - x0) * factor)), max(8, round((y1 - y0) * factor))
    bx0, by0, bx1, by1 = lesion.box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2

    def start(centre: float, size: int, lo: int, hi: int) -> int:
        # Keep the lesion [lo, hi] inside [s, s + size) when it fits; otherwise centre on it.
        s = centre - size / 2
        s = min(max(s, hi + 1 - size), lo) if size > hi - lo + 1 else (lo + hi + 1) / 2 - size / 2
        return int(round(s + rng.uniform(-0.05, 0.05) * size))

    nx0, ny0 = start(cx, rw, bx0, bx1), start(cy, rh, by0, by1)
    return Letterbox(frame.image_width, frame.image_height, frame.size, (nx0, ny0, nx0 + rw, ny0 + rh))
