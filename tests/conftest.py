"""Fixtures the tests share: tiny ONNX models with a valid contract, test images and files, a viewer on a free port.

The tiny model is built with onnx.helper (no torch). Mask: sigmoid(gain * (radius - fg_distance)), the pixels
within ``radius`` (a fraction of the distance truncation) of a foreground click. Classes: softmax of a fixed
linear map of the channel means.
"""

import io
import itertools
import json
import socket
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from core.contract import CARD_METADATA_KEY, SPEC_METADATA_KEY, InputSpec

BINARY = InputSpec(input_size=64, class_names=("benign", "malignant"), malignant_classes=("malignant",))
FOUR_CLASS = InputSpec(
    input_size=64, class_names=("cyst", "hemangioma", "metastasis", "hcc"), malignant_classes=("metastasis", "hcc")
)


# --- models ------------------------------------------------------------------------------------------------
def build_tiny_model(
    path: Path,
    spec: InputSpec = BINARY,
    radius: float = 0.1,
    gain: float = 40.0,
    spec_json: str | None = None,
    card: dict | None = None,
) -> Path:
    n_cls = spec.num_classes
    w_mask = np.array([0.0, -gain, 0.0], dtype=np.float32).reshape(1, 3, 1, 1)
    b_mask = np.array([gain * radius], dtype=np.float32)
    w_cls = np.random.default_rng(0).normal(size=(3, n_cls)).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["input", "w_mask", "b_mask"], ["mask_logit"]),
        helper.make_node("Sigmoid", ["mask_logit"], ["mask_prob"]),
        helper.make_node("GlobalAveragePool", ["input"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w_cls"], ["logits"]),
        helper.make_node("Softmax", ["logits"], ["class_probs"], axis=1),
    ]
    s = spec.input_size
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, s, s])],
        [
            helper.make_tensor_value_info("mask_prob", TensorProto.FLOAT, ["N", 1, s, s]),
            helper.make_tensor_value_info("class_probs", TensorProto.FLOAT, ["N", n_cls]),
        ],
        [numpy_helper.from_array(a, n) for a, n in ((w_mask, "w_mask"), (b_mask, "b_mask"), (w_cls, "w_cls"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {CARD_METADATA_KEY: json.dumps(card or {"name": "tiny-test", "version": "0"})}
    if spec_json is None:
        spec_json = spec.to_json()
    if spec_json != "":
        meta[SPEC_METADATA_KEY] = spec_json
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture(scope="session")
def binary_spec() -> InputSpec:
    """Benign/malignant, 64 x 64 input, whole image."""
    return BINARY


@pytest.fixture(scope="session")
def four_class_spec() -> InputSpec:
    """The paper's four liver classes, metastasis and HCC malignant; 64 x 64 input, whole image."""
    return FOUR_CLASS


@pytest.fixture(scope="session")
def make_model(tmp_path_factory):
    """``make_model(spec=BINARY, radius=0.1, gain=40.0, spec_json=None, card=None) -> path``: a tiny ONNX model
    (``spec_json``: metadata to write instead of ``spec``'s, "" for none)."""
    folder, count = tmp_path_factory.mktemp("models"), itertools.count()
    return lambda spec=BINARY, **kw: build_tiny_model(folder / f"tiny{next(count)}.onnx", spec, **kw)


@pytest.fixture(scope="session")
def tiny_model(make_model) -> Path:
    """The benign/malignant tiny model (its card: tiny-test, version 0)."""
    return make_model()


@pytest.fixture(scope="session")
def segmenter(make_model):
    """The four-class tiny model in ONNX Runtime (its card: tiny-four, version 1.2)."""
    from core.runtime import Segmenter

    return Segmenter(make_model(FOUR_CLASS, card={"name": "tiny-four", "version": "1.2"}), provider="cpu")


@pytest.fixture
def faulty_segmenter(tiny_model):
    """``faulty_segmenter()``: the tiny model in ONNX Runtime, made slow (``.delay`` seconds a network run) or
    broken (``.fail``) on demand."""
    from core.runtime import Segmenter

    class Faulty(Segmenter):
        delay = 0.0
        fail = False

        def run(self, batch):
            time.sleep(self.delay)
            if self.fail:
                raise RuntimeError("a bug deep in the model code")
            return super().run(batch)

    return lambda: Faulty(tiny_model, provider="cpu")


# --- images and files --------------------------------------------------------------------------------------
@pytest.fixture
def speckle_image():
    """A 120 x 200 speckled grayscale image with a dark disk (a 'lesion') centred at (140, 60)."""
    rng = np.random.default_rng(0)
    img = rng.gamma(2.0, 50.0, size=(120, 200)).clip(0, 255)
    yy, xx = np.mgrid[:120, :200]
    img[(xx - 140) ** 2 + (yy - 60) ** 2 < 20**2] *= 0.2
    return img.astype(np.uint8)


@pytest.fixture
def scan(speckle_image, tmp_path) -> str:
    """The speckle image as a PNG file."""
    path = tmp_path / "scan.png"
    cv2.imwrite(str(path), speckle_image)
    return str(path)


def _encode(array: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format=fmt, **kw)
    return buf.getvalue()


def _dicom(frames: np.ndarray, spacing=None) -> bytes:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "US"
    ds.PatientName = "Doe^Jane"
    ds.Rows, ds.Columns = frames.shape[1:3]
    ds.NumberOfFrames = frames.shape[0]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    if spacing:
        ds.PixelSpacing = list(spacing)
    ds.PixelData = frames.astype(np.uint8).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def _bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A PNG header for a huge 8-bit grayscale image with only its first 64 rows of zeros: a small file."""

    def chunk(tag, payload):
        return len(payload).to_bytes(4, "big") + tag + payload + zlib.crc32(tag + payload).to_bytes(4, "big")

    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    row = b"\x00" * (width + 1)
    compressor = zlib.compressobj(9)
    body = b"".join(compressor.compress(row) for _ in range(64)) + compressor.flush()
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


@pytest.fixture(scope="session")
def image_bytes():
    """Image files as bytes: ``encode(array, fmt, **pil_options)`` (PNG, JPEG, BMP, TIFF), ``dicom(frames,
    spacing=None)`` (a multi-frame ultrasound DICOM with a patient name), ``bomb_png()`` (30000 x 30000 in a few kB)."""
    return SimpleNamespace(encode=_encode, dicom=_dicom, bomb_png=_bomb_png)


# --- the viewer --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def free_port():
    """``free_port()``: a loopback port nobody listens on now."""
    return _free_port


@pytest.fixture(scope="module")
def start_viewer():
    """``start_viewer(segmenter, build={...}, **launch_kw) -> url``: the viewer in this process on a free loopback
    port (``build``: keyword arguments of ``build_demo``); every viewer started is closed after the module."""
    from webapp.app import build_demo, launch

    demos = []

    def start(segmenter, build: dict | None = None, **launch_kw) -> str:
        demo = build_demo(segmenter, **(build or {}))
        demos.append(demo)
        _, url, _ = launch(demo, port=_free_port(), prevent_thread_lock=True, quiet=True, **launch_kw)
        return url

    yield start
    for demo in demos:
        demo.close()
