"""Fixtures the tests share: tiny ONNX models with a valid contract, test images and files, a throwaway PostgreSQL
server and a fresh feedback database on each back-end, a viewer on a free port.

The PostgreSQL tests start a throwaway server (initdb + pg_ctl on a free loopback port in a temporary folder, as an
unprivileged user when run as root). Without PostgreSQL binaries or psycopg they skip and say why; under CI (CI set)
they fail instead, because CI installs both.

The tiny model is built with onnx.helper (no torch). Mask: sigmoid(gain * (radius - fg_distance) + 2 gain *
previous_mask), the pixels within ``radius`` (a fraction of the distance truncation) of a foreground click, and
with a previous-outline contract those of the previous outline too. Classes: softmax of a fixed linear map of
the channel means.
"""

import io
import itertools
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import httpx
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from PIL import Image

from core.contract import CARD_METADATA_KEY, SPEC_METADATA_KEY, InputSpec

REPO = Path(__file__).resolve().parents[1]
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
    n_cls, c = spec.num_classes, spec.in_channels
    # Lesion: within `radius` (a fraction of the truncation) of a foreground click, or inside the previous outline.
    weights = {"fg_distance": -gain, "previous_mask": 2 * gain}
    w_mask = np.array([weights.get(name, 0.0) for name in spec.channels], dtype=np.float32).reshape(1, c, 1, 1)
    b_mask = np.array([gain * radius], dtype=np.float32)
    w_cls = np.random.default_rng(0).normal(size=(c, n_cls)).astype(np.float32)
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
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", c, s, s])],
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


def _dicom(frames: np.ndarray, spacing=None, patient: str = "Doe^Jane") -> bytes:
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundMultiFrameImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UltrasoundMultiFrameImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("x.dcm", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.Modality = "US"
    ds.PatientName = patient
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


def lesion_image(seed: int, size: tuple[int, int], centre: tuple[int, int], radius: int = 14) -> np.ndarray:
    """Speckle of ``size`` (h, w) with a dark disk (a 'lesion') at ``centre`` (x, y)."""
    h, w = size
    img = np.random.default_rng(seed).gamma(2.0, 50.0, size=size).clip(0, 255)
    yy, xx = np.mgrid[:h, :w]
    img[(xx - centre[0]) ** 2 + (yy - centre[1]) ** 2 < radius**2] *= 0.2
    return img.astype(np.uint8)


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
    spacing=None, patient="Doe^Jane")`` (a multi-frame ultrasound DICOM with the patient's name), ``bomb_png()``
    (30000 x 30000 in a few kB); and ``lesion(seed, size, centre, radius=14)``, a speckled image with a dark disk."""
    return SimpleNamespace(encode=_encode, dicom=_dicom, bomb_png=_bomb_png, lesion=lesion_image)


# --- a throwaway PostgreSQL server -------------------------------------------------------------


def _pg_bindir() -> Path | None:
    """Folder with initdb and pg_ctl: on PATH (e.g. /usr/local/bin links) or Debian's /usr/lib/postgresql/*/bin."""
    found = shutil.which("initdb")
    versions = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if p.parent.name.isdigit()]
    debian = sorted(versions, key=lambda p: int(p.parent.name), reverse=True)
    for folder in ([Path(found).resolve().parent] if found else []) + debian:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


@pytest.fixture(scope="session")
def unavailable():
    """``unavailable(reason)``: skip a test whose system package is missing; under CI (CI set), fail instead."""
    return _unavailable


def _unavailable(reason: str):
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests must run in CI: {reason}")
    pytest.skip(reason)


