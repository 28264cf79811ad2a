"""Synthetic liver phantoms: speckled B-mode-like images with one focal lesion each.

Textbook appearances, four classes:
- cyst: anechoic, sharp and round, posterior acoustic enhancement;
- hemangioma: hyperechoic, homogeneous, well defined, lobulated;
- metastasis: target / bull's-eye, a hypoechoic halo around an iso- to hyperechoic centre;
- HCC: heterogeneous mosaic of nodules, a thin hypoechoic halo (capsule), less regular outline.

For tests, examples and smoke training only: they exercise every 4-class code path and are never
reported as clinical results. Deterministic from the seed. numpy/OpenCV only.
"""

from __future__ import annotations

import cv2
import numpy as np

CLASSES = ("cyst", "hemangioma", "metastasis", "hcc")
MALIGNANT = ("metastasis", "hcc")


def _speckle(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Fully developed speckle: magnitude of a low-passed complex Gaussian field (mean ~1)."""
    field = rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))
    re = cv2.GaussianBlur(field.real, (0, 0), sigmaX=1.8, sigmaY=0.8)
    im = cv2.GaussianBlur(field.imag, (0, 0), sigmaX=1.8, sigmaY=0.8)
    mag = np.hypot(re, im)
    return mag / mag.mean()


def _blob(rng: np.random.Generator, h: int, w: int, cx: float, cy: float, r: float, irregular: float) -> np.ndarray:
    """Boolean mask of an ellipse whose radius is perturbed by a few low Fourier modes."""
    yy, xx = np.mgrid[:h, :w]
    aspect = rng.uniform(0.7, 1.0)
    angle = rng.uniform(0, np.pi)
    dx, dy = xx - cx, yy - cy
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / aspect
    theta, rho = np.arctan2(v, u), np.hypot(u, v)
    radius = np.full_like(theta, r)
    for k in range(2, 6):
        radius += r * irregular * rng.normal() / k * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    return rho <= radius


def make_phantom(label: str, seed: int, size: tuple[int, int] = (288, 384)) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) uint8 image and (H, W) bool lesion mask of one phantom of class ``label``."""
    if label not in CLASSES:
        raise ValueError(f"unknown phantom class {label!r}; one of {CLASSES}")
    rng = np.random.default_rng([seed, CLASSES.index(label)])
    h, w = size
    yy, xx = np.mgrid[:h, :w].astype(np.float64)
    # Parenchyma: echogenicity with slow variation and depth attenuation, inside a convex-probe sector.
    echo = 0.55 + 0.1 * cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), 25) * 8
    echo *= np.exp(-0.9 * yy / h) * rng.uniform(0.9, 1.2)
    apex_y = -0.6 * h
    ang = np.arctan2(xx - w / 2, yy - apex_y)
    dist = np.hypot(xx - w / 2, yy - apex_y)
    sector = (np.abs(ang) < 0.62) & (dist > 0.62 * h) & (dist < 1.62 * h)

    r = rng.uniform(0.05, 0.2) * min(h, w)
    cx = rng.uniform(0.3, 0.7) * w
    cy = rng.uniform(0.25, 0.7) * h
    irregular = {"cyst": 0.03, "hemangioma": 0.12, "metastasis": 0.08, "hcc": 0.2}[label]
    lesion = _blob(rng, h, w, cx, cy, r, irregular)
    inner = cv2.distanceTransform(lesion.astype(np.uint8), cv2.DIST_L2, 5)
    if label == "cyst":
        echo[lesion] *= 0.06
        below = (yy > cy) & (np.abs(xx - cx) < 0.8 * r) & ~lesion
        echo[below] *= 1 + 0.6 * np.exp(-(yy[below] - cy) / (3 * r))
        edge_sigma = 0.6
    elif label == "hemangioma":
        echo[lesion] *= rng.uniform(1.6, 2.1)
        edge_sigma = 1.2
    elif label == "metastasis":
        halo = lesion & (inner < rng.uniform(0.22, 0.35) * r)
        echo[lesion] *= rng.uniform(1.0, 1.4)
        echo[halo] *= 0.3
        edge_sigma = 2.0
    else:  # hcc
        nodules = cv2.resize(rng.uniform(0.6, 1.6, size=(7, 7)), (w, h), interpolation=cv2.INTER_NEAREST)
        shift = cv2.GaussianBlur(rng.normal(size=(h, w)), (0, 0), 6) * 40
        mosaic = cv2.remap(
            nodules.astype(np.float32),
            (xx + shift).astype(np.float32),
            (yy - shift).astype(np.float32),
            cv2.INTER_NEAREST,
            borderMode=cv2.BORDER_REFLECT,
        )
        echo[lesion] *= mosaic[lesion]
        echo[lesion & (inner < 0.1 * r + 1.5)] *= 0.35
        edge_sigma = 1.5
    echo = cv2.GaussianBlur(echo, (0, 0), edge_sigma)
    bmode = echo * _speckle(rng, h, w)
    img = np.log1p(8 * bmode) / np.log1p(8 * 2.5)  # log compression
    img = np.clip(img * 255, 0, 255) * sector
    return img.astype(np.uint8), lesion & sector
