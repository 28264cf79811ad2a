"""liverclick runtime: contract, prompts, geometry, distance maps, ONNX inference, metrics.

Research tool, not for diagnosis. This package never imports torch.
"""

from .contract import ContractError, InputSpec
from .geometry import Letterbox
from .imageio import ImageError, UltrasoundImage, load_image
from .metrics import dice, jaccard
from .prompt import Box, Click, Prompt, PromptError
from .runtime import Prediction, PreparedImage, Segmenter, load_model

__all__ = [
    "Box",
    "Click",
    "ContractError",
    "ImageError",
    "InputSpec",
    "Letterbox",
    "Prediction",
    "PreparedImage",
    "Prompt",
    "PromptError",
    "Segmenter",
    "UltrasoundImage",
    "dice",
    "jaccard",
    "load_image",
    "load_model",
]
__version__ = "0.1.0"
