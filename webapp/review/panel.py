"""The viewer's review panels: a reviewer's worklist, and the organiser's view of a session's progress and agreement.

The worklist drives the viewer through its tab and handler functions (``Desk.open`` makes the viewer's tab show
a case, ``Viewer.attempt`` runs it and ``Viewer.outputs`` renders the page's outputs), not through any one image
widget: the same wiring serves whatever view the page has. Roles are checked on the server at every event; a
reviewer sees only their own sessions and progress, the organiser's view only organisers.
"""

import gradio as gr
import pandas as pd

from .. import text
from ..accounts import Accounts
from ..feedback.record import FeedbackError
from ..tab import CaseRef
from ..tabs import TabError
from .agreement import agreement_markdown, agreement_report
from .chart import agreement_chart
from .desk import Desk
from .worklist import next_after


class ReviewPanels:
    """The two panels: lay them out with :meth:`worklist_layout` and :meth:`organiser_layout`, then :meth:`wire`."""

    def __init__(self, desk: Desk, accounts: Accounts | None) -> None:
        self.desk, self.accounts = desk, accounts

    # --- layout ----------------------------------------------------------------------------------------------
    def worklist_layout(self) -> None:
        with gr.Accordion("Review sessions", open=True, visible=False, elem_id="worklist") as self.box:
            self.session = gr.Dropdown([], value=None, label="Session", elem_id="worklist-session")
            with gr.Row():
                self.next = gr.Button("Next case", variant="primary", size="sm", elem_id="next-case")
                # A text box: a number box shows 0, marked invalid, before anything is typed.
                self.number = gr.Textbox(
                    "", label="Case number", placeholder="e.g. 3", max_lines=1, elem_id="case-number"
                )
                self.open = gr.Button("Open case", size="sm", elem_id="open-case")
            self.progress = gr.Markdown(elem_id="worklist-progress")

    def organiser_layout(self) -> None:
        with gr.Accordion("Organiser: review sessions", open=False, visible=False, elem_id="organiser") as self.org:
            with gr.Row():
                self.org_session = gr.Dropdown([], value=None, label="Session", elem_id="organiser-session")
                self.refresh = gr.Button("Refresh", size="sm")
            self.report = gr.Markdown(elem_id="organiser-report")
            with gr.Row():
                self.progress_plot = gr.BarPlot(x="reviewer", y="reviewed", title="Cases reviewed", y_lim=[0, None])
                self.agreement_chart = gr.HTML(elem_id="agreement-chart")  # webapp.review.chart
                self.kappa_plot = gr.BarPlot(x="pair", y="kappa", title="Cohen's kappa (class)", y_lim=[-1, 1])

    def wire(self, demo: gr.Blocks, state: gr.State, outputs: list, submitted) -> None:
        """Events: ``outputs`` are the viewer's model-event outputs; ``submitted``, the feedback panel's Submit
        event, after which the progress is shown again."""
        ui = dict(api_visibility="private")
        model = dict(ui, concurrency_id="model", show_progress="minimal")
        demo.load(self.on_load, None, [self.session, self.progress, self.box, self.org, self.org_session], **ui)
        self.next.click(self.on_next, [state, self.session], [*outputs, self.progress], **model)
        self.open.click(self.on_open, [state, self.session, self.number], [*outputs, self.progress], **model)
        self.session.change(self.on_progress, [state, self.session], self.progress, show_progress="hidden", **ui)
        submitted.then(self.on_progress, [state, self.session], self.progress, show_progress="hidden", **ui)
        plots = [self.report, self.progress_plot, self.agreement_chart, self.kappa_plot]
        self.org_session.change(self.on_report, self.org_session, plots, **ui)
        self.refresh.click(self.on_report, self.org_session, plots, **ui)

    # --- the reviewer ----------------------------------------------------------------------------------------
    def on_load(self, request: gr.Request) -> tuple:
        """The signed-in user's sessions (and, for an organiser, every session)."""
        user = request.username
        if self.desk.worklists is None or not user:
            return gr.Dropdown(), "", gr.Accordion(visible=False), gr.Accordion(visible=False), gr.Dropdown()
        mine = [s.name for s in self.desk.worklists.sessions(user)]
        organiser = self.accounts is not None and self.accounts.is_organiser(user)
        every = [s.name for s in self.desk.worklists.sessions()] if organiser else []
        first = mine[0] if mine else None
        return (
            gr.Dropdown(choices=mine, value=first),
            self.progress_line(None, first, user) if mine else text.NO_REVIEW_SESSION,
            gr.Accordion(visible=bool(mine)),
            gr.Accordion(visible=organiser),
            gr.Dropdown(choices=every, value=None),
        )

    def on_next(self, key: str, name: str | None, request: gr.Request) -> tuple:
        return self._open(key, name, None, request.username)

    def on_open(self, key: str, name: str | None, number: str | None, request: gr.Request) -> tuple:
        digits = (number or "").strip()
        if not digits.isdigit() or int(digits) < 1:
            gr.Warning(text.NO_CASE_NUMBER)
            return gr.skip(), gr.skip(), gr.skip()
        return self._open(key, name, int(digits) - 1, request.username)

    def _open(self, key: str, name: str | None, position: int | None, user: str | None) -> tuple:
        """The tab's key, the canvas showing the case, and the progress line."""
        if not name:
            gr.Warning(text.NO_SESSION_CHOSEN)
            return gr.skip(), gr.skip(), gr.skip()
        viewer = self.desk.viewer
        tab, message = viewer.attempt(key, user, lambda tab: self.desk.open(tab, name, user, position))
        return (*viewer.outputs(tab, message), self.progress_line(tab.case, name, user))

    def on_progress(self, key: str, name: str | None, request: gr.Request) -> str:
        if not name:
            return ""
        try:
            case = self.desk.viewer.tabs.get(key, request.username).case
        except TabError:
            case = None
        return self.progress_line(case, name, request.username)

    def progress_line(self, case: CaseRef | None, name: str, user: str | None) -> str:
        """'Case k of N open; r reviewed; next: case m' for the user's session ``name`` (``case``: the tab's)."""
        try:
            session = self.desk.session_for(name, user)
        except FeedbackError as exc:
            return f"**{exc}**"
        done = self.desk.worklists.reviewed(session, user)
        shown = case if case is not None and case.session == name else None
        position = None if shown is None else shown.position
        return text.progress_line(
            size=session.size,
            reviewed=len(done),
            shown=position,
            upcoming=next_after(done, session.size, position),
            case_key=None if shown is None else shown.key,
            shown_done=position in done,
        )

    # --- the organiser ---------------------------------------------------------------------------------------
    def on_report(self, name: str | None, request: gr.Request) -> tuple:
        """The session's agreement report and its plots, for organisers only."""
        if self.accounts is None or not self.accounts.is_organiser(request.username):
            return text.ORGANISERS_ONLY, None, None, None
        if not name or self.desk.worklists is None:
            return "", None, None, None
        worklists = self.desk.worklists
        report, _ = agreement_report(worklists, worklists.session(name))
        reviewers = report["reviewers"]
        progress = pd.DataFrame([{k: r[k] for k in ("reviewer", "reviewed")} for r in reviewers])
        kappa = pd.DataFrame(
            [{"pair": f"{p['a']} / {p['b']}", "kappa": p["kappa"]} for p in report["pairs"] if p["kappa"] is not None],
            columns=["pair", "kappa"],
        )
        return agreement_markdown(report), progress, agreement_chart(reviewers), kappa