class PgServer:
    """initdb + pg_ctl in a temporary folder, listening on 127.0.0.1 only, trust authentication."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.run_as: dict = {}
        if os.geteuid() == 0:  # initdb refuses root: run the server as an unprivileged user
            account = next((pwd.getpwnam(n) for n in ("postgres", "nobody") if _has_user(n)), None)
            if account is None:
                _unavailable("running as root and no 'postgres' or 'nobody' user to run the server")
            self.run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self.root = Path(tempfile.mkdtemp(prefix="liverclick-pg-", dir=_scratch()))
        if self.run_as:
            os.chown(self.root, self.run_as["user"], self.run_as["group"])
        self.data, self.log = self.root / "data", self.root / "server.log"
        self.port = 0
        self._databases = 0
        self._pg("initdb", "-D", self.data, "-U", "liverclick", "--auth=trust", "-E", "UTF8", "--no-locale", "-N")

    def _pg(self, tool: str, *args) -> None:
        cmd = [str(self.bindir / tool), *map(str, args)]
        result = subprocess.run(cmd, capture_output=True, text=True, cwd=self.root, timeout=60, **self.run_as)
        if result.returncode:
            log = self.log.read_text()[-1500:] if self.log.is_file() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()[-1500:]}\n{log}")

    def start(self, new_port: bool = False) -> None:
        for attempt in range(3):
            if new_port or attempt or not self.port:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", 0))
                    self.port = s.getsockname()[1]
            options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c max_connections=40 -c shared_buffers=16MB"
            if int((self.data / "PG_VERSION").read_text()) >= 14:  # crash recovery: one syncfs, not an fsync per file
                options += " -c recovery_init_sync_method=syncfs"
            try:
                self._pg("pg_ctl", "-D", self.data, "-l", self.log, "-w", "-t", "30", "-o", options, "start")
                return
            except RuntimeError:
                if attempt == 2:
                    raise

    def crash(self) -> None:
        """Stop at once, as in a crash: no checkpoint, recovery from the WAL on the next start."""
        self._pg("pg_ctl", "-D", self.data, "-m", "immediate", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://liverclick@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        self._databases += 1
        name = f"feedback_{self._databases}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)


def _scratch() -> str | None:
    """Memory-backed /dev/shm where it has room (creating and deleting databases on a busy disk takes
    seconds; a server crash, not a power cut, is what the fault test simulates), else the temp folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2**30:
        return str(shm)
    return None


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


@pytest.fixture(scope="session")
def pg_server():
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _unavailable("psycopg is not installed (pip install 'liverclick[postgres]')")
    bindir = _pg_bindir()
    if bindir is None:
        _unavailable("no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql/*/bin")
    server = None
    try:
        server = PgServer(bindir)
        server.start()
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        if server is not None:
            shutil.rmtree(server.root, ignore_errors=True)
        _unavailable(f"could not start a PostgreSQL server from {bindir}: {exc}")
    yield server
    try:
        server.crash()  # its data is thrown away: no shutdown checkpoint needed
    finally:
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path) -> str:
    """A fresh, empty feedback database on each back-end."""
    if request.param == "sqlite":
        return str(tmp_path / "feedback.db")
    return request.getfixturevalue("pg_server").new_database()


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


