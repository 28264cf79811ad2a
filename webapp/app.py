"""The liverclick web viewer's page: its layout and which handler each event runs.

Upload an ultrasound image, click on a lesion or drag a box around it, see it outlined and classified. The
image is shown in the canvas view (:mod:`webapp.canvas`), which draws the outline in the browser and sends its
inputs to the server directly; the handlers are the methods of :class:`webapp.handlers.Viewer` (plain functions
of the session and the widgets' values); this module only lays out the widgets and wires them. Each browser tab
keeps its own :class:`webapp.session.Session` (in ``gr.State``, and its newest in ``Viewer.tabs``). ``gr.api``
adds the programmatic endpoints ``/segment`` and ``/feedback`` (and, with a feedback store, ``/worklist``,
``/case`` and ``/review``: webapp.review.desk).

Access: with logins (``--auth``/``--auth-file``) Gradio's login protects the whole app, page and API;
without them the segmentation demo is open and feedback is refused, since every record names its reviewer.
Uploads are read into memory and removed from disk at once, and a signed-in user is served only their own
files (:mod:`webapp.files`).
Hosted-demo limits: uploads over MAX_BYTES and images over core.imageio's pixel limit are refused, model
work runs on a few worker threads under a time limit (webapp.handlers), the queue is bounded, and an
exception in one request is logged and answered with a message, never passed on to the server.
"""

import json
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from core.imageio import MAX_BYTES
from core.runtime import Predictor

from . import session as sess
from .accounts import Accounts
from .canvas import canvas_component
from .feedback.record import COMMENT_MAX_CHARS
from .feedback.store import FeedbackStore
from .files import FileGuard, upload_field
from .gate import ApiGate
from .handlers import SESSION_CAPACITY, SESSION_TTL_S, TIME_LIMIT_S, Viewer
from .instance import INSTANCE_CHECK, InstanceRoute
from .review.desk import Desk
from .review.panel import ReviewPanels
from .shared import share_sign_ins
from .signin import SignInThrottle

EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
QUEUE_SIZE = 64  # requests waiting beyond this are refused at once rather than left to time out
CSS = "#notice p { color: #b91c1c; }"
RATINGS = [("1 poor", 1), ("2", 2), ("3", 3), ("4", 4), ("5 exact", 5)]


