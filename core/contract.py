"""The model's input contract: the one place that says how an image and a prompt become a tensor.

Training stores it in every checkpoint, export writes it into the ONNX metadata, and the runtime
reads it back from there and refuses a model whose contract it does not understand.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

SPEC_VERSION = 2
READABLE_VERSIONS = (1, 2)  # version 1 (the paper's three channels) is read as version 2 with its defaults
SPEC_METADATA_KEY = "liverclick.input_spec"
CARD_METADATA_KEY = "liverclick.model_card"

PAPER_CHANNELS = ("image", "fg_distance", "bg_distance")
CLICK_ENCODINGS = {  # the click channels each encoding adds after the image
    "distance": ("fg_distance", "bg_distance"),
    "disk": ("fg_disk", "bg_disk"),
    "both": ("fg_distance", "bg_distance", "fg_disk", "bg_disk"),
}
RESIZE_POLICIES = ("letterbox",)


class ContractError(ValueError):
    """A model's contract is missing, malformed or of a version this code does not understand."""


@dataclass(frozen=True)
class InputSpec:
    """How a grayscale image, its clicks and the previous outline become the model's (C, S, S) input.

    - The image (or, with zoom-in, a square context region around the prompt) is letterboxed to
      S x S: aspect kept, scaled so its longer side is S, zero padding right and bottom.
    - Channel 0 is ``(gray / 255 - image_mean) / image_std``.
    - The click channels follow ``click_encoding``: ``distance`` (the paper) gives the Euclidean
      distances, in model-input pixels, to the nearest foreground / background click, truncated at
      ``distance_truncation`` and divided by it (1.0 means "no click near"); ``disk`` gives 1.0 within
      ``disk_radius`` model pixels of a click and 0.0 elsewhere (RITM); ``both`` gives the distance
      channels, then the disks.
    - With ``previous_mask`` a last channel holds the model's previous outline (1.0 inside), all zeros
      for a first click or a new box (RITM, SAM's mask prompt).
    - The mask output is a probability; pixels at or above ``mask_threshold`` are lesion.
    - Zoom-in: when ``zoom_context`` > 0 the model sees a square region around the prompt whose
      side is ``zoom_context`` times the longer side of the prompt's extent (a box; the previous
      outline with the clicks; or, for a first click, a first whole-image prediction), at least
      ``zoom_min_side`` original pixels.
    - ``temperature`` is the classifier's calibration (class logits are divided by it before the
      softmax, inside the exported model); ``operating_points`` are thresholds on the malignant
      probability chosen on validation, as ``(name, threshold)`` pairs (e.g. ``sensitivity_90``).
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
    click_encoding: str = "distance"
    disk_radius: float = 5.0
    previous_mask: bool = False
    temperature: float = 1.0
    operating_points: tuple[tuple[str, float], ...] = ()
    resize: str = "letterbox"
    spec_version: int = field(default=SPEC_VERSION)

    def __post_init__(self) -> None:
        # Accept lists (from JSON or YAML) but store tuples so the spec stays hashable and frozen.
        for name in ("class_names", "malignant_classes"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        points = self.operating_points.items() if isinstance(self.operating_points, dict) else self.operating_points
        object.__setattr__(self, "operating_points", tuple((str(n), float(t)) for n, t in points))
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
        if self.click_encoding not in CLICK_ENCODINGS:
            problems.append(f"click_encoding must be one of {tuple(CLICK_ENCODINGS)}, got {self.click_encoding!r}")
        if self.disk_radius <= 0:
            problems.append("disk_radius must be positive")
        if self.temperature <= 0:
            problems.append("temperature must be positive")
        if any(not 0.0 <= t <= 1.0 for _, t in self.operating_points):
            problems.append("operating point thresholds must lie in [0, 1]")
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

    @property
    def channels(self) -> tuple[str, ...]:
        """The names of the input channels, in order."""
        return ("image", *CLICK_ENCODINGS[self.click_encoding], *(("previous_mask",) if self.previous_mask else ()))

    @property
    def in_channels(self) -> int:
        return len(self.channels)

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
        if version not in READABLE_VERSIONS:
            raise ContractError(
                f"input spec version {version!r} is not understood by this liverclick "
                f"(reads versions {', '.join(map(str, READABLE_VERSIONS))}); upgrade liverclick or re-export the model"
            )
        if version == 1:  # the paper's three channels, named explicitly
            data = dict(data, spec_version=SPEC_VERSION)
            channels = tuple(data.pop("channels", PAPER_CHANNELS))
            if channels != PAPER_CHANNELS:
                raise ContractError(f"a version 1 input spec must have the channels {PAPER_CHANNELS}, got {channels}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ContractError(f"input spec has unknown fields {unknown}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise ContractError(f"input spec is incomplete: {exc}") from None