class Server:
    """``liverclick serve ARGS`` in a subprocess on a free loopback port (``env``: more environment variables);
    :meth:`start` again after :meth:`kill` or :meth:`stop`."""

    def __init__(self, args: list, log: Path, env: dict | None = None) -> None:
        self.args, self.log, self.env = [str(a) for a in args], log, env or {}
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60) -> "Server":
        port = _free_port()
        env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **self.env}
        cmd = [sys.executable, "-m", "core.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *self.args]
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{port}/"
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail(f"liverclick serve exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                httpx.get(self.url, timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.2)
        self.kill()
        pytest.fail(f"liverclick serve did not answer within {timeout} s:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: the process ends at once, as in a crash."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> int:
        """SIGTERM, what systemd and container stops send; the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)


@pytest.fixture
def servers(tmp_path):
    """``servers(args, env=None) -> Server`` (not yet started); all are killed at the end of the test."""
    started = []

    def make(args: list, env: dict | None = None) -> Server:
        started.append(Server(args, tmp_path / f"server{len(started)}.log", env))
        return started[-1]

    yield make
    for server in started:
        server.kill()


# --- load --------------------------------------------------------------------------------------------------
SESSIONS, PROMPTS = 20, 10


def run_load(url: str, model: Path, folder: Path, logins: list[tuple[str, str]] | None = None) -> dict:
    """SESSIONS gradio_client sessions (signed in with ``logins`` in turn, if any) send PROMPTS /segment requests
    each, all at once; every answer must be its own prompt's outline on its own image (each session has an image of
    its own size). Prints and returns the count, the time and the p50/p95 latency (ms)."""
    import statistics
    import threading

    from gradio_client import Client, handle_file

    from core.imageio import load_image
    from core.metrics import jaccard
    from core.prompt import Prompt
    from core.runtime import Segmenter

    local = Segmenter(model, provider="cpu")
    images, prompts, expected = [], [], []
    for i in range(SESSIONS):
        h, w = 96 + 4 * i, 128 + 6 * i
        path = folder / f"session{i:02d}.png"
        cv2.imwrite(str(path), lesion_image(i, (h, w), (w // 2, h // 2)))
        session = [
            {"clicks": [{"x": (j + 1) * w // (PROMPTS + 2), "y": h // 3 + (i + j) % 5 * h // 10, "positive": True}]}
            for j in range(PROMPTS)
        ]
        images.append(str(path))
        prompts.append(session)
        expected.append([local.predict(load_image(path), Prompt.from_dict(p)).mask for p in session])

    answers, errors = {}, []
    ready = threading.Barrier(SESSIONS, timeout=60)

    def one(i: int) -> None:
        try:
            # 200 requests queue behind few workers: allow a slow machine to answer late, not time out.
            auth = logins[i % len(logins)] if logins else None
            client = Client(url, auth=auth, verbose=False, httpx_kwargs={"timeout": 120})
            ready.wait()  # every session sends at once
            for j, prompt in enumerate(prompts[i]):
                start = time.perf_counter()
                mask_file, result = client.predict(handle_file(images[i]), json.dumps(prompt), api_name="/segment")
                answers[i, j] = (cv2.imread(mask_file, cv2.IMREAD_GRAYSCALE), result, time.perf_counter() - start)
        except Exception as exc:  # reported below
            errors.append(f"session {i}: {exc!r}")

    start = time.perf_counter()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(SESSIONS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=150)
    total = time.perf_counter() - start
    assert not errors, errors
    assert len(answers) == SESSIONS * PROMPTS
    for (i, j), (mask, result, _) in answers.items():
        want = expected[i][j]
        assert mask.shape == want.shape, f"session {i} got an answer for another image"
        assert jaccard(mask > 0, want) > 0.98, f"session {i} prompt {j}: the outline is not its own prompt's"
        assert result["area_px"] == int((mask > 0).sum())
    latencies = sorted(a[2] * 1000 for a in answers.values())
    p50, p95 = statistics.median(latencies), latencies[int(0.95 * (len(latencies) - 1))]
    print(
        f"\nload: {SESSIONS} concurrent gradio_client sessions x {PROMPTS} prompts = {len(answers)} /segment requests "
        f"in {total:.1f} s ({len(answers) / total:.1f} req/s, {os.cpu_count()} CPU cores), 0 errors, 0 answers "
        f"crossed; latency per request (upload + queue + prediction + mask download): p50 {p50:.0f} ms, "
        f"p95 {p95:.0f} ms, max {latencies[-1]:.0f} ms"
    )
    return {"requests": len(answers), "seconds": total, "p50_ms": p50, "p95_ms": p95}


@pytest.fixture(scope="session")
def load_test():
    """``load_test(url, model_path, folder, logins=None) -> stats``: the 20-session x 10-prompt load test."""
    return run_load


# --- the page in Chromium ----------------------------------------------------------------------------------
CHROMIUM = Path("/usr/bin/chromium")


class CanvasView:
    """The viewer's canvas in a Playwright page: image pixels to page positions, gestures, and the page's state.

    Positions come from the view's own transform (image pixel centres at ``offset + (x + 0.5) * scale``).
    """

    ROOT = "#canvas .lc-viewer"

    def __init__(self, page) -> None:
        self.page = page

    def state(self) -> dict:
        """scale, ox, oy, width, height, url, drawn (inputs answered and drawn), shown (the server's overlay),
        pending (inputs not answered), message, timings."""
        return self.page.evaluate(
            f"""() => {{ const s = document.querySelector('{self.ROOT}').__liverclick;
            return {{ scale: s.scale, ox: s.ox, oy: s.oy, width: s.width, height: s.height, url: s.url,
                     picture: !!s.picture, drawn: s.drawn, shown: s.shown, message: s.message,
                     pending: s.pending.length + s.inflight.length, timings: s.timings, mode: s.mode }}; }}"""
        )

    def wait_picture(self, old_url: str | None = None) -> dict:
        """Wait until a picture (another than ``old_url``) is shown; the state."""
        self.page.wait_for_function(
            f"o => {{ const v = document.querySelector('{self.ROOT}'); const s = v && v.__liverclick;"
            " return !!s && !!s.url && s.url !== o && v.dataset.picture === s.url; }",
            arg=old_url,
            timeout=60_000,
        )
        return self.state()

    def at(self, x: float, y: float) -> tuple[float, float]:
        """The page position of image pixel (x, y)'s centre."""
        box = self.page.locator(f"{self.ROOT} canvas").bounding_box()
        st = self.state()
        return box["x"] + st["ox"] + (x + 0.5) * st["scale"], box["y"] + st["oy"] + (y + 0.5) * st["scale"]

    def settle(self, drawn: int, timeout: float = 60_000) -> dict:
        """Wait until ``drawn`` inputs have been answered and drawn, and none waits; the state."""
        self.page.wait_for_function(
            f"n => {{ const s = document.querySelector('{self.ROOT}').__liverclick;"
            " return s.drawn >= n && !s.pending.length && !s.inflight.length; }",
            arg=drawn,
            timeout=timeout,
        )
        return self.state()

    def click(self, x: float, y: float, button: str = "left", shift: bool = False) -> dict:
        """Click image pixel (x, y) (with the shift key held) and wait for its outline; the state."""
        drawn = self.state()["drawn"]
        if shift:
            self.page.keyboard.down("Shift")
        self.page.mouse.click(*self.at(x, y), button=button)
        if shift:
            self.page.keyboard.up("Shift")
        return self.settle(drawn + 1)

    def drag(self, start: tuple[float, float], end: tuple[float, float], button: str = "left") -> None:
        """Press at image pixel ``start``, move to ``end`` in a few steps, release."""
        self.page.mouse.move(*self.at(*start))
        self.page.mouse.down(button=button)
        self.page.mouse.move(*self.at(*end), steps=5)
        self.page.mouse.up(button=button)

    def key(self, key: str) -> dict:
        """Press ``key`` on the view (it has the focus once clicked) and wait for the answer; the state."""
        drawn = self.state()["drawn"]
        self.page.locator(self.ROOT).press(key)
        return self.settle(drawn + 1)

    def status(self) -> str:
        return self.page.locator(f"{self.ROOT} .lc-status").inner_text()


@pytest.fixture(scope="session")
def chromium():
    """``chromium(playwright) -> Browser``: Debian's headless Chromium (without it the test skips; under CI it
    fails)."""
    if not CHROMIUM.exists():
        _unavailable("needs Debian's chromium (apt-get install chromium)")
    args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    return lambda playwright: playwright.chromium.launch(executable_path=str(CHROMIUM), args=args)


@pytest.fixture(scope="session")
def canvas():
    """``canvas(page) -> CanvasView``: the viewer's canvas in a Playwright page."""
    return CanvasView


@pytest.fixture
def page(chromium):
    """A fresh page (1400 x 1000, downloads accepted) in its own headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = chromium(p)
        yield browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        browser.close()


def sign_in(page, url: str, user: str, password: str) -> None:
    """Sign in on Gradio's login page at ``url`` and wait for the viewer to say who reviews."""
    from playwright.sync_api import expect

    page.goto(url)
    page.locator("input[type=text]").fill(user)
    page.locator("input[type=password]").fill(password)
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#reviewer")).to_contain_text(f"Reviewing as {user}")


@pytest.fixture(scope="session")
def signed_in():
    """``signed_in(page, url, user, password)``: :func:`sign_in`."""
    return sign_in


# --- devices -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def torch_device() -> str:
    """The device the training, evaluation and export tests run on: $TORCH_DEVICE (e.g. cuda on a GPU machine),
    else the CPU."""
    return os.environ.get("TORCH_DEVICE", "cpu")
