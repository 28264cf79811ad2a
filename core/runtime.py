"""ONNX Runtime inference: load a model with its contract, prepare an image once, predict per prompt.

Shaped like SAM's predictor: :meth:`Segmenter.prepare` does the once-per-image work (grayscale,
letterbox, normalisation) and :meth:`Segmenter.predict` only builds the distance maps, runs the
network and post-processes, so that every click is cheap.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np

from .contract import CARD_METADATA_KEY, SPEC_METADATA_KEY, ContractError, InputSpec
from .framing import correction_extent, frame_for, needs_first_pass, outline_extent
from .geometry import Letterbox
from .imageio import UltrasoundImage, to_gray_uint8
from .models import resolve_model
from .postprocess import lesion_mask
from .preprocess import assemble, encode_image, prompt_channels
from .prompt import Prompt, PromptError

INPUT_NAME = "input"
MASK_OUTPUT = "mask_prob"
CLASS_OUTPUT = "class_probs"
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
# Other model formats: entry points named by a file suffix, ``load(path, provider) -> Predictor``
# (training registers its .pt/.pth checkpoints, run in PyTorch).
MODEL_LOADERS = "liverclick.model_loaders"


@functools.lru_cache(maxsize=1)
def cuda_available() -> bool:
    """True when ONNX Runtime has its CUDA provider *and* a CUDA driver can be loaded.

    Checked without asking ONNX Runtime for CUDA, which logs errors on machines without a GPU.
    """
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return False
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def cpu_threads() -> int:
    """Threads for intra-op parallelism: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


REGIONS_KEPT = 2  # encoded image channels of zoom regions a prepared image keeps (the whole image's besides)


@dataclass(frozen=True)
class PreparedImage:
    """An image with its once-per-image work done: grayscale pixels and the encoded channel of the whole image.

    It also keeps the encoded image channel of the last few zoom views the model saw, so that a prompt seen
    through a view again (a replay, an undo and redo) does not crop, resize and normalise it again.
    """

    gray: np.ndarray
    whole: Letterbox  # the view of the whole image
    image_channel: np.ndarray
    pixel_spacing_mm: tuple[float, float] | None = None
    regions: dict = field(default_factory=dict, compare=False, repr=False)

    def channel(self, view: Letterbox, spec: InputSpec) -> np.ndarray:
        """The encoded image channel of what ``view`` shows."""
        if view == self.whole:
            return self.image_channel
        channel = self.regions.pop(view.region, None)
        if channel is None:
            channel = encode_image(view.image_to_model(self.gray), spec)
        self.regions[view.region] = channel  # most recent last
        while len(self.regions) > REGIONS_KEPT:
            self.regions.pop(next(iter(self.regions)), None)
        return channel

    @property
    def width(self) -> int:
        return self.whole.image_width

    @property
    def height(self) -> int:
        return self.whole.image_height


@dataclass(frozen=True)
class Prediction:
    mask: np.ndarray  # (H, W) bool, at the image's own size
    class_probs: dict[str, float]
    malignant_prob: float
    region: tuple[int, int, int, int]  # the image region the model saw: x0, y0, x1, y1 with exclusive ends
    timings_ms: dict[str, float] = field(default_factory=dict)
    operating_points: tuple[tuple[str, float], ...] = ()  # the model's thresholds on malignant_prob (contract)

    @property
    def area_px(self) -> int:
        return int(np.count_nonzero(self.mask))

    @property
    def predicted_class(self) -> str:
        return max(self.class_probs, key=self.class_probs.get)


