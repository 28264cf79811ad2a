"""The feedback store: validated records in, records out; :meth:`FeedbackStore.add` returns once committed.

Every write is logged on ``liverclick.audit`` (who, when, which record, session and case; never image content).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from core.prompt import Prompt

from .backends import Backend, open_backend
from .migrations import COLUMNS, MIGRATIONS
from .record import FeedbackError, FeedbackRecord, decode_png, encode_png

audit = logging.getLogger("liverclick.audit")
# What a client sends for one write: a retry with its request id must send the same (the outline and probabilities
# are the server's own, predicted again).
REQUEST_CONTENT = (
    "image_sha256", "frame", "prompt", "agree", "corrected_class", "outline_rating", "accepted", "comment",
    "session_id", "case_id",
)  # fmt: skip


class FeedbackStore:
    """A feedback database. Thread-safe (one connection behind a lock); use :meth:`open`."""

    def __init__(self, backend: Backend, store_images: bool) -> None:
        self._db = backend
        self.store_images = bool(store_images)
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, url: str | Path, store_images: bool = False, create: bool = True, migrations=MIGRATIONS
    ) -> FeedbackStore:
        """Open the database at ``url`` and bring its schema up to date (``migrations``: for tests).

        ``url``: a file path or ``sqlite:///path`` (SQLite; created unless ``create`` is false), or
        ``postgresql://user:password@host:port/db`` (the database must exist).
        """
        backend = open_backend(url, create)
        try:
            backend.migrate(tuple(migrations))
        except BaseException:
            backend.close()
            raise
        return cls(backend, store_images)

    @property
    def url(self) -> str:
        """Where the feedback goes, without any password."""
        return self._db.label

    @property
    def schema_version(self) -> int:
        with self._lock:
            return self._db.read(lambda run: run("SELECT MAX(version) FROM schema_version").fetchone()[0])

    def add(self, record: FeedbackRecord) -> int:
        """Store one record in its own transaction; returns its id once committed. A record whose reviewer and
        ``request_id`` are already stored stores nothing: a client's retry (the same image, prompt and answers)
        gets the first one's id, anything else a FeedbackError saying "conflict"."""
        if not isinstance(record, FeedbackRecord):
            raise FeedbackError(f"expected a FeedbackRecord, got {type(record).__name__}")
        image = encode_png(record.image) if self.store_images and record.image is not None else None
        values = (
            record.created_at or datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            record.reviewer,
            record.model_name,
            record.model_version,
            json.dumps(record.prompt.to_dict()),
            encode_png(record.mask.astype(np.uint8) * 255),
            json.dumps(record.class_probs),
            record.malignant_prob,
            record.predicted_class,
            int(record.agree),
            record.corrected_class,
            record.outline_rating,
            int(record.accepted),
            record.comment,
            record.image_sha256,
            record.image_width,
            record.image_height,
            record.frame,
            record.request_id,
            record.session_id,
            record.case_id,
            image,
        )
        insert = (
            f"INSERT INTO feedback ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) "
            "ON CONFLICT (reviewer, request_id) DO NOTHING RETURNING id"
        )

        def write(run) -> tuple[int, bool]:
            row = run(insert, values).fetchone()
            if row is not None:
                return int(row[0]), True
            sql = f"SELECT id, {', '.join(REQUEST_CONTENT)} FROM feedback WHERE reviewer = ? AND request_id = ?"
            first, *stored = run(sql, (record.reviewer, record.request_id)).fetchone()
            sent = dict(zip(COLUMNS, values, strict=True))
            if stored != [sent[column] for column in REQUEST_CONTENT]:
                raise FeedbackError(
                    f"conflict: request id {record.request_id} was already used for another review (another image, "
                    "prompt or answers); nothing was stored: send a new request id for new content"
                )
            return int(first), False

        with self._lock:
            feedback_id, new = self._db.write(write)
        case = f" on case #{record.case_id} of review session #{record.session_id}" if record.case_id else ""
        audit.info(
            "%s feedback #%d by %s%s%s",
            "stored" if new else "repeated request: nothing stored for",
            feedback_id,
            record.reviewer,
            case,
            f" (request {record.request_id})" if record.request_id else "",
        )
        return feedback_id

    def count(self, accepted: bool | None = None) -> int:
        """Number of records (``accepted``: only those accepted, or not accepted, as reference)."""
        where, params = ("", ()) if accepted is None else (" WHERE accepted = ?", (int(accepted),))
        with self._lock:
            return int(self._db.read(lambda run: run(f"SELECT COUNT(*) FROM feedback{where}", params).fetchone()[0]))

    def iter_records(
        self,
        accepted: bool | None = None,
        images: bool = True,
        batch: int = 64,
        session_id: int | None = None,
        reviewer: str | None = None,
    ) -> Iterator[FeedbackRecord]:
        """Records in id order, read a batch at a time (no lock or transaction is held between batches); only
        those ``accepted`` (or not) as reference, of review session ``session_id``, by ``reviewer``, if given.

        ``images=False`` leaves the stored pixels unread (``image`` is then None), for reports.
        """
        columns = ("id", *COLUMNS[:-1], "image_png" if images else "NULL")
        where, params = "", []
        for column, value in (("accepted", accepted), ("session_id", session_id), ("reviewer", reviewer)):
            if value is not None:
                where += f" AND {column} = ?"
                params.append(int(value) if isinstance(value, bool) else value)
        sql = f"SELECT {', '.join(columns)} FROM feedback WHERE id > ?{where} ORDER BY id LIMIT ?"
        last = 0
        while True:
            rows = self.read(lambda run, last=last: run(sql, (last, *params, batch)).fetchall())
            if not rows:
                return
            for row in rows:
                yield _record(dict(zip(columns[:-1] + ("image_png",), row, strict=True)))
            last = rows[-1][0]

    def read(self, work):
        """Run ``work(run)`` in a read transaction (``run(sql, params)``, ``?`` placeholders): for the tables
        that live beside the records (webapp.review)."""
        with self._lock:
            return self._db.read(work)

    def write(self, work):
        """Run ``work(run)`` in a write transaction; it commits when ``work`` returns."""
        with self._lock:
            return self._db.write(work)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _record(row: dict) -> FeedbackRecord:
    mask, image = decode_png(row["mask_png"]) > 0, row["image_png"]
    return FeedbackRecord(
        id=int(row["id"]),
        created_at=row["created_at"],
        reviewer=row["reviewer"],
        model_name=row["model_name"],
        model_version=row["model_version"],
        prompt=Prompt.from_dict(json.loads(row["prompt"])),
        mask=mask,
        class_probs=json.loads(row["class_probs"]),
        malignant_prob=float(row["malignant_prob"]),
        predicted_class=row["predicted_class"],
        agree=bool(row["agree"]),
        corrected_class=row["corrected_class"],
        outline_rating=int(row["outline_rating"]),
        accepted=bool(row["accepted"]),
        comment=row["comment"],
        image_sha256=row["image_sha256"],
        image_width=int(row["image_width"]),
        image_height=int(row["image_height"]),
        frame=int(row["frame"]),
        request_id=row["request_id"],
        session_id=row["session_id"],
        case_id=row["case_id"],
        image=None if image is None else decode_png(bytes(image)),
    )
