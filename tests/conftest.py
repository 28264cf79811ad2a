import socket
import sys
import time
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny.onnx")


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


@pytest.fixture
def speckle_image():
    """A 120 x 200 speckled grayscale image with a dark disk (a 'lesion') centred at (140, 60)."""
    rng = np.random.default_rng(0)
    img = rng.gamma(2.0, 50.0, size=(120, 200)).clip(0, 255)
    yy, xx = np.mgrid[:120, :200]
    img[(xx - 140) ** 2 + (yy - 60) ** 2 < 20**2] *= 0.2
    return img.astype(np.uint8)


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def start_viewer():
    """``start_viewer(segmenter, build={...}, **launch_kw) -> url``: the viewer in this process on a free loopback
    port (``build``: keyword arguments of ``build_demo``); every viewer started is closed after the module."""
    from webapp.app import build_demo, launch

    demos = []

    def start(segmenter, build: dict | None = None, **launch_kw) -> str:
        demo = build_demo(segmenter, **(build or {}))
        demos.append(demo)
        _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True, **launch_kw)
        return url

    yield start
    for demo in demos:
        demo.close()
