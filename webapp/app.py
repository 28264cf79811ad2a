"""The liverclick web viewer: upload an ultrasound image, click on a lesion or draw a box, see it outlined, classified.

Thin over ``core``: the model is loaded once (:func:`serve_main`), each browser tab keeps its own
:class:`webapp.session.Session` in ``gr.State``, the handlers in :mod:`webapp.session` do the work and
:mod:`webapp.render` draws the view. ``gr.api`` adds the programmatic endpoint ``/segment``; Gradio
reads its parameter and return types from the annotations, so this module keeps them evaluated
(no ``from __future__ import annotations``).
"""

import json
import logging
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import cv2
import gradio as gr
import numpy as np
from gradio import FileData
from gradio.utils import get_upload_folder

from core.imageio import MAX_BYTES, ImageError, load_image
from core.measure import measure
from core.prompt import Prompt, PromptError
from core.runtime import Segmenter

from . import session as sess
from .render import render

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
QUEUE_SIZE = 64  # requests waiting beyond this are refused at once rather than left to time out
SESSION_TTL_S = 3 * 3600  # a tab idle this long gives its image and prompt back
SESSION_CAPACITY = 500  # most tabs held at once (each holds one prepared image)
API_FILE_TTL_S = 600  # our copy of an API answer's mask; Gradio serves the client its own copy
JPEG = [cv2.IMWRITE_JPEG_QUALITY, 92, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444]
CSS = "#view img { cursor: crosshair; } #notice p { color: #b91c1c; }"
MODE_CHOICES = [("Lesion point (+)", "lesion"), ("Background point (-)", "background"), ("Box: two corners", "box")]
INTERNAL_ERROR = "Something went wrong on the server (the details are in its log). The session is unchanged."

log = logging.getLogger("liverclick.webapp")


class Workspace:
    """Files the viewer serves (the view, the downloads, API masks): one folder per session, removed with it."""

    def __init__(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="liverclick-")
        self.root = Path(self._tmp.name)

    def write(self, folder: str, name: str, data: bytes) -> str:
        """Write ``data`` to ``folder/name`` atomically (a reader never sees half a file); return the path."""
        target = self.root / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{uuid.uuid4().hex}")
        partial.write_bytes(data)
        os.replace(partial, target)
        return str(target)

    def write_once(self, name: str, data: bytes) -> str:
        """A file for one API answer; those older than API_FILE_TTL_S are removed as new ones come."""
        api = self.root / "api"
        if api.is_dir():
            for old in api.iterdir():
                if time.time() - old.stat().st_mtime > API_FILE_TTL_S:
                    shutil.rmtree(old, ignore_errors=True)
        return self.write(f"api/{uuid.uuid4().hex}", name, data)

    def remove(self, session: sess.Session) -> None:
        if session.key:
            shutil.rmtree(self.root / session.key, ignore_errors=True)


