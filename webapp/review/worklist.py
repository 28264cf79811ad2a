"""Review sessions, their cases and reviewers, and each reviewer's progress, in the feedback database.

A session is created whole in one transaction. A reviewer's progress is read from the feedback records that
name the session's cases, so it survives a closed tab, a restart, and a server that died: the next case is the
first one, in the session's order, that the reviewer has no record of.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from core.prompt import Prompt
from core.runtime import Predictor

from ..feedback.record import FeedbackError, decode_png, encode_png, pixel_sha256
from ..feedback.store import FeedbackStore, audit
from .cases import NewCase, WorklistError
from .ordering import ORDERINGS, FirstAnswer, serving_order

NAME = re.compile(r"[\w][\w .:+-]{0,99}")


@dataclass(frozen=True)
class ReviewSession:
    id: int
    name: str
    created_at: str
    created_by: str
    ordering: str
    seed: int
    model_name: str
    model_version: str
    classes: tuple[str, ...]
    reviewers: tuple[str, ...]
    size: int  # cases


@dataclass(frozen=True)
class StoredCase:
    """A case of a session, as served: its pixels, first prompt and the model's first answer."""

    id: int
    position: int  # in the session's order, from 0
    manifest_row: int
    key: str
    frame: int
    prompt: Prompt
    class_probs: dict[str, float]
    uncertainty: float
    reference_label: str | None
    image: np.ndarray | None = None  # 8-bit grayscale, when read
    model_mask: np.ndarray | None = None
    reference_mask: np.ndarray | None = None

    @property
    def model_class(self) -> str:
        return max(self.class_probs, key=self.class_probs.get)


_CASE = "id, position, manifest_row, case_key, frame, prompt, class_probs, uncertainty, reference_label"
_MASKS = "model_mask_png, reference_mask_png"