class Predictor(ABC):
    """Prompt -> mask and class, for any network that follows the contract.

    Every predictor has its contract (``spec``), its model card (``card``: name, version, ...), the
    ``provider`` it runs on (an ONNX Runtime execution provider, or e.g. ``pytorch-cpu``) and :meth:`run`
    (the raw network); everything around the network (letterbox, distance maps, zoom-in, post-processing) is
    here, so that an ONNX model and a PyTorch checkpoint are evaluated through exactly the same steps.
    """

    spec: InputSpec
    card: dict
    provider: str

    @abstractmethod
    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw network: (N, C, S, S) inputs -> (N, S, S) mask probabilities, (N, C) class probabilities."""

    # --- description ------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return str(self.card.get("name") or "unnamed model")

    @property
    def version(self) -> str:
        return str(self.card.get("version", "unknown"))

    # --- inference --------------------------------------------------------------------------
    def prepare(self, image: np.ndarray | UltrasoundImage) -> PreparedImage:
        """Once per image: grayscale, letterbox the whole image, normalise."""
        spacing = None
        if isinstance(image, UltrasoundImage):
            spacing, image = image.pixel_spacing_mm, image.pixels
        gray = to_gray_uint8(image)
        whole = Letterbox.whole(gray.shape[1], gray.shape[0], self.spec.input_size)
        return PreparedImage(gray, whole, encode_image(whole.image_to_model(gray), self.spec), spacing)

    def predict(
        self,
        image: PreparedImage | np.ndarray | UltrasoundImage,
        prompt: Prompt,
        previous: np.ndarray | None = None,
    ) -> Prediction:
        """Segment and classify the lesion the prompt's inputs in force point at; the mask is at the image's size.

        ``previous`` is the outline shown before the prompt's last input (an (H, W) mask), or None for a
        first click; after a box it is not used (a box starts a new object). It is one network pass: under
        zoom-in the model looks around the box, or around the previous outline and the clicks; only a first
        click without either needs a whole-image pass first.
        """
        prepared = image if isinstance(image, PreparedImage) else self.prepare(image)
        return self._predict(prepared, prompt.validate(prepared.width, prepared.height), previous)

    def replay(
        self, image: PreparedImage | np.ndarray | UltrasoundImage, prompt: Prompt, previous: np.ndarray | None = None
    ) -> Prediction:
        """What the viewer shows after the prompt's last input, for a prompt that is an ordered history.

        Given ``previous`` (the outline before the last input) it is one pass; otherwise the inputs in force are
        replayed as the viewer reaches them (:meth:`replay_steps`): what came before the last box does not
        change its outline, so it is not replayed.
        """
        prepared = image if isinstance(image, PreparedImage) else self.prepare(image)
        prompt.validate(prepared.width, prepared.height)
        if previous is not None:
            return self._predict(prepared, prompt, previous)
        ((_, last),) = deque(self._walk(prepared, Prompt(prompt.in_force)), maxlen=1)  # every step runs
        return last

    def replay_steps(self, prepared: PreparedImage, prompt: Prompt) -> Iterator[tuple[Prompt, Prediction | None]]:
        """Each step of an ordered history as the viewer reaches it: (the history so far, what it shows). One pass
        per input, each fed the outline before it (none after a box); background clicks before any lesion click
        show nothing (None) until one comes."""
        return self._walk(prepared, prompt.check_inputs(prepared.width, prepared.height))

    def _walk(self, prepared: PreparedImage, prompt: Prompt) -> Iterator[tuple[Prompt, Prediction | None]]:
        """:meth:`replay_steps` of a prompt already checked."""
        prediction = None
        for k in range(1, len(prompt.inputs) + 1):
            part = Prompt(prompt.inputs[:k])
            if len(part.points(True)):
                prediction = self._predict(prepared, part, None if prediction is None else prediction.mask)
            yield part, prediction

    def _predict(self, prepared: PreparedImage, prompt: Prompt, previous: np.ndarray | None) -> Prediction:
        """:meth:`predict` of a prompt already checked."""
        start = time.perf_counter()
        previous = None if prompt.starts_afresh else _checked_previous(previous, prepared)
        fg = prompt.points(True)
        timings: dict[str, float] = {}
        outline = None
        if needs_first_pass(prompt, self.spec, previous):
            # A first click: a whole-image pass finds the lesion's extent, then the model looks closer.
            t = time.perf_counter()
            prob, _ = self.run(self._input(prepared, prompt, prepared.whole, None)[None])
            timings["first_pass"] = _elapsed_ms(t)
            first = lesion_mask(prob[0], prepared.whole, self.spec.mask_threshold, fg)
            outline = outline_extent(first, fg)
        elif previous is not None:
            outline = correction_extent(previous, prompt)
        view = frame_for(prompt, prepared.width, prepared.height, self.spec, outline)
        x = self._input(prepared, prompt, view, previous)
        t = time.perf_counter()
        prob, probs = self.run(x[None])
        timings["inference"] = _elapsed_ms(t)
        t = time.perf_counter()
        mask = lesion_mask(prob[0], view, self.spec.mask_threshold, fg)
        timings["postprocess"] = _elapsed_ms(t)
        timings["total"] = _elapsed_ms(start)
        class_probs = {n: float(p) for n, p in zip(self.spec.class_names, probs[0], strict=True)}
        malignant = float(sum(probs[0][i] for i in self.spec.malignant_indices))
        return Prediction(
            mask=mask,
            class_probs=class_probs,
            malignant_prob=malignant,
            region=view.region,
            timings_ms=timings,
            operating_points=self.spec.operating_points,
        )

    def _input(
        self, prepared: PreparedImage, prompt: Prompt, view: Letterbox, previous: np.ndarray | None
    ) -> np.ndarray:
        """The model's input for a prompt seen through ``view`` (as core.preprocess.model_input builds it)."""
        clicks = prompt_channels(prompt, view, self.spec)
        return assemble(prepared.channel(view, self.spec), clicks, previous, view, self.spec)