def build_demo(segmenter: Segmenter, examples_dir: Path = EXAMPLES_DIR) -> gr.Blocks:
    """The page, wired to ``segmenter``; launch it with :func:`launch`."""
    workspace = Workspace()
    spec = segmenter.spec

    def present(session: sess.Session, mode: str, message: str | None = None) -> tuple:
        """Every output for a session: state, view, status, classes, malignancy, lesion table, downloads."""
        status = sess.guidance(session, mode)
        if message:
            status = f"**{message[0].upper()}{message[1:]}**\n\n{status}"
        view = None
        if session.image is not None:
            view = workspace.write(session.key, "view.jpg", _encode(".jpg", render(session)))
        p = session.prediction
        if p is None:
            idle = gr.DownloadButton(value=None, interactive=False)
            return session, view, status, None, None, "", idle, idle
        report = json.dumps(sess.report(session, segmenter), indent=2).encode()
        mask = workspace.write(session.key, f"{session.name}_mask.png", _encode(".png", p.mask.astype(np.uint8) * 255))
        report_file = workspace.write(session.key, f"{session.name}_report.json", report)
        return (
            session,
            view,
            status,
            p.class_probs,
            sess.malignancy(p),
            sess.measurement_lines(session, segmenter.provider),
            gr.DownloadButton(value=mask, interactive=True),
            gr.DownloadButton(value=report_file, interactive=True),
        )

    def attempt(session: sess.Session, mode: str, action: Callable[[], sess.Session]) -> tuple:
        """Run a handler; on bad input keep the session as it was and say why, in the page and in a toast."""
        try:
            return present(action(), mode)
        except (ImageError, PromptError) as exc:
            message = str(exc)
        except Exception:
            log.exception("a viewer request failed")
            message = INTERNAL_ERROR
        gr.Warning(message)
        return present(session, mode, message)

    def on_file(session: sess.Session, mode: str, path: str | None) -> tuple:
        if path is None:
            return (*present(sess.Session(key=session.key), mode), gr.Slider(visible=False))
        out = attempt(session, mode, lambda: sess.open_image(segmenter, session, path))
        image = out[0].image
        n = image.n_frames if image is not None else 1
        frames = gr.Slider(minimum=0, maximum=max(1, n - 1), value=image.frame if image else 0, visible=n > 1)
        return (*out, frames)

    def on_frame(session: sess.Session, mode: str, frame: float) -> tuple:
        return attempt(session, mode, lambda: sess.choose_frame(segmenter, session, int(frame)))

    def on_select(session: sess.Session, mode: str, evt: gr.SelectData) -> tuple:
        if evt.index is None:  # a click beside the picture, inside its frame
            return present(session, mode)
        return attempt(session, mode, lambda: sess.click(segmenter, session, tuple(evt.index), mode))

    def on_mode(session: sess.Session, mode: str) -> tuple:
        return present(sess.set_mode(session, mode), mode)

    def on_undo(session: sess.Session, mode: str) -> tuple:
        return attempt(session, mode, lambda: sess.undo(segmenter, session))

    def on_clear(session: sess.Session, mode: str) -> tuple:
        return present(sess.clear(session), mode)

    def segment(image: FileData, prompt: str) -> tuple[FileData, dict]:
        """Segment and classify the lesion a prompt points at.

        image: an ultrasound image (PNG, JPEG, BMP, TIFF or DICOM). prompt: JSON in the request format of
        `liverclick predict`, e.g. {"clicks": [{"x": 120, "y": 88, "positive": true}], "box": [x0, y0, x1, y1],
        "frame": 0}. Returns the mask (PNG, 0/255, at the image's own size) and the probabilities.
        """
        try:
            request = json.loads(prompt)
        except (TypeError, json.JSONDecodeError) as exc:
            raise gr.Error(f"the prompt is not valid JSON: {exc}") from None
        frame = request.get("frame", 0) if isinstance(request, dict) else 0
        try:
            if not isinstance(frame, int) or isinstance(frame, bool):
                raise PromptError("'frame' must be an integer")
            picture = load_image(_uploaded_path(image), frame=frame)
            p = segmenter.predict(picture, Prompt.from_dict(request))
        except (ImageError, PromptError) as exc:
            raise gr.Error(str(exc)) from None
        mask = workspace.write_once("mask.png", _encode(".png", p.mask.astype(np.uint8) * 255))
        result = {
            "class_probs": p.class_probs,
            "predicted_class": p.predicted_class,
            "malignant_prob": p.malignant_prob,
            "area_px": p.area_px,
            "measurements": measure(p.mask, picture.pixel_spacing_mm).to_dict(),
            "model": {"name": segmenter.name, "version": segmenter.version},
        }
        return FileData(path=mask), result

    examples = sorted(examples_dir.glob("*.png")) if examples_dir.is_dir() else []
    with gr.Blocks(title="liverclick", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# liverclick\nClick on a lesion in an ultrasound image, or draw a box around it, "
            "to see it outlined and classified."
        )
        gr.Markdown(f"**{sess.NOTICE}** Model: {segmenter.name} {segmenter.version}.", elem_id="notice")
        state = gr.State(sess.Session(), time_to_live=SESSION_TTL_S, delete_callback=workspace.remove)
        with gr.Row():
            with gr.Column(scale=3):
                view = gr.Image(
                    label="Ultrasound: click to prompt",
                    type="filepath",
                    interactive=False,
                    buttons=["download", "fullscreen"],
                    elem_id="view",
                )
                status = gr.Markdown(sess.guidance(sess.Session(), "lesion"), elem_id="status")
            with gr.Column(scale=2):
                upload = gr.File(label="Ultrasound image: PNG, JPEG, BMP, TIFF or DICOM", elem_id="upload")
                frame = gr.Slider(0, 1, value=0, step=1, label="DICOM frame (0 = first)", visible=False)
                mode = gr.Radio(MODE_CHOICES, value="lesion", label="A click adds", elem_id="mode")
                with gr.Row():
                    undo = gr.Button("Undo last input", size="sm")
                    clear = gr.Button("Clear all", size="sm")
                classes = gr.Label(num_top_classes=spec.num_classes, label="Class probabilities", elem_id="classes")
                # A benign/malignant model's class probabilities already say it all.
                binary = set(spec.class_names) == {"benign", "malignant"}
                malignant = gr.Label(label="Benign or malignant", elem_id="malignancy", visible=not binary)
                lesion = gr.Markdown(elem_id="lesion")
                with gr.Row():
                    mask_file = gr.DownloadButton("Mask (PNG)", interactive=False, size="sm")
                    report_file = gr.DownloadButton("Report (JSON)", interactive=False, size="sm")
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[upload], label="Examples")
        with gr.Accordion(f"Model: {segmenter.name} {segmenter.version}", open=False):
            gr.Markdown(model_card_markdown(segmenter), elem_id="model-card")

        outputs = [state, view, status, classes, malignant, lesion, mask_file, report_file]
        ui = dict(api_visibility="private")  # the page's own events; the public API is /segment alone
        model = dict(ui, concurrency_id="model", show_progress="minimal")
        upload.change(on_file, [state, mode, upload], [*outputs, frame], **model)
        # A slider moved while a frame loads is read again when it is done (always_last); a click made while the
        # previous one is served is dropped (once), as it would otherwise run on a stale session or, deferred,
        # without its position.
        frame.input(on_frame, [state, mode, frame], outputs, trigger_mode="always_last", **model)
        view.select(on_select, [state, mode], outputs, trigger_mode="once", **model)
        mode.change(on_mode, [state, mode], outputs, show_progress="hidden", **ui)
        undo.click(on_undo, [state, mode], outputs, **model)
        clear.click(on_clear, [state, mode], outputs, show_progress="hidden", **ui)
        gr.api(segment, api_name="segment", concurrency_id="model")
    return demo


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_concurrency: int = 2,
    auth: list[tuple[str, str]] | None = None,
    **kwargs,
):
    """Queue (``max_concurrency`` predictions at once) and start the server; returns what ``Blocks.launch`` does."""
    demo.queue(default_concurrency_limit=max_concurrency, max_size=QUEUE_SIZE)
    return demo.launch(
        server_name=host,
        server_port=port,
        auth=auth or None,
        max_file_size=MAX_BYTES,
        allowed_paths=[str(EXAMPLES_DIR)],
        state_session_capacity=SESSION_CAPACITY,
        css=CSS,
        **kwargs,
    )


