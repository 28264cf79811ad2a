"""From a grayscale image, a prompt and the previous outline to the model's (C, S, S) input, as the contract says.

Training (after augmentation), evaluation and the runtime all build their inputs here.
"""

from __future__ import annotations

import numpy as np

from .contract import InputSpec
from .distance import distance_maps
from .geometry import Letterbox
from .prompt import Prompt


def encode_image(model_gray: np.ndarray, spec: InputSpec) -> np.ndarray:
    """(S, S) uint8 letterboxed grayscale -> normalised float32 channel 0."""
    return ((model_gray.astype(np.float32) / 255.0 - spec.image_mean) / spec.image_std).astype(np.float32)


def encode_clicks(fg_model: np.ndarray, bg_model: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Model-space click positions -> the contract's click channels (distance / truncation, and/or disks)."""
    reach = max(spec.distance_truncation, spec.disk_radius)
    dist = distance_maps(fg_model, bg_model, spec.input_size, reach)
    parts = []
    if spec.click_encoding in ("distance", "both"):
        parts.append(np.minimum(dist, np.float32(spec.distance_truncation)) / np.float32(spec.distance_truncation))
    if spec.click_encoding in ("disk", "both"):
        parts.append((dist <= spec.disk_radius).astype(np.float32))
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


def prompt_channels(prompt: Prompt, view: Letterbox, spec: InputSpec) -> np.ndarray:
    """The click channels of a prompt seen through ``view``."""
    return encode_clicks(view.points_to_model(prompt.points(True)), view.points_to_model(prompt.points(False)), spec)


def previous_channel(previous: np.ndarray | None, view: Letterbox) -> np.ndarray:
    """(1, S, S) float32: the previous outline (image-size bool mask) seen through ``view``; zeros if none."""
    if previous is None:
        return np.zeros((1, view.size, view.size), np.float32)
    return (view.image_to_model(previous, np.float32) >= 0.5).astype(np.float32)[None]


def model_input(
    gray: np.ndarray, prompt: Prompt, view: Letterbox, spec: InputSpec, previous: np.ndarray | None = None
) -> np.ndarray:
    """(C, S, S) float32 input for one image region, prompt and (with a previous-mask contract) previous outline."""
    image = encode_image(view.image_to_model(gray), spec)
    return assemble(image, prompt_channels(prompt, view, spec), previous, view, spec)


def assemble(
    image: np.ndarray, clicks: np.ndarray, previous: np.ndarray | None, view: Letterbox, spec: InputSpec
) -> np.ndarray:
    """Stack the encoded image, the click channels and (when the contract has it, warped only then) the previous
    outline."""
    parts = [image[None], clicks] + ([previous_channel(previous, view)] if spec.previous_mask else [])
    return np.concatenate(parts).astype(np.float32, copy=False)
