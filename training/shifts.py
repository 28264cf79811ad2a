"""Acquisition shifts: what another scanner, probe or setting does to a B-mode image.

One implementation of each transform, used twice: training draws random parameters from
:data:`TRAINING_RANGES` (augmentation), and the stress test applies the fixed :data:`STRESS_SHIFTS`,
whose parameters are chosen apart from (mostly beyond) the training ranges, so it measures how a
model extrapolates rather than what it was shown. Every transform maps an (H, W) uint8 image to an
(H, W) uint8 image of the same size and leaves the lesion where it is (the mask stays valid).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np


def gain(image: np.ndarray, factor: float) -> np.ndarray:
    """Overall gain: every echo scaled by ``factor`` (clipped at white)."""
    return _u8(image.astype(np.float32) * factor)


def depth_gain(image: np.ndarray, top: float, bottom: float) -> np.ndarray:
    """Time-gain compensation set differently: a gain rising or falling linearly from ``top`` to ``bottom``."""
    ramp = np.linspace(top, bottom, image.shape[0], dtype=np.float32)[:, None]
    return _u8(image.astype(np.float32) * ramp)


def gamma(image: np.ndarray, g: float) -> np.ndarray:
    """Another grey map: ``255 (x / 255) ** g``."""
    return _u8(255.0 * (image.astype(np.float32) / 255.0) ** g)


def dynamic_range(image: np.ndarray, factor: float) -> np.ndarray:
    """Dynamic range: contrast about the mean grey, ``factor`` < 1 compresses (flat), > 1 expands."""
    x = image.astype(np.float32)
    return _u8((x - x.mean()) * factor + x.mean())


def speckle(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Multiplicative, spatially correlated speckle of relative strength ``sigma``."""
    rng = np.random.default_rng(seed)
    field = cv2.GaussianBlur(rng.normal(size=image.shape).astype(np.float32), (0, 0), 1.0)
    field /= field.std() + 1e-6
    return _u8(image.astype(np.float32) * np.exp(sigma * field))


def noise(image: np.ndarray, sigma: float, seed: int) -> np.ndarray:
    """Additive electronic noise, ``sigma`` grey levels."""
    rng = np.random.default_rng(seed)
    return _u8(image.astype(np.float32) + rng.normal(0, sigma, image.shape))


def blur(image: np.ndarray, sigma: float) -> np.ndarray:
    """A softer probe or focus: Gaussian blur of ``sigma`` pixels."""
    return image if sigma <= 0 else cv2.GaussianBlur(image, (0, 0), sigma)


def resolution(image: np.ndarray, scale: float) -> np.ndarray:
    """Lower resolution: down to ``scale`` of the size and back up."""
    h, w = image.shape
    small = cv2.resize(image, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """Lossy storage: JPEG at ``quality``."""
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if ok else image


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(x, 0, 255).astype(np.uint8)


Shift = Callable[[np.ndarray], np.ndarray]

# Training ranges (augmentation): each transform is applied with probability ``shift_augment``.
TRAINING_RANGES = {
    "gain": (0.75, 1.3),
    "depth_gain": (0.7, 1.3),  # the gain at the top and at the bottom, each drawn from this range
    "gamma": (0.75, 1.35),
    "dynamic_range": (0.75, 1.25),
    "speckle": (0.0, 0.25),
    "noise": (0.0, 8.0),
    "blur": (0.0, 1.2),
    "resolution": (0.5, 1.0),
    "jpeg": (35, 95),
}


def random_shift(image: np.ndarray, rng: np.random.Generator, p: float) -> np.ndarray:
    """Training augmentation: each transform with probability ``p``, parameters drawn from TRAINING_RANGES."""
    r = TRAINING_RANGES

    def u(name):
        return float(rng.uniform(*r[name]))

    steps: list[Shift] = [
        lambda x: gain(x, u("gain")),
        lambda x: depth_gain(x, u("depth_gain"), u("depth_gain")),
        lambda x: gamma(x, u("gamma")),
        lambda x: dynamic_range(x, u("dynamic_range")),
        lambda x: blur(x, u("blur")),
        lambda x: resolution(x, u("resolution")),
        lambda x: speckle(x, u("speckle"), int(rng.integers(2**31))),
        lambda x: noise(x, u("noise"), int(rng.integers(2**31))),
        lambda x: jpeg(x, int(rng.integers(*r["jpeg"]))),
    ]
    for step in steps:
        if rng.random() < p:
            image = step(image)
    return image


# The stress test: fixed shifts, parameters apart from the training ranges (most beyond them).
STRESS_SHIFTS: dict[str, tuple[str, Shift]] = {
    "gain_low": ("gain x0.6 (training 0.75-1.3)", lambda x: gain(x, 0.6)),
    "gain_high": ("gain x1.5 (training 0.75-1.3)", lambda x: gain(x, 1.5)),
    "depth_gain": (
        "depth gain 1.4 at the top to 0.55 at the bottom (training 0.7-1.3)",
        lambda x: depth_gain(x, 1.4, 0.55),
    ),
    "gamma_low": ("gamma 0.6 (training 0.75-1.35)", lambda x: gamma(x, 0.6)),
    "gamma_high": ("gamma 1.6 (training 0.75-1.35)", lambda x: gamma(x, 1.6)),
    "compressed": ("dynamic range x0.6 (training 0.75-1.25)", lambda x: dynamic_range(x, 0.6)),
    "speckle": ("speckle 0.35 (training up to 0.25)", lambda x: speckle(x, 0.35, 1)),
    "noise": ("noise 12 grey levels (training up to 8)", lambda x: noise(x, 12.0, 2)),
    "blur": ("blur sigma 2 px (training up to 1.2)", lambda x: blur(x, 2.0)),
    "low_resolution": ("resolution x0.4 (training 0.5-1)", lambda x: resolution(x, 0.4)),
    "jpeg": ("JPEG quality 20 (training 35-95)", lambda x: jpeg(x, 20)),
}