class Worklists:
    """The review sessions of one feedback store."""

    def __init__(self, store: FeedbackStore) -> None:
        self.store = store

    # --- creating ----------------------------------------------------------------------------------------
    def create(
        self,
        name: str,
        *,
        created_by: str,
        ordering: str,
        seed: int,
        model: Predictor,
        reviewers: list[str],
        cases: list[NewCase],
        answers: list[FirstAnswer],
    ) -> ReviewSession:
        """Store a session whole: its cases (pixels, first prompt, the model's answer, references) in the order
        ``ordering`` gives, and its reviewers."""
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise WorklistError(
                "a session name is 1 to 100 letters, digits, spaces or . _ : + - (not starting with one)"
            )
        if ordering not in ORDERINGS:
            raise WorklistError(f"the order must be one of {', '.join(ORDERINGS)}, got {ordering!r}")
        reviewers = sorted({r.strip() for r in reviewers if r.strip()})
        if not reviewers:
            raise WorklistError("name at least one reviewer")
        order = serving_order([a.uncertainty for a in answers], ordering, seed)
        stamp = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        session_values = (name, stamp, created_by, ordering, seed, model.name, model.version)

        def write(run) -> int:
            if run("SELECT id FROM review_session WHERE name = ?", (name,)).fetchone():
                raise WorklistError(f"a review session named {name!r} exists already")
            sql = (
                "INSERT INTO review_session (name, created_at, created_by, ordering, seed, model_name, model_version, "
                "classes) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id"
            )
            session_id = run(sql, (*session_values, json.dumps(list(model.spec.class_names)))).fetchone()[0]
            for reviewer in reviewers:
                run("INSERT INTO review_reviewer (session_id, reviewer) VALUES (?, ?)", (session_id, reviewer))
            for position, index in enumerate(order):
                run(_INSERT_CASE, _case_values(session_id, position, cases[index], answers[index]))
            return int(session_id)

        session_id = self.store.write(write)
        audit.info(
            "review session #%d %r created by %s: %d cases, reviewers %s, %s order",
            session_id, name, created_by, len(cases), ", ".join(reviewers), ordering,
        )  # fmt: skip
        return self.session(name)

    # --- reading -----------------------------------------------------------------------------------------
    def sessions(self, reviewer: str | None = None) -> list[ReviewSession]:
        """Every session (a reviewer's own, if given), newest first."""
        where = " WHERE id IN (SELECT session_id FROM review_reviewer WHERE reviewer = ?)" if reviewer else ""
        sql = f"SELECT name FROM review_session{where} ORDER BY id DESC"
        names = self.store.read(lambda run: [r[0] for r in run(sql, (reviewer,) if reviewer else ()).fetchall()])
        return [self.session(n) for n in names]

    def session(self, name: str) -> ReviewSession:
        def read(run):
            sql = (
                "SELECT id, name, created_at, created_by, ordering, seed, model_name, model_version, classes "
                "FROM review_session WHERE name = ?"
            )
            row = run(sql, (name,)).fetchone()
            if row is None:
                return None
            reviewers = run("SELECT reviewer FROM review_reviewer WHERE session_id = ? ORDER BY reviewer", (row[0],))
            size = run("SELECT COUNT(*) FROM review_case WHERE session_id = ?", (row[0],)).fetchone()[0]
            return row, tuple(r[0] for r in reviewers.fetchall()), int(size)

        found = self.store.read(read)
        if found is None:
            raise WorklistError(f"no review session named {name!r}")
        row, reviewers, size = found
        return ReviewSession(*row[:8], tuple(json.loads(row[8])), reviewers, size)

    def reviewed(self, session: ReviewSession, reviewer: str) -> set[int]:
        """The positions of the cases ``reviewer`` has a record of."""
        sql = (
            "SELECT DISTINCT c.position FROM feedback f JOIN review_case c ON c.id = f.case_id "
            "WHERE f.session_id = ? AND f.reviewer = ?"
        )
        return self.store.read(lambda run: {int(r[0]) for r in run(sql, (session.id, reviewer)).fetchall()})

    def next_position(self, session: ReviewSession, reviewer: str, shown: int | None = None) -> int | None:
        """The first case in the session's order that ``reviewer`` has not reviewed, other than the one ``shown``
        (the first after it, else from the start); None when no other is left."""
        return next_after(self.reviewed(session, reviewer), session.size, shown)

    def progress(self, session: ReviewSession) -> dict[str, int]:
        """Cases reviewed, by reviewer (every reviewer of the session, 0 included)."""
        sql = "SELECT reviewer, COUNT(DISTINCT case_id) FROM feedback WHERE session_id = ? GROUP BY reviewer"
        counts = dict(self.store.read(lambda run: run(sql, (session.id,)).fetchall()))
        return {r: int(counts.get(r, 0)) for r in session.reviewers}

    def case(self, session: ReviewSession, position: int) -> StoredCase:
        """The case at ``position`` with its pixels."""
        if not isinstance(position, int) or not 0 <= position < session.size:
            raise WorklistError(
                f"session {session.name!r} has cases 1 to {session.size}; there is no case {position + 1}"
            )
        sql = f"SELECT {_CASE}, image_png FROM review_case WHERE session_id = ? AND position = ?"
        row = self.store.read(lambda run: run(sql, (session.id, position)).fetchone())
        return _stored(row[:-1], image=decode_png(bytes(row[-1])))

    def cases(self, session: ReviewSession, masks: bool = True) -> list[StoredCase]:
        """Every case of a session in its order, without pixels (with the model's and the reference outlines)."""
        columns = f"{_CASE}, {_MASKS}" if masks else _CASE
        sql = f"SELECT {columns} FROM review_case WHERE session_id = ? ORDER BY position"
        rows = self.store.read(lambda run: run(sql, (session.id,)).fetchall())
        if not masks:
            return [_stored(row) for row in rows]
        return [_stored(row[:-2], model_mask=_mask(row[-2]), reference_mask=_mask(row[-1])) for row in rows]

    def check_reviewer(self, session: ReviewSession, reviewer: str | None) -> None:
        if reviewer not in session.reviewers:
            raise FeedbackError(f"you are not a reviewer of session {session.name!r}")


_INSERT_CASE = (
    "INSERT INTO review_case (session_id, position, manifest_row, case_key, image_png, image_sha256, frame, prompt, "
    "model_mask_png, class_probs, uncertainty, reference_mask_png, reference_label) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _case_values(session_id: int, position: int, case: NewCase, answer: FirstAnswer) -> tuple:
    reference = None if case.reference_mask is None else encode_png(case.reference_mask.astype(np.uint8) * 255)
    return (
        session_id,
        position,
        case.row,
        case.key,
        encode_png(case.image.pixels),
        pixel_sha256(case.image.pixels),
        case.image.frame,
        json.dumps(case.prompt.to_dict()),
        encode_png(answer.mask.astype(np.uint8) * 255),
        json.dumps(answer.class_probs),
        float(answer.uncertainty),
        reference,
        case.reference_label,
    )


def _stored(row, **pixels) -> StoredCase:
    case_id, position, manifest_row, key, frame, prompt, probs, uncertainty, label = row
    prompt = Prompt.from_dict(json.loads(prompt))
    return StoredCase(
        int(case_id), int(position), int(manifest_row), key, int(frame), prompt, json.loads(probs), float(uncertainty),
        label, **pixels,
    )  # fmt: skip


def _mask(png) -> np.ndarray | None:
    return None if png is None else decode_png(bytes(png)) > 0


def next_after(done: set[int], size: int, shown: int | None) -> int | None:
    """The first position not in ``done`` after ``shown`` (then from the start), never ``shown`` itself."""
    start = 0 if shown is None else shown + 1
    order = [*range(start, size), *range(0, start)]
    return next((p for p in order if p not in done and p != shown), None)
