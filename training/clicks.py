"""Simulated user input, seeded: the one module that training and evaluation both draw clicks from.

Everything here returns :class:`core.prompt.Prompt` objects in original-image pixels (numpy only, no
torch), so the distance maps are built by ``core`` exactly as at run time.

- Training (paper): 1-5 foreground pixels inside the lesion, 0-10 background pixels from a band of
  distances around it, mixed with box prompts and single clicks so that every test mode is learned.
- Test (paper): two-click = a box whose corners are jittered around the tight box and enlarged a
  little, turned into 5 clicks; one-click = one pixel inside the lesion.
- Corrections (RITM's clicker, for NoC and for training with the model in the loop): each click at
  the error pixel farthest from the error's border, in whichever of the missed and the wrongly added
  regions reaches deeper.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from core.distance import inner_depth
from core.prompt import Click, Prompt


@dataclass(frozen=True)
class ClickConfig:
    """Parameters of the simulation; lengths are fractions of the lesion's equivalent diameter."""

    max_fg: int = 5
    max_bg: int = 10
    band: tuple[float, float] = (0.05, 0.6)  # background clicks: distance from the lesion
    min_band_px: float = 3.0
    box_jitter: float = 0.1  # corner error, fraction of the tight box's side
    box_enlarge: float = 0.05  # each side pushed out by this fraction of the side
    core_fraction: float = 0.5  # one-click: pixels at least this fraction of the max inner depth
    # Training mix: box (+ up to 2 refining clicks), a single lesion click, the paper's random clicks.
    mix: tuple[float, float, float] = (0.4, 0.3, 0.3)


DEFAULT = ClickConfig()
# The paper's test modes, two-click first (classification is read from it). Users and the command line
# spell them with a hyphen; report keys with an underscore (mode_key, mode_label convert).
MODES = ("two-click", "one-click")


def mode_key(mode: str) -> str:
    """'two-click' -> 'two_click': a mode's key in reports and logs."""
    return mode.replace("-", "_")


def mode_label(key: str) -> str:
    """'two_click' -> 'two-click': a report key as users read it."""
    return key.replace("_", "-")


def case_seed(seed: int, case_id: str) -> int:
    """The seed of one image's simulated inputs: fixed by the run's seed and the case id alone."""
    return (seed << 32) | zlib.crc32(case_id.encode("utf-8"))


class Lesion:
    """A reference outline and the pixel sets click simulation draws from, each computed once, on first use.

    Training draws thousands of prompts from one outline: its pixels, tight box, background band and core
    are the costly part (full-resolution distance transforms and scans) and depend on the outline alone, so
    :class:`training.dataset.ClickDataset` keeps one ``Lesion`` per case and orientation. A pixel set is held
    as flat indices (int32, raster order); every function below also takes a plain mask and draws exactly
    the same clicks from it.
    """

    def __init__(self, mask: np.ndarray):
        self.mask = np.asarray(mask, dtype=bool)
        self._band: dict[tuple, np.ndarray] = {}
        self._core: dict[float, np.ndarray] = {}

    @cached_property
    def pixels(self) -> np.ndarray:
        """The lesion's pixels."""
        return _flat(self.mask)

    @cached_property
    def box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1), inclusive, of the lesion's pixels."""
        if len(self.pixels) == 0:
            raise ValueError("the mask is empty")
        ys, xs = np.divmod(self.pixels[[0, -1]], self.mask.shape[1])
        cols = np.flatnonzero(self.mask.any(axis=0))
        return int(cols[0]), int(ys[0]), int(cols[-1]), int(ys[1])

    @cached_property
    def diameter(self) -> float:
        """The diameter of the disk of the lesion's area."""
        return float(2.0 * np.sqrt(len(self.pixels) / np.pi))

    def band(self, cfg: ClickConfig = DEFAULT) -> np.ndarray:
        """The background pixels whose distance to the lesion lies in the configured band."""
        key = (cfg.band, cfg.min_band_px)
        if key not in self._band:
            outside = cv2.distanceTransform((~self.mask).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
            lo = max(cfg.min_band_px, cfg.band[0] * self.diameter)
            hi = max(lo + cfg.min_band_px, cfg.band[1] * self.diameter)
            self._band[key] = _flat((outside >= lo) & (outside <= hi))
        return self._band[key]

    def core(self, cfg: ClickConfig = DEFAULT) -> np.ndarray:
        """The lesion pixels at least ``core_fraction`` of the deepest point's depth from the border."""
        if cfg.core_fraction not in self._core:
            depth = inner_depth(self.mask)
            self._core[cfg.core_fraction] = _flat(depth >= cfg.core_fraction * depth.max())
        return self._core[cfg.core_fraction]

    def pick(self, rng: np.random.Generator, pixels: np.ndarray, n: int) -> np.ndarray:
        """(k, 2) x, y of n distinct pixels of a set (fewer if it has fewer)."""
        if len(pixels) == 0 or n <= 0:
            return np.empty((0, 2), dtype=np.int64)
        chosen = pixels[rng.choice(len(pixels), size=min(n, len(pixels)), replace=False)].astype(np.int64)
        ys, xs = np.divmod(chosen, self.mask.shape[1])
        return np.column_stack([xs, ys])


def _flat(pixels: np.ndarray) -> np.ndarray:
    return np.flatnonzero(pixels).astype(np.int32)


def as_lesion(mask: np.ndarray | Lesion) -> Lesion:
    return mask if isinstance(mask, Lesion) else Lesion(mask)


def tight_box(mask: np.ndarray | Lesion) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1), inclusive, of the mask's pixels."""
    return as_lesion(mask).box


