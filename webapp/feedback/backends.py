"""The two databases behind a feedback store, one connection each, the same schema and behaviour.

SQLite by default (WAL journal, ``synchronous=FULL`` so that an acknowledged write survives a killed
process or a power cut, one transaction per write, a busy timeout for concurrent writers); PostgreSQL
for a demo served from several machines.
"""

from __future__ import annotations

import re
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from .migrations import POSTGRES, SQLITE, Dialect, Migration
from .record import FeedbackError, StoreUnavailable

BUSY_TIMEOUT_MS = 10_000  # how long a SQLite writer waits for another writer's lock
CONNECT_TIMEOUT_S = 10


def open_backend(url: str | Path, create: bool) -> Backend:
    """The backend for ``url``: a file path or ``sqlite:///path`` (SQLite; created unless ``create`` is
    false), or ``postgresql://user:password@host:port/db`` (the database must exist)."""
    kind, target = _parse_url(url)
    return _Sqlite(target, create) if kind == "sqlite" else _Postgres(target)


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


class Backend:
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


def _switch_to_wal(conn: sqlite3.Connection) -> str:
    """``PRAGMA journal_mode = WAL``, retried within the busy timeout: while another connection opens the same
    fresh file, SQLite answers "database is locked" at once, without waiting on the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            return conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class _Sqlite(Backend):
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
                mode = _switch_to_wal(conn)
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


class _Postgres(Backend):
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