def serve_main(args) -> int:
    """``liverclick serve``: load the model once, then serve the viewer until interrupted."""
    try:
        segmenter = Segmenter(args.model, provider=args.provider)
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"liverclick serve: cannot load the model: {exc}", file=sys.stderr)
        if str(args.model) == "default":
            print("liverclick serve: give a model file with --model PATH.onnx", file=sys.stderr)
        return 2
    try:
        auth = read_logins(args.auth, args.auth_file)
    except (OSError, ValueError) as exc:
        print(f"liverclick serve: {exc}", file=sys.stderr)
        return 2
    if args.feedback_db or args.store_images:
        print(
            "liverclick serve: this version keeps no reviewer feedback; --feedback-db and --store-images are ignored",
            file=sys.stderr,
        )
    print(f"liverclick serve: {segmenter.name} {segmenter.version} on {segmenter.provider}. {sess.NOTICE}")
    launch(
        build_demo(segmenter),
        host=args.host,
        port=args.port,
        max_concurrency=args.max_concurrency,
        auth=auth,
    )
    return 0


def read_logins(pairs: list[str], path: Path | None) -> list[tuple[str, str]]:
    """USER:PASS logins from ``--auth`` and from a file of such lines (blank lines and # comments skipped)."""
    lines = list(pairs or [])
    if path is not None:
        lines += [s.strip() for s in Path(path).read_text(encoding="utf-8").splitlines()]
        lines = [s for s in lines if s and not s.startswith("#")]
    logins = []
    for line in lines:
        user, sep, password = line.partition(":")
        if not sep or not user or not password:
            raise ValueError("each login must be USER:PASS with a non-empty user and password")
        logins.append((user, password))
    return logins


def model_card_markdown(segmenter: Segmenter) -> str:
    """The model panel: name, version, provider, classes and every entry of the model card."""
    spec, card = segmenter.spec, segmenter.card
    classes = ", ".join(f"{c} (malignant)" if c in spec.malignant_classes else c for c in spec.class_names)
    lines = [
        f"**{segmenter.name}**, version {segmenter.version}, running on {segmenter.provider}.",
        "",
        f"**{sess.NOTICE}**",
        "",
        f"- **Classes**: {classes}",
        f"- **Input**: {spec.input_size} x {spec.input_size}, "
        + ("zoomed in around the prompt" if spec.zoom_in else "the whole image"),
    ]
    for key, value in card.items():
        if key not in ("name", "version"):
            lines += _card_entry(key.replace("_", " ").capitalize(), value)
    return "\n".join(lines)


def _card_entry(title: str, value, depth: int = 0) -> list[str]:
    pad = "  " * depth
    if isinstance(value, dict):
        return [f"{pad}- **{title}**:"] + [line for k, v in value.items() for line in _card_entry(str(k), v, depth + 1)]
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        return [f"{pad}- **{title}**:"] + [f"{pad}  - {json.dumps(v)}" for v in value]
    if isinstance(value, list):
        value = ", ".join(_plain(v) for v in value)
    return [f"{pad}- **{title}**: {_plain(value)}"]


def _plain(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _encode(ext: str, image: np.ndarray) -> bytes:
    """PNG or JPEG bytes of an RGB or grayscale image."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(ext, image, JPEG if ext == ".jpg" else [])
    if not ok:
        raise RuntimeError(f"cannot encode the image as {ext}")
    return data.tobytes()


def _uploaded_path(image) -> str:
    """The server path of a file the API client uploaded; any other path is refused."""
    path = image.get("path") if isinstance(image, dict) else getattr(image, "path", image)
    if not isinstance(path, str) or not Path(path).resolve().is_relative_to(Path(get_upload_folder()).resolve()):
        raise gr.Error("send the image as a file (gradio_client.handle_file), not as a path on the server")
    return path
