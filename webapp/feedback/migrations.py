"""The feedback schema, versioned: :data:`MIGRATIONS` are applied in order when a store is opened."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


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


def _v2_frame_and_request(execute: Callable[[str], object], d: Dialect) -> None:
    """Version 2: the frame of a multi-frame image, and the client's request id, one record per reviewer and id."""
    execute("ALTER TABLE feedback ADD COLUMN frame INTEGER NOT NULL DEFAULT 0")
    execute("ALTER TABLE feedback ADD COLUMN request_id TEXT")
    execute("CREATE UNIQUE INDEX feedback_request ON feedback (reviewer, request_id)")


def _v3_review_sessions(execute: Callable[[str], object], d: Dialect) -> None:
    """Version 3: review sessions (a worklist of cases, their reviewers and order) and a record's session and case."""
    execute(f"""
        CREATE TABLE review_session (
            id {d.id_column},
            name TEXT NOT NULL UNIQUE,
            created_at TEXT NOT NULL,
            created_by TEXT NOT NULL,
            ordering TEXT NOT NULL CHECK (ordering IN ('manifest', 'random', 'uncertain')),
            seed INTEGER NOT NULL,
            model_name TEXT NOT NULL,
            model_version TEXT NOT NULL,
            classes TEXT NOT NULL
        )""")
    execute("""
        CREATE TABLE review_reviewer (
            session_id INTEGER NOT NULL REFERENCES review_session (id),
            reviewer TEXT NOT NULL,
            PRIMARY KEY (session_id, reviewer)
        )""")
    execute(f"""
        CREATE TABLE review_case (
            id {d.id_column},
            session_id INTEGER NOT NULL REFERENCES review_session (id),
            position INTEGER NOT NULL,
            manifest_row INTEGER NOT NULL,
            case_key TEXT NOT NULL,
            image_png {d.blob} NOT NULL,
            image_sha256 TEXT NOT NULL,
            frame INTEGER NOT NULL,
            prompt TEXT NOT NULL,
            model_mask_png {d.blob} NOT NULL,
            class_probs TEXT NOT NULL,
            uncertainty {d.double} NOT NULL,
            reference_mask_png {d.blob},
            reference_label TEXT,
            UNIQUE (session_id, position)
        )""")
    execute("ALTER TABLE feedback ADD COLUMN session_id INTEGER")
    execute("ALTER TABLE feedback ADD COLUMN case_id INTEGER")
    execute("CREATE INDEX feedback_case ON feedback (session_id, reviewer, case_id)")


def _v4_shared_sign_ins(execute: Callable[[str], object], d: Dialect) -> None:
    """Version 4: what the servers sharing a store share of signing in (webapp.shared): the sessions (a hash of each
    token), the failed sign-ins the throttle counts, and settings such as the sign-in cookie's name."""
    execute(f"""
        CREATE TABLE sign_in_session (
            token_sha256 TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            expires_at {d.double} NOT NULL
        )""")
    execute(
        f"CREATE TABLE sign_in_failure (id {d.id_column}, throttle_key TEXT NOT NULL, failed_at {d.double} NOT NULL)"
    )
    execute("CREATE INDEX sign_in_failure_key ON sign_in_failure (throttle_key, failed_at)")
    execute("CREATE TABLE server_setting (name TEXT PRIMARY KEY, value TEXT NOT NULL)")


# Applied in order on open; version N is MIGRATIONS[N - 1]. To change the schema, append a function
# (never edit one that has shipped): it runs once per database, inside the transaction that records it.
MIGRATIONS: tuple[Migration, ...] = (_v1_initial, _v2_frame_and_request, _v3_review_sessions, _v4_shared_sign_ins)

COLUMNS = (
    "created_at", "reviewer", "model_name", "model_version", "prompt", "mask_png", "class_probs", "malignant_prob",
    "predicted_class", "agree", "corrected_class", "outline_rating", "accepted", "comment", "image_sha256",
    "image_width", "image_height", "frame", "request_id", "session_id", "case_id", "image_png",
)  # fmt: skip
