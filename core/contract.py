"""The model's input contract: the one place that says how an image and a prompt become a tensor.

Training stores it in every checkpoint, export writes it into the ONNX metadata, and the runtime
reads it back from there and refuses a model whose contract it does not understand.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

SPEC_VERSION = 1
SPEC_METADATA_KEY = "liverclick.input_spec"
CARD_METADATA_KEY = "liverclick.model_card"

CHANNELS = ("image", "fg_distance", "bg_distance")
RESIZE_POLICIES = ("letterbox",)


class ContractError(ValueError):
    """A model's contract is missing, malformed or of a version this code does not understand."""


@dataclass(frozen=True)
class InputSpec:
    """How a grayscale image and its clicks are turned into the model's (3, S, S) input.

    - The image (or, with zoom-in, a square context region around the prompt) is letterboxed to
      S x S: aspect kept, scaled so its longer side is S, zero padding right and bottom.
    - Channel 0 is ``(gray / 255 - image_mean) / image_std``.
    - Channels 1 and 2 are the Euclidean distances, in model-input pixels, to the nearest
      foreground / background click, truncated at ``distance_truncation`` and divided by it
      (so 1.0 means "no click near"; a channel without clicks is all 1.0).
    - The mask output is a probability; pixels at or above ``mask_threshold`` are lesion.
    - Zoom-in: when ``zoom_context`` > 0 the model sees a square region around the prompt whose
      side is ``zoom_context`` times the longer side of the prompt's extent (a box, or a first
      whole-image prediction for clicks only), at least ``zoom_min_side`` original pixels.
    """

    input_size: int
    class_names: tuple[str, ...]
    malignant_classes: tuple[str, ...]
    image_mean: float = 0.5
    image_std: float = 0.25
    distance_truncation: float = 255.0
    mask_threshold: float = 0.5
    zoom_context: float = 0.0
    zoom_min_side: int = 64
    resize: str = "letterbox"
    channels: tuple[str, ...] = CHANNELS
    spec_version: int = field(default=SPEC_VERSION)

    def __post_init__(self) -> None:
        # Accept lists (from JSON or YAML) but store tuples so the spec stays hashable and frozen.
        for name in ("class_names", "malignant_classes", "channels"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        problems = []
        if self.spec_version != SPEC_VERSION:
            problems.append(f"spec_version {self.spec_version} is not the supported {SPEC_VERSION}")
        if not isinstance(self.input_size, int) or not 32 <= self.input_size <= 4096 or self.input_size % 32:
            problems.append(f"input_size must be a multiple of 32 in [32, 4096], got {self.input_size!r}")
        if len(self.class_names) < 2 or len(set(self.class_names)) != len(self.class_names):
            problems.append(f"class_names must be at least two distinct names, got {self.class_names}")
        unknown = set(self.malignant_classes) - set(self.class_names)
        if unknown:
            problems.append(f"malignant_classes {sorted(unknown)} are not in class_names")
        if not self.malignant_classes or set(self.malignant_classes) == set(self.class_names):
            problems.append("malignant_classes must name some, but not all, classes")
        if self.image_std <= 0:
            problems.append("image_std must be positive")
        if self.distance_truncation <= 0:
            problems.append("distance_truncation must be positive")
        if not 0.0 < self.mask_threshold < 1.0:
            problems.append("mask_threshold must lie in (0, 1)")
        if self.zoom_context != 0 and self.zoom_context < 1.0:
            problems.append("zoom_context must be 0 (whole image) or >= 1")
        if self.resize not in RESIZE_POLICIES:
            problems.append(f"resize policy {self.resize!r} is not one of {RESIZE_POLICIES}")
        if self.channels != CHANNELS:
            problems.append(f"channels must be {CHANNELS}, got {self.channels}")
        if problems:
            raise ContractError("invalid input spec: " + "; ".join(problems))

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def malignant_indices(self) -> tuple[int, ...]:
        return tuple(i for i, name in enumerate(self.class_names) if name in self.malignant_classes)

    @property
    def zoom_in(self) -> bool:
        return self.zoom_context > 0

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | None) -> InputSpec:
        if not text:
            raise ContractError("the model carries no input spec (metadata key missing or empty)")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ContractError(f"the input spec is not valid JSON: {exc}") from None
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> InputSpec:
        if not isinstance(data, dict):
            raise ContractError("the input spec must be a JSON object")
        version = data.get("spec_version")
        if version != SPEC_VERSION:
            raise ContractError(
                f"input spec version {version!r} is not understood by this liverclick "
                f"(supports version {SPEC_VERSION}); upgrade liverclick or re-export the model"
            )
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ContractError(f"input spec has unknown fields {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ContractError(f"input spec is incomplete: {exc}") from None