class Segmenter(Predictor):
    """A liverclick ONNX model in ONNX Runtime, ready to segment and classify what a prompt points at."""

    def __init__(self, model: str | os.PathLike = "default", provider: str = "auto", threads: int | None = None):
        import onnxruntime as ort

        self.path = resolve_model(model)
        wanted = provider.lower()
        if wanted not in ("auto", *PROVIDERS):
            raise ValueError(f"provider must be auto, cpu or cuda, got {provider!r}")
        use_cuda = wanted == "cuda" or (wanted == "auto" and cuda_available())
        if wanted == "cuda" and not cuda_available():
            raise RuntimeError("the CUDA provider was requested but no usable CUDA GPU was found")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or cpu_threads()
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if use_cuda else ["CPUExecutionProvider"]
        try:
            self.ort_session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:
            raise ContractError(f"{self.path} is not a loadable ONNX model: {exc}") from None
        self.spec, self.card = parse_metadata(self.ort_session.get_modelmeta().custom_metadata_map)
        self.provider = self.ort_session.get_providers()[0]
        names = {o.name for o in self.ort_session.get_outputs()}
        if {MASK_OUTPUT, CLASS_OUTPUT} - names or self.ort_session.get_inputs()[0].name != INPUT_NAME:
            raise ContractError(
                f"model must take '{INPUT_NAME}' and give '{MASK_OUTPUT}' and '{CLASS_OUTPUT}', has {sorted(names)}"
            )
        self._input_dtype = np.float16 if "float16" in self.ort_session.get_inputs()[0].type else np.float32

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Raw network: (N, C, S, S) inputs -> (N, S, S) mask probabilities, (N, C) class probabilities."""
        mask, probs = self.ort_session.run(
            [MASK_OUTPUT, CLASS_OUTPUT], {INPUT_NAME: np.ascontiguousarray(batch, dtype=self._input_dtype)}
        )
        mask = mask.reshape(len(batch), *mask.shape[-2:])
        return mask.astype(np.float32, copy=False), probs.astype(np.float32, copy=False)


def load_model(model: str | os.PathLike = "default", provider: str = "auto") -> Predictor:
    """The one way to load a model: an ONNX model (a bundled name or a path) in ONNX Runtime, or a file of
    another format through the loader registered for its suffix (a training checkpoint in PyTorch)."""
    suffix = Path(str(model)).suffix.lstrip(".")
    loaders = {e.name: e for e in entry_points(group=MODEL_LOADERS)} if suffix else {}
    if suffix in loaders:
        return loaders[suffix].load()(model, provider)
    return Segmenter(model, provider=provider)


def parse_metadata(meta: dict[str, str]) -> tuple[InputSpec, dict]:
    """The input spec and model card from an ONNX model's metadata (custom_metadata_map)."""
    spec = InputSpec.from_json(meta.get(SPEC_METADATA_KEY))
    try:
        card = json.loads(meta.get(CARD_METADATA_KEY) or "{}")
    except json.JSONDecodeError:
        card = {}
    return spec, card


def _checked_previous(previous: np.ndarray | None, prepared: PreparedImage) -> np.ndarray | None:
    """The previous outline as a bool mask of the image's size; None when absent or empty."""
    if previous is None:
        return None
    previous = np.asarray(previous)
    if previous.shape != (prepared.height, prepared.width):
        raise PromptError(
            f"the previous mask is {previous.shape[1] if previous.ndim > 1 else '?'} x {previous.shape[0]} pixels; "
            f"the image is {prepared.width} x {prepared.height}"
        )
    previous = previous.astype(bool)
    return previous if previous.any() else None


def _elapsed_ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000.0
