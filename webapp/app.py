"""The liverclick web viewer's page: its layout and which handler each event runs.

Upload an ultrasound image, click on a lesion or drag a box around it, see it outlined and classified. The
image is shown in the canvas view (:mod:`webapp.canvas`), which draws the outline in the browser and sends its
inputs to the server directly, one call per input; the handlers are the methods of :class:`webapp.handlers.Viewer`
(plain functions of the tab's key and the widgets' values); this module only lays out the widgets and wires them.
Each browser tab's state (:class:`webapp.tab.Tab`) is held on the server by :class:`webapp.tabs.Tabs`; the page
keeps its key in ``gr.State``. ``gr.api`` adds the programmatic endpoints ``/segment`` and ``/feedback``
(webapp.api; with a feedback store also ``/worklist``, ``/case`` and ``/review``: webapp.review.desk).

Access: with logins (``--auth``/``--auth-file``) Gradio's login protects the whole app, page and API;
without them the segmentation demo is open and feedback is refused, since every record names its reviewer.
Uploads are read into memory and removed from disk at once, and a signed-in user is served only their own
files (:mod:`webapp.files`).
Hosted-demo limits: uploads over MAX_BYTES and images over core.imageio's pixel limit are refused, model
work runs on a few worker threads under a time limit (webapp.handlers), the queue is bounded, and an
exception in one request is logged and answered with a message, never passed on to the server.
"""

from dataclasses import dataclass
from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from core.imageio import MAX_BYTES
from core.runtime import Predictor

from . import card, text
from .accounts import Accounts
from .api import Api
from .canvas import canvas_component
from .feedback.record import COMMENT_MAX_CHARS
from .feedback.store import FeedbackStore
from .files import FileGuard, upload_field
from .gate import ApiGate
from .handlers import TAB_CAPACITY, TAB_TTL_S, TIME_LIMIT_S, Viewer
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
    predictor: Predictor,
    *,
    examples_dir: Path = EXAMPLES_DIR,
    store: FeedbackStore | None = None,
    time_limit_s: float = TIME_LIMIT_S,
    workers: int = 2,
    accounts: Accounts | None = None,
) -> gr.Blocks:
    """The page, wired to ``predictor`` (and to ``store`` for reviewer feedback and review sessions, whose
    organiser's view ``accounts`` opens to its organisers); launch it with :func:`launch`.

    Model work runs on ``workers`` threads, each request within ``time_limit_s``.
    """
    viewer = Viewer(predictor, store, time_limit_s=time_limit_s, workers=workers, public=(examples_dir,))
    panels = ReviewPanels(Desk(viewer), accounts)
    examples = card.shown_examples(predictor, examples_dir)  # the liver phantoms only for a liver model
    domain = card.domain(predictor)
    gr.set_static_paths([examples_dir])  # served where they are: the upload and cache folder holds no public file
    with gr.Blocks(title=text.page_title(domain), delete_cache=(600, 3600)) as demo:
        gr.Markdown(text.title(domain), elem_id="title")
        gr.Markdown(text.header(predictor, domain), elem_id="notice")
        state = gr.State("", time_to_live=TAB_TTL_S, delete_callback=viewer.forget)  # the tab's key
        with gr.Row():
            with gr.Column(scale=3):
                canvas = canvas_component(viewer.on_canvas, viewer.on_download)
            with gr.Column(scale=2):
                panels.worklist_layout()
                upload = upload_field(label="Ultrasound image: PNG, JPEG, BMP, TIFF or DICOM", elem_id="upload")
                frame = gr.Slider(0, 1, value=0, step=1, label="Frame (0 = first)", visible=False, elem_id="frame")
                form = feedback_form(predictor, visible=store is not None)
        if examples:
            gr.Examples([[str(p)] for p in examples], inputs=[upload], label="Examples")
        with gr.Accordion(f"{text.CARD_PANEL}: {predictor.name} {predictor.version}", open=True, elem_id="about"):
            gr.Markdown(card.summary_markdown(predictor), elem_id="model-card")
            with gr.Accordion(text.CARD_RAW, open=False):
                gr.Code(card.raw_json(predictor), language="json", interactive=False, elem_id="model-card-raw")
        panels.organiser_layout()
        submitted = wire(demo, viewer, state=state, canvas=canvas, upload=upload, frame=frame, form=form)
        panels.wire(demo, state, [state, canvas], submitted)
        api = Api(viewer)
        gr.api(api.segment, api_name="segment", concurrency_id="model")
        gr.api(api.feedback, api_name="feedback", concurrency_id="model")
        if store is not None:  # review sessions (webapp.review.desk)
            gr.api(panels.desk.worklist, api_name="worklist")
            gr.api(panels.desk.case, api_name="case")
            gr.api(panels.desk.review, api_name="review", concurrency_id="model")
    return demo


@dataclass(frozen=True)
class FeedbackForm:
    """The feedback panel's widgets: who is signed in, the five questions and Submit (whether the outline shown is
    saved is said in the canvas, with every answer)."""

    reviewer: gr.Markdown
    questions: tuple  # verdict, corrected class, rating, accepted, comment: on_submit's arguments, in order
    submit: gr.Button


def feedback_form(predictor: Predictor, *, visible: bool) -> FeedbackForm:
    with gr.Accordion("Feedback on this outline", open=True, visible=visible, elem_id="review"):
        reviewer = gr.Markdown(elem_id="reviewer")
        verdict = gr.Radio(
            [("Agree", "agree"), ("Disagree", "disagree")], label="The most likely class is right", elem_id="verdict"
        )
        corrected = gr.Dropdown(
            list(predictor.spec.class_names), value=None, label="Correct class", visible=False, elem_id="corrected"
        )
        rating = gr.Radio(RATINGS, label="Outline quality", elem_id="rating")
        accepted = gr.Checkbox(
            label="Accept the final outline (with my corrective clicks) as reference", elem_id="accepted"
        )
        comment = gr.Textbox(label="Comment", lines=2, max_length=COMMENT_MAX_CHARS, elem_id="comment")
        submit = gr.Button("Submit feedback", variant="primary", elem_id="submit")
    return FeedbackForm(reviewer, (verdict, corrected, rating, accepted, comment), submit)


def wire(demo: gr.Blocks, viewer: Viewer, *, state, canvas, upload, frame, form: FeedbackForm):
    """The viewer's events (the canvas sends its own inputs: Viewer.on_canvas); returns the Submit event."""
    ui = dict(api_visibility="private")  # the page's own events; the public API is /segment and /feedback
    model = dict(ui, concurrency_id="model", show_progress="minimal")
    upload.change(viewer.on_file, [state, upload], [state, canvas, frame], **model)
    # A slider moved while a frame loads is read again when it is done (always_last).
    frame.input(viewer.on_frame, [state, frame], [state, canvas], trigger_mode="always_last", **model)
    verdict, corrected = form.questions[:2]
    verdict.change(viewer.on_verdict, verdict, corrected, show_progress="hidden", **ui)
    demo.load(viewer.on_load, None, form.reviewer, **ui)
    # Once: a second press while the first is being stored is dropped.
    questions = list(form.questions)
    return form.submit.click(viewer.on_submit, [state, *questions], [canvas, *questions], trigger_mode="once", **ui)


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
        state_session_capacity=TAB_CAPACITY,
        css=CSS,
        **kwargs,
    )