def random_clicks(mask: np.ndarray | Lesion, rng: np.random.Generator, cfg: ClickConfig = DEFAULT) -> Prompt:
    """The paper's training clicks: 1-5 inside the lesion, 0-10 from the band around it."""
    lesion = as_lesion(mask)
    fg = lesion.pick(rng, lesion.pixels, int(rng.integers(1, cfg.max_fg + 1)))
    bg = lesion.pick(rng, lesion.band(cfg), int(rng.integers(0, cfg.max_bg + 1)))
    return _with_clicks(Prompt(), fg, bg)


def one_click(mask: np.ndarray | Lesion, rng: np.random.Generator, cfg: ClickConfig = DEFAULT) -> Prompt:
    """Test mode one-click: one pixel inside the lesion (drawn from its core, as a user aims)."""
    lesion = as_lesion(mask)
    ((x, y),) = lesion.pick(rng, lesion.core(cfg), 1)
    return Prompt().add_click(x, y, True)


def jittered_box(mask: np.ndarray | Lesion, rng: np.random.Generator, cfg: ClickConfig = DEFAULT) -> Prompt:
    """Test mode two-click: the tight box with each corner off by up to ``box_jitter`` of its side,
    then enlarged by ``box_enlarge`` per side, clipped to the image."""
    lesion = as_lesion(mask)
    h, w = lesion.mask.shape
    x0, y0, x1, y1 = lesion.box
    bw, bh = x1 - x0 + 1, y1 - y0 + 1
    jx = rng.uniform(-cfg.box_jitter, cfg.box_jitter, 2) * bw
    jy = rng.uniform(-cfg.box_jitter, cfg.box_jitter, 2) * bh
    ex, ey = cfg.box_enlarge * bw, cfg.box_enlarge * bh
    bx0 = np.clip(round(x0 + jx[0] - ex), 0, w - 1)
    bx1 = np.clip(round(x1 + jx[1] + ex), 0, w - 1)
    by0 = np.clip(round(y0 + jy[0] - ey), 0, h - 1)
    by1 = np.clip(round(y1 + jy[1] + ey), 0, h - 1)
    if bx1 - bx0 < 1:
        bx0, bx1 = max(0, bx0 - 1), min(w - 1, bx1 + 1)
    if by1 - by0 < 1:
        by0, by1 = max(0, by0 - 1), min(h - 1, by1 + 1)
    return Prompt().add_box(int(bx0), int(by0), int(bx1), int(by1))


def training_prompt(mask: np.ndarray | Lesion, rng: np.random.Generator, cfg: ClickConfig = DEFAULT) -> Prompt:
    """One training prompt from the mix: box (+0-2 refining clicks), a single click, or random clicks."""
    lesion = as_lesion(mask)
    kind = rng.choice(3, p=np.asarray(cfg.mix) / np.sum(cfg.mix))
    if kind == 0:
        prompt = jittered_box(lesion, rng, cfg)
        n_extra = int(rng.integers(0, 3))
        fg = lesion.pick(rng, lesion.pixels, int(rng.binomial(n_extra, 0.5)))
        bg = lesion.pick(rng, lesion.band(cfg), n_extra - len(fg))
        return _with_clicks(prompt, fg, bg)
    if kind == 1:
        if rng.random() < 0.5:
            return one_click(lesion, rng, cfg)
        return _with_clicks(Prompt(), lesion.pick(rng, lesion.pixels, 1), [])
    return random_clicks(lesion, rng, cfg)


def evaluation_prompts(mask: np.ndarray, mode: str, n: int, *, seed: int, case_id: str) -> list[Prompt]:
    """The paper's ``n`` simulated test inputs of one image for ``mode`` ('one-click' or 'two-click'), drawn
    from :func:`case_seed`: an image gets the same inputs whatever else is evaluated with it, and in what order."""
    rng, lesion = np.random.default_rng(case_seed(seed, case_id)), Lesion(mask)
    make = {"one-click": one_click, "two-click": jittered_box}[mode]
    return [make(lesion, rng) for _ in range(n)]


def next_click(pred: np.ndarray, ref: np.ndarray, clicked: np.ndarray | None = None) -> Click | None:
    """RITM's clicker: the next click a user makes to correct ``pred`` towards ``ref``; None if nothing is wrong.

    The false negatives and the false positives each get a distance transform (the image border counts
    as outside); the click goes to the deepest pixel of whichever reaches strictly deeper (a tie goes to
    the false positives: a background click, as in RITM), never onto a pixel already clicked (``clicked``, bool). The
    first click on an empty prediction therefore lands at the lesion's deepest point.
    """
    pred, ref = np.asarray(pred, bool), np.asarray(ref, bool)
    depths = [inner_depth(ref & ~pred), inner_depth(pred & ~ref)]
    if clicked is not None:
        for depth in depths:
            depth[clicked] = 0
    fn, fp = (float(d.max()) for d in depths)
    if max(fn, fp) <= 0:
        return None
    positive = fn > fp
    depth = depths[0 if positive else 1]
    y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)  # the first deepest pixel in raster order
    return Click(float(x), float(y), positive)


def _with_clicks(prompt: Prompt, fg, bg) -> Prompt:
    for x, y in np.asarray(fg).reshape(-1, 2):
        prompt = prompt.add_click(int(x), int(y), True)
    for x, y in np.asarray(bg).reshape(-1, 2):
        prompt = prompt.add_click(int(x), int(y), False)
    return prompt