def build_demo(
    segmenter: Predictor,
    examples_dir: Path = EXAMPLES_DIR,
    store: FeedbackStore | None = None,
    time_limit_s: float = TIME_LIMIT_S,
    workers: int = 2,
    accounts: Accounts | None = None,
) -> gr.Blocks:
    """The page, wired to ``segmenter`` (and to ``store`` for reviewer feedback and review sessions, whose
    organiser's view ``accounts`` opens to its organisers); launch it with :func:`launch`.

    Model work runs on ``workers`` threads, each request within ``time_limit_s``.
    """
    viewer = Viewer(segmenter, store, time_limit_s, workers, public=(examples_dir,))
    desk = Desk(viewer)
    panels = ReviewPanels(desk, accounts)
    spec = segmenter.spec
    examples = sorted(examples_dir.glob("*.png")) if examples_dir.is_dir() else []
    gr.set_static_paths([examples_dir])  # served where they are: the upload and cache folder holds no public file
    with gr.Blocks(title="liverclick", delete_cache=(600, 3600)) as demo:
        gr.Markdown(
            "# liverclick\nClick on a lesion in an ultrasound image, or draw a box around it, "
            "to see it outlined and classified."
        )
        gr.Markdown(f"**{sess.NOTICE}** Model: {segmenter.name} {segmenter.version}.", elem_id="notice")
        state = gr.State(sess.Session(), time_to_live=SESSION_TTL_S, delete_callback=viewer.forget)
        with gr.Row():
            with gr.Column(scale=3):
                canvas = canvas_component(viewer.on_canvas)
            with gr.Column(scale=2):
                panels.worklist_layout()
                upload = upload_field(label="Ultrasound image: PNG, JPEG, BMP, TIFF or DICOM", elem_id="upload")
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame (0 = first)", visible=False, elem_id="frame")
                with gr.Row():
                    mask_file = gr.DownloadButton("Mask (PNG)", interactive=False, size="sm")
                    report_file = gr.DownloadButton("Report (JSON)", interactive=False, size="sm")
                with gr.Accordion("Feedback on this outline", open=True, visible=store is not None, elem_id="review"):
                    reviewer = gr.Markdown(elem_id="reviewer")
                    verdict = gr.Radio(
                        [("Agree", "agree"), ("Disagree", "disagree")],
                        label="The most likely class is right",
                        elem_id="verdict",
                    )
                    corrected = gr.Dropdown(
                        list(spec.class_names), value=None, label="Correct class", visible=False, elem_id="corrected"
                    )
                    rating = gr.Radio(RATINGS, label="Outline quality", elem_id="rating")
                    accepted = gr.Checkbox(
                        label="Accept the final outline (with my corrective clicks) as reference", elem_id="accepted"
                    )
                    comment = gr.Textbox(label="Comment", lines=2, max_length=COMMENT_MAX_CHARS, elem_id="comment")
                    submit = gr.Button("Submit feedback", variant="primary", interactive=False, elem_id="submit")
                    review_note = gr.Markdown(sess.review_note(sess.Session()), elem_id="review-note")
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[upload], label="Examples")
        with gr.Accordion(f"Model: {segmenter.name} {segmenter.version}", open=False):
            gr.Markdown(model_card_markdown(segmenter), elem_id="model-card")
        panels.organiser_layout()

        outputs = [state, canvas, mask_file, report_file, submit, review_note]
        ui = dict(api_visibility="private")  # the page's own events; the public API is /segment and /feedback
        model = dict(ui, concurrency_id="model", show_progress="minimal")
        upload.change(viewer.on_file, [state, upload], [*outputs, frame], **model)
        # A slider moved while a frame loads is read again when it is done (always_last).
        frame.input(viewer.on_frame, [state, frame], outputs, trigger_mode="always_last", **model)
        # The canvas sends its inputs itself (Viewer.on_canvas); once it has drawn an answer, the rest catches up.
        canvas.settle(viewer.on_settle, state, [state, *outputs[2:]], show_progress="hidden", **ui)
        form = [verdict, corrected, rating, accepted, comment]
        verdict.change(viewer.on_verdict, verdict, corrected, show_progress="hidden", **ui)
        # Once: a second press while the first is being stored is dropped; after it, Submit stays disabled.
        submitted = submit.click(
            viewer.on_submit, [state, *form], [state, submit, review_note, *form], trigger_mode="once", **ui
        )
        demo.load(viewer.on_load, None, reviewer, **ui)
        panels.wire(demo, state, outputs, submitted)
        gr.api(viewer.segment, api_name="segment", concurrency_id="model")
        gr.api(viewer.feedback, api_name="feedback", concurrency_id="model")
        if store is not None:  # review sessions (webapp.review.desk)
            gr.api(desk.worklist, api_name="worklist")
            gr.api(desk.case, api_name="case")
            gr.api(desk.review, api_name="review", concurrency_id="model")
    return demo


def launch(
    demo: gr.Blocks,
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    max_concurrency: int = 2,
    auth: Accounts | list[tuple[str, str]] | None = None,
    queue_size: int = QUEUE_SIZE,
    max_file_size: int = MAX_BYTES,
    shared: FeedbackStore | None = None,
    **kwargs,
):
    """Queue (``max_concurrency`` requests at once, ``queue_size`` waiting) and start the server; uploads over
    ``max_file_size`` bytes are refused, files are served to their owner only, failed sign-ins to ``auth`` (its
    accounts, or (user, password) pairs) slow down further ones, and a page whose server went away says so
    (webapp.instance). With ``shared``, a store other servers may share, sign-ins and failed sign-ins are kept in it
    (webapp.shared). Returns what ``Blocks.launch`` does."""
    demo.queue(default_concurrency_limit=max_concurrency, max_size=queue_size)
    accounts = Accounts.of(auth)
    throttle = Middleware(SignInThrottle, store=shared)
    return demo.launch(
        app_kwargs={
            "middleware": [Middleware(FileGuard), Middleware(ApiGate), throttle, Middleware(InstanceRoute)],
            "lifespan": share_sign_ins(shared),
        },
        head=INSTANCE_CHECK,
        server_name=host,
        server_port=port,
        auth=accounts.check if accounts else None,
        max_file_size=max_file_size,
        allowed_paths=[str(EXAMPLES_DIR)],
        state_session_capacity=SESSION_CAPACITY,
        css=CSS,
        **kwargs,
    )


def model_card_markdown(segmenter: Predictor) -> str:
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
