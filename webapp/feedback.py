"""Reviewer feedback: one validated record per reviewed case, kept in SQLite or PostgreSQL.

Clinician feedback sessions rate and correct the model; what they say must never be lost and must
be usable as training data later, so every record is validated whole before anything is written and
:meth:`FeedbackStore.add` returns only after the transaction has committed (that return is the
acknowledgement the web page shows).

Public API (what the web viewer and the CLI call)::

    store = FeedbackStore.open(url, store_images=False)  # a path, sqlite:///path or postgresql://...
    record = FeedbackRecord.from_prediction(prediction, prompt, pixels, reviewer="dr_a",
                                            model_name=..., model_version=..., agree=False,
                                            corrected_class="malignant", outline_rating=4,
                                            accepted=True, comment="")
    feedback_id = store.add(record)        # raises FeedbackError (invalid) or StoreUnavailable
    store.count(); store.iter_records(); store.close()
    export_main(args)                      # liverclick feedback export --db URL --out DIR

Storage: SQLite by default (WAL journal, ``synchronous=FULL`` so that an acknowledged write survives
a killed process or a power cut, one transaction per write, a busy timeout for concurrent writers);
PostgreSQL for a demo served from several machines, with the same schema and the same behaviour.
The schema carries a version; :data:`MIGRATIONS` are applied in order on open.

Privacy: the image pixels are stored only when the operator enables ``store_images``, and then as a
PNG of the 8-bit grayscale pixels, never the uploaded file: no DICOM header (patient data) is ever
kept. Without images a record keeps the pixels' SHA-256 and the image size only.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from core.prompt import Prompt, PromptError

COMMENT_MAX_CHARS = 2000
NAME_MAX_CHARS = 200  # reviewer, model name and version, class names
BUSY_TIMEOUT_MS = 10_000  # how long a SQLite writer waits for another writer's lock
CONNECT_TIMEOUT_S = 10


class FeedbackError(ValueError):
    """Feedback that cannot be stored (or a store that cannot be used), with a message for a person."""


class StoreUnavailable(FeedbackError):
    """The database could not be reached or written: the record was not acknowledged."""


# --- the record ------------------------------------------------------------------------------


def pixel_sha256(pixels: np.ndarray) -> str:
    """SHA-256 of an 8-bit grayscale image's size and pixels: equal for the same image from any file."""
    pixels = np.ascontiguousarray(pixels)
    header = f"{pixels.shape[0]}x{pixels.shape[1]}\n".encode()
    return hashlib.sha256(header + pixels.tobytes()).hexdigest()


