"""From a grayscale image and a prompt to the model's (3, S, S) input, as the contract says.

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
    """Model-space click positions -> channels 1 and 2 (distance / truncation, in [0, 1])."""
    maps = distance_maps(fg_model, bg_model, spec.input_size, spec.distance_truncation)
    return maps / np.float32(spec.distance_truncation)


def prompt_channels(prompt: Prompt, frame: Letterbox, spec: InputSpec) -> np.ndarray:
    """The two distance channels of a prompt seen through ``frame``."""
    return encode_clicks(frame.points_to_model(prompt.points(True)), frame.points_to_model(prompt.points(False)), spec)


def model_input(gray: np.ndarray, prompt: Prompt, frame: Letterbox, spec: InputSpec) -> np.ndarray:
    """(3, S, S) float32 input for one image region and prompt."""
    image = encode_image(frame.image_to_model(gray), spec)
    return np.concatenate([image[None], prompt_channels(prompt, frame, spec)])
