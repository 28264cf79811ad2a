"""A reviewer's desk: their review sessions, the next case, and the review of a case, for the page and the API.

The API (``gr.api``; Gradio reads the types from the annotations, so no ``from __future__ import annotations``):

- ``/worklist()``: the signed-in reviewer's sessions with their progress and next case;
- ``/case(session, position=None)``: a case's image (PNG of its grayscale pixels) and first prompt; without a
  position, the first case in the session's order the reviewer has not reviewed;
- ``/review(session, position, prompt, agree, outline_rating, accepted, ...)``: the server predicts from the
  case's pixels and the reviewer's final prompt and stores the review under the session and case (a retry with
  the same ``request_id`` stores nothing new). Positions count from 1, as "case k of N" does.
"""

import math

import gradio as gr
from gradio import FileData

from core.imageio import UltrasoundImage
from core.prompt import Prompt, parse_json
from core.runtime import Prediction
from core.serialize import FEEDBACK_ANSWER, prediction_json

from ..api import api_errors
from ..feedback.record import FeedbackError, encode_png
from ..handlers import Viewer
from ..tab import CaseRef, Review, Tab, feedback_record, open_case
from ..text import LOGIN_NEEDED
from .cases import WorklistError
from .worklist import ReviewSession, StoredCase, Worklists

ALL_DONE = "all {n} cases of session {name!r} are reviewed; open one by its number to review it again"
LAST_LEFT = "case {k} is the last one left to review, and it is open"


class Desk:
    """Review sessions as the viewer serves them (``viewer``'s model, store, time limit and files)."""

    def __init__(self, viewer: Viewer) -> None:
        self.viewer = viewer
        self.worklists = Worklists(viewer.store) if viewer.store is not None else None

    # --- shared with the page --------------------------------------------------------------------------------
    def the_worklists(self) -> Worklists:
        if self.worklists is None:
            raise FeedbackError("this server keeps no review sessions: it was started without --feedback-db")
        return self.worklists

    def session_for(self, name: str, reviewer: str | None) -> ReviewSession:
        """The session ``name``, if ``reviewer`` is one of its reviewers."""
        if not reviewer:
            raise FeedbackError(LOGIN_NEEDED)
        worklists = self.the_worklists()
        session = worklists.session(name)
        worklists.check_reviewer(session, reviewer)
        return session

    def fetch(
        self, name: str, reviewer: str | None, position: int | None, shown: int | None = None
    ) -> tuple[ReviewSession, StoredCase]:
        """A case of the reviewer's session: at ``position`` (from 0), or the next one not reviewed other than the
        one ``shown``."""
        session = self.session_for(name, reviewer)
        if position is None:
            position = self.worklists.next_position(session, reviewer, shown)
            if position is None and shown is not None and shown not in self.worklists.reviewed(session, reviewer):
                raise WorklistError(LAST_LEFT.format(k=shown + 1))
            if position is None:
                raise WorklistError(ALL_DONE.format(n=session.size, name=session.name))
        return session, self.worklists.case(session, position)

    @staticmethod
    def ref(session: ReviewSession, case: StoredCase) -> CaseRef:
        return CaseRef(session.name, session.id, case.id, case.position, session.size, case.key)

    @staticmethod
    def picture(case: StoredCase) -> UltrasoundImage:
        return UltrasoundImage(case.image, None, "review case (8-bit grayscale)", case.frame, 1)

    def open(self, tab: Tab, name: str, reviewer: str | None, position: int | None) -> Tab:
        """The viewer's tab showing a case with the model's outline for its first prompt."""
        shown = tab.case.position if tab.case is not None and tab.case.session == name else None
        session, case = self.fetch(name, reviewer, position, shown)
        return open_case(self.viewer.predictor, tab, self.picture(case), self.ref(session, case), case.prompt)

    # --- the API ---------------------------------------------------------------------------------------------
    def worklist(self, request: gr.Request) -> list[dict]:
        """The signed-in reviewer's review sessions: [{"session", "cases", "reviewed", "next"}], next being the
        position (from 1) of the first case not reviewed yet, or null when all are."""
        with api_errors("worklist"):
            if not request.username:
                raise FeedbackError(LOGIN_NEEDED)
            worklists = self.the_worklists()
            out = []
            for session in worklists.sessions(request.username):
                done = worklists.reviewed(session, request.username)
                upcoming = next((p for p in range(session.size) if p not in done), None)
                out.append(
                    {
                        "session": session.name,
                        "cases": session.size,
                        "reviewed": len(done),
                        "next": None if upcoming is None else upcoming + 1,
                    }
                )
        return out

    def case(self, session: str, request: gr.Request, position: int | None = None) -> tuple[FileData, dict]:
        """A case of one of your review sessions: its image (PNG, 8-bit grayscale) and {"session", "position",
        "of", "case", "prompt", "reviewed"}. position: from 1; none gives the first case you have not reviewed."""
        with api_errors("case"):
            stored, case = self.fetch(session, request.username, None if position is None else _index(position))
            image = self.viewer.workspace.write_once(request.username, "case.png", encode_png(case.image))
            reviewed = case.position in self.worklists.reviewed(stored, request.username)
            info = {
                "session": stored.name,
                "position": case.position + 1,
                "of": stored.size,
                "case": case.key,
                "prompt": case.prompt.to_dict(),
                "reviewed": reviewed,
            }
        return FileData(path=image), info

    def review(
        self,
        session: str,
        position: int,
        prompt: str,
        agree: bool,
        outline_rating: int,
        accepted: bool,
        request: gr.Request,
        corrected_class: str | None = None,
        comment: str = "",
        request_id: str | None = None,
    ) -> dict:
        """Store your review of a case of one of your sessions (position from 1). prompt: your final prompt, JSON
        as for /segment (the case's first prompt and your corrections, in order); the server replays that history
        on the case's pixels, so the stored outline is the model's own, as the viewer showed it. The answers are
        those of /feedback; request_id: your id for this write (a retry with it stores nothing new). Returns {"id",
        "predicted_class", "class_probs", "area_px", "next"}, next being the next case you have not reviewed (from
        1), or null."""
        with api_errors("review"):
            stored, case = self.fetch(session, request.username, _index(position))
            review = Review(
                agree=agree,
                outline_rating=outline_rating,
                accepted=accepted,
                corrected_class=corrected_class,
                comment=comment,
            )

            def work() -> tuple[int, Prediction]:
                p = Prompt.from_dict(parse_json(prompt))
                picture = self.picture(case)
                prediction = self.viewer.predictor.replay(picture, p)
                record = feedback_record(
                    self.viewer.predictor,
                    image=picture,
                    prompt=p,
                    prediction=prediction,
                    reviewer=request.username,
                    review=review,
                    request_id=request_id,
                    case=self.ref(stored, case),
                )
                return self.viewer.the_store().add(record), prediction

            feedback_id, prediction = self.viewer.deadline.run(work, owner=request.username)
            upcoming = self.worklists.next_position(stored, request.username)
        answer = prediction_json(prediction, FEEDBACK_ANSWER)
        return {"id": feedback_id, **answer, "next": None if upcoming is None else upcoming + 1}


def _index(position) -> int:
    """A case number from a client (from 1) -> its position (from 0)."""
    number = isinstance(position, (int, float)) and not isinstance(position, bool) and math.isfinite(position)
    if not number or position != int(position):
        raise WorklistError(f"the case number must be a whole number from 1, got {position!r}"[:120])
    return int(position) - 1