@dataclass(frozen=True)
class FeedbackRecord:
    """One reviewed case. Construction validates every field and raises FeedbackError naming it.

    ``mask`` is the final outline (after the reviewer's own corrective clicks) at the image's own
    size; ``image`` the 8-bit grayscale pixels, kept only by a store opened with ``store_images``.
    ``id`` and ``created_at`` (UTC, ISO 8601) are set by the store.
    """

    reviewer: str
    model_name: str
    model_version: str
    prompt: Prompt
    mask: np.ndarray
    class_probs: dict[str, float]
    malignant_prob: float
    predicted_class: str
    agree: bool
    outline_rating: int
    accepted: bool
    image_sha256: str
    image_width: int
    image_height: int
    corrected_class: str | None = None
    comment: str = ""
    image: np.ndarray | None = field(default=None, repr=False)
    created_at: str = ""
    id: int | None = None

    def __post_init__(self) -> None:
        for name in ("reviewer", "model_name", "model_version"):
            self._set(name, _text(getattr(self, name), name, NAME_MAX_CHARS, required=True))
        self._set("comment", _text(self.comment, "comment", COMMENT_MAX_CHARS, required=False))
        width, height = _positive_int(self.image_width, "image_width"), _positive_int(self.image_height, "image_height")
        self._set("image_width", width)
        self._set("image_height", height)
        self._set("prompt", _prompt(self.prompt, width, height))
        self._set("mask", _mask(self.mask, width, height))
        probs = _class_probs(self.class_probs)
        self._set("class_probs", probs)
        self._set("malignant_prob", _probability(self.malignant_prob, "malignant_prob"))
        if not isinstance(self.predicted_class, str) or self.predicted_class not in probs:
            raise FeedbackError(
                f"predicted_class {self.predicted_class!r} is not one of the model's classes {list(probs)}"
            )
        self._set("agree", _flag(self.agree, "agree"))
        self._set("accepted", _flag(self.accepted, "accepted"))
        self._set("corrected_class", self._checked_correction(probs))
        rating = self.outline_rating
        if isinstance(rating, (bool, np.bool_)) or not isinstance(rating, numbers.Integral) or not 1 <= rating <= 5:
            raise FeedbackError(f"outline_rating must be a whole number from 1 to 5, got {rating!r}")
        self._set("outline_rating", int(rating))
        if self.accepted and not self.mask.any():
            raise FeedbackError("an empty outline cannot be accepted as reference")
        if not isinstance(self.image_sha256, str) or not re.fullmatch(r"[0-9a-f]{64}", self.image_sha256):
            raise FeedbackError("image_sha256 must be 64 lowercase hexadecimal digits")
        if self.image is not None:
            self._set("image", _image(self.image, width, height, self.image_sha256))
        self._set("created_at", _timestamp(self.created_at) if self.created_at else "")

    @classmethod
    def from_prediction(cls, prediction, prompt: Prompt, pixels: np.ndarray, **review) -> FeedbackRecord:
        """Build from a runtime ``Prediction`` of ``prompt`` on the grayscale ``pixels``; ``review`` holds
        the reviewer, model name and version, and the reviewer's answers (agree, corrected_class, ...)."""
        pixels = np.asarray(pixels)
        if pixels.ndim != 2:
            raise FeedbackError(f"pixels must be a 2-D grayscale image, got shape {pixels.shape}")
        return cls(
            prompt=prompt,
            mask=prediction.mask,
            class_probs=dict(prediction.class_probs),
            malignant_prob=prediction.malignant_prob,
            predicted_class=prediction.predicted_class,
            image_sha256=pixel_sha256(pixels),
            image_width=pixels.shape[1],
            image_height=pixels.shape[0],
            image=pixels,
            **review,
        )

    @property
    def reference_class(self) -> str:
        """The class the reviewer stands behind: the correction when disagreeing, else the prediction."""
        return self.predicted_class if self.agree else self.corrected_class

    def _checked_correction(self, probs: dict[str, float]) -> str | None:
        corrected = self.corrected_class or None
        if self.agree:
            if corrected is not None and corrected != self.predicted_class:
                raise FeedbackError(f"corrected_class {corrected!r} given although the reviewer agreed with the model")
            return None
        if corrected is None:
            raise FeedbackError("a reviewer who disagrees must give the corrected class")
        if not isinstance(corrected, str) or corrected not in probs:
            raise FeedbackError(f"corrected_class {corrected!r} is not one of the model's classes {list(probs)}")
        if corrected == self.predicted_class:
            raise FeedbackError(f"corrected_class {corrected!r} equals the predicted class: mark 'agree' instead")
        return corrected

    def _set(self, name: str, value) -> None:
        object.__setattr__(self, name, value)


def _text(value, name: str, limit: int, required: bool) -> str:
    if not isinstance(value, str):
        raise FeedbackError(f"{name} must be text, got {type(value).__name__}")
    value = value.strip()
    if required and not value:
        raise FeedbackError(f"{name} is empty")
    if len(value) > limit:
        raise FeedbackError(f"{name} is {len(value)} characters long; the limit is {limit}")
    if "\x00" in value:
        raise FeedbackError(f"{name} contains a NUL character")
    return value


def _positive_int(value, name: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < 1:
        raise FeedbackError(f"{name} must be a positive whole number, got {value!r}")
    return int(value)


def _flag(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise FeedbackError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def _probability(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise FeedbackError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def _class_probs(probs) -> dict[str, float]:
    if not isinstance(probs, dict) or len(probs) < 2:
        raise FeedbackError("class_probs must map at least two class names to probabilities")
    out = {
        _text(k, "a class name", NAME_MAX_CHARS, True): _probability(v, f"class_probs[{k!r}]") for k, v in probs.items()
    }
    if len(out) != len(probs):
        raise FeedbackError("class_probs has duplicate class names")
    if not math.isclose(sum(out.values()), 1.0, abs_tol=1e-3):
        raise FeedbackError(f"class_probs must sum to 1, got {sum(out.values()):.4f}")
    return out


def _prompt(prompt, width: int, height: int) -> Prompt:
    try:
        prompt = Prompt.from_dict(prompt) if isinstance(prompt, dict) else prompt
        if not isinstance(prompt, Prompt):
            raise PromptError(f"expected a Prompt or its dict, got {type(prompt).__name__}")
        return prompt.validate(width, height)
    except PromptError as exc:
        raise FeedbackError(f"prompt: {exc}") from None


def _mask(mask, width: int, height: int) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.shape != (height, width):
        raise FeedbackError(f"the mask is {mask.shape[::-1]} (width, height); the image is ({width}, {height})")
    if mask.dtype == bool:
        return mask.copy()
    integer = np.issubdtype(mask.dtype, np.integer)
    if not integer or mask.min(initial=0) < 0 or (mask.max(initial=0) > 1 and ((mask != 0) & (mask != 255)).any()):
        raise FeedbackError("the mask must be boolean, 0/1 or 0/255")
    return mask > 0


def _image(image, width: int, height: int, sha256: str) -> np.ndarray:
    image = np.asarray(image)
    if image.dtype != np.uint8 or image.shape != (height, width):
        raise FeedbackError(
            f"image must be 8-bit grayscale pixels of {width} x {height}, got {image.dtype} {image.shape}"
        )
    if pixel_sha256(image) != sha256:
        raise FeedbackError("image_sha256 does not match the image's pixels")
    return image.copy()


def _timestamp(value) -> str:
    try:
        stamp = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise FeedbackError(f"created_at must be an ISO 8601 time stamp, got {value!r}") from None
    if stamp.utcoffset() is None or stamp.utcoffset().total_seconds() != 0:
        raise FeedbackError(f"created_at must be in UTC, got {value!r}")
    return stamp.isoformat(timespec="milliseconds")


def _png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise FeedbackError("could not encode a PNG")
    return buf.tobytes()


def _unpng(data: bytes) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)


# --- schema and migrations -------------------------------------------------------------------


@dataclass(frozen=True)
class Dialect:
    """The few spellings in which SQLite and PostgreSQL differ; everything else is shared SQL.
    A migration that must differ further branches on ``name``."""

    name: str
    id_column: str
    blob: str
    double: str


SQLITE = Dialect("sqlite", "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", "REAL")
POSTGRES = Dialect("postgresql", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY", "BYTEA", "DOUBLE PRECISION")

Migration = Callable[[Callable[[str], object], Dialect], None]


def _v1_initial(execute: Callable[[str], object], d: Dialect) -> None:
    """Version 1: the feedback table."""
    execute(f"""
        CREATE TABLE feedback (
            id {d.id_column},
            created_at TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            prompt TEXT NOT NULL,
            mask_png {d.blob} NOT NULL,
            class_probs TEXT NOT NULL,
            malignant_prob {d.double} NOT NULL,
            predicted_class TEXT NOT NULL,
            agree INTEGER NOT NULL CHECK (agree IN (0, 1)),
            corrected_class TEXT,
            outline_rating INTEGER NOT NULL CHECK (outline_rating BETWEEN 1 AND 5),
            accepted INTEGER NOT NULL CHECK (accepted IN (0, 1)),
            comment TEXT NOT NULL,
            image_sha256 TEXT NOT NULL,
            image_width INTEGER NOT NULL,
            image_height INTEGER NOT NULL,
            image_png {d.blob}
        )""")
    execute("CREATE INDEX feedback_accepted ON feedback (accepted, id)")
    execute("CREATE INDEX feedback_image ON feedback (image_sha256)")


# Applied in order on open; version N is MIGRATIONS[N - 1]. To change the schema, append a function
# (never edit one that has shipped): it runs once per database, inside the transaction that records it.
MIGRATIONS: tuple[Migration, ...] = (_v1_initial,)

COLUMNS = (
    "created_at", "reviewer", "model_name", "model_version", "prompt", "mask_png", "class_probs", "malignant_prob",
    "predicted_class", "agree", "corrected_class", "outline_rating", "accepted", "comment", "image_sha256",
    "image_width", "image_height", "image_png",
)  # fmt: skip


# --- the store -------------------------------------------------------------------------------


class FeedbackStore:
    """A feedback database. Thread-safe (one connection behind a lock); use :meth:`open`."""

    def __init__(self, backend: _Backend, store_images: bool) -> None:
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
        kind, target = _parse_url(url)
        backend = _Sqlite(target, create) if kind == "sqlite" else _Postgres(target)
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
        """Store one record in its own transaction; returns its id once committed."""
        if not isinstance(record, FeedbackRecord):
            raise FeedbackError(f"expected a FeedbackRecord, got {type(record).__name__}")
        image = _png(record.image) if self.store_images and record.image is not None else None
        values = (
            record.created_at or datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
            record.reviewer,
            record.model_name,
            record.model_version,
            json.dumps(record.prompt.to_dict()),
            _png(record.mask.astype(np.uint8) * 255),
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
            image,
        )
        sql = f"INSERT INTO feedback ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))}) RETURNING id"
        with self._lock:
            return int(self._db.write(lambda run: run(sql, values).fetchone()[0]))

    def count(self, accepted: bool | None = None) -> int:
        """Number of records (``accepted``: only those accepted, or not accepted, as reference)."""
        where, params = ("", ()) if accepted is None else (" WHERE accepted = ?", (int(accepted),))
        with self._lock:
            return int(self._db.read(lambda run: run(f"SELECT COUNT(*) FROM feedback{where}", params).fetchone()[0]))

    def iter_records(
        self, accepted: bool | None = None, images: bool = True, batch: int = 64
    ) -> Iterator[FeedbackRecord]:
        """Records in id order, read a batch at a time (no lock or transaction is held between batches).

        ``images=False`` leaves the stored pixels unread (``image`` is then None), for reports.
        """
        columns = ("id", *COLUMNS[:-1], "image_png" if images else "NULL")
        where = "" if accepted is None else f" AND accepted = {int(accepted)}"
        sql = f"SELECT {', '.join(columns)} FROM feedback WHERE id > ?{where} ORDER BY id LIMIT ?"
        last = 0
        while True:
            with self._lock:
                rows = self._db.read(lambda run, last=last: run(sql, (last, batch)).fetchall())
            if not rows:
                return
            for row in rows:
                yield _record(dict(zip(columns[:-1] + ("image_png",), row, strict=True)))
            last = rows[-1][0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> FeedbackStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _record(row: dict) -> FeedbackRecord:
    mask, image = _unpng(row["mask_png"]) > 0, row["image_png"]
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
        image=None if image is None else _unpng(bytes(image)),
    )


def _parse_url(url: str | Path) -> tuple[str, str]:
    text = str(url).strip()
    if text.startswith(("postgresql://", "postgres://")):
        return "postgresql", text
    if text.startswith("sqlite:///"):  # sqlite:///relative/path, sqlite:////absolute/path
        text = text[len("sqlite:///") :]
    elif "://" in text:
        raise FeedbackError(
            f"unsupported database URL {_redact(text)}: give a file path, sqlite:///PATH or postgresql://..."
        )
    if not text:
        raise FeedbackError("no database path given")
    return "sqlite", text


def _redact(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


class _Backend:
    """One connection; ``write``/``read`` run a function of ``run(sql, params)`` inside a transaction.

    SQL is written with ``?`` placeholders (PostgreSQL's ``%s`` is substituted), so no ``?`` in literals.
    """

    dialect: Dialect
    label: str
    errors: tuple[type[BaseException], ...]
    rejections: tuple[type[BaseException], ...]

    def write(self, work):
        raise NotImplementedError

    def read(self, work):
        return self.write(work)

    def close(self) -> None:
        raise NotImplementedError

    def migrate(self, migrations: tuple[Migration, ...]) -> None:
        """Apply the migrations the database lacks, each in its own transaction with its version row."""
        while not self.write(lambda run: self._migrate_one(run, migrations)):
            pass

    def _migrate_one(self, run, migrations) -> bool:
        """Apply the next missing migration; True when there was none left."""
        self._lock_schema(run)
        run("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)")
        current = run("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        if current > len(migrations):
            raise FeedbackError(
                f"{self.label}: the feedback schema is version {current}; this liverclick knows up to "
                f"{len(migrations)}: upgrade liverclick"
            )
        if current == len(migrations):
            return True
        migrations[current](run, self.dialect)
        stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
        run("INSERT INTO schema_version (version, applied_at) VALUES (?, ?)", (current + 1, stamp))
        return False

    def _lock_schema(self, run) -> None:
        """Keep two processes from migrating at once (SQLite's BEGIN IMMEDIATE already does)."""

    def _guarded(self, work):
        try:
            return work()
        except FeedbackError:
            raise
        except self.rejections as exc:  # a constraint of the schema: the data, not the database, is at fault
            raise FeedbackError(f"feedback rejected by the database: {exc}") from exc
        except self.errors as exc:
            raise StoreUnavailable(f"feedback database {self.label} unavailable: {exc}") from exc


class _Sqlite(_Backend):
    dialect = SQLITE
    errors = (sqlite3.Error,)
    rejections = (sqlite3.IntegrityError,)

    def __init__(self, path: str, create: bool) -> None:
        target = Path(path).expanduser()
        self.label = str(target)
        if not create and not target.is_file():
            raise FeedbackError(f"no feedback database at {target}")
        target.parent.mkdir(parents=True, exist_ok=True)

        def connect() -> sqlite3.Connection:
            conn = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if mode.lower() != "wal":
                    raise FeedbackError(f"{target}: SQLite cannot use WAL mode here (got {mode}); use a local disk")
                conn.execute("PRAGMA synchronous = FULL")
            except BaseException:
                conn.close()
                raise
            return conn

        self._conn = self._guarded(connect)

    def write(self, work):
        def transaction():
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = work(self._conn.execute)
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")
            return result

        return self._guarded(transaction)

    def read(self, work):
        def transaction():
            self._conn.execute("BEGIN")
            try:
                return work(self._conn.execute)
            finally:
                self._conn.execute("COMMIT")

        return self._guarded(transaction)

    def close(self) -> None:
        self._conn.close()


class _Postgres(_Backend):
    dialect = POSTGRES
    _SCHEMA_LOCK = 0x6C69766572  # pg_advisory_xact_lock key for migrations ("liver")

    def __init__(self, url: str) -> None:
        try:
            import psycopg
        except ImportError:
            raise FeedbackError("PostgreSQL needs psycopg: pip install 'liverclick[postgres]'") from None
        self._psycopg = psycopg
        self.errors = (psycopg.Error,)
        self.rejections = (psycopg.IntegrityError,)
        self.url = url
        self.label = _redact(url)
        self._conn = None
        self._connection()

    def _connection(self):
        """The connection, opened again if the server dropped it (a restart, an idle timeout)."""
        if self._conn is None or self._conn.closed or self._conn.broken:

            def connect():
                conn = self._psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
                conn.execute("SET synchronous_commit TO on")  # an acknowledged commit is on disk
                return conn

            self._conn = self._guarded(connect)
        return self._conn

    def write(self, work):
        def transaction():
            conn = self._connection()
            with conn.transaction():
                return work(lambda sql, params=(): conn.execute(sql.replace("?", "%s"), params))

        return self._guarded(transaction)

    def _lock_schema(self, run) -> None:
        run("SELECT pg_advisory_xact_lock(?)", (self._SCHEMA_LOCK,))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


def export_main(args) -> int:
    """``liverclick feedback export --db URL --out DIR``: training manifest + agreement report."""
    from .feedback_export import export_main as run

    return run(args)
