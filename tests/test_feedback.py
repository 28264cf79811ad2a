"""Feedback store (SQLite and PostgreSQL), its validation, migrations, crash safety and export.

Every store test runs on both back-ends (the ``db_url`` fixture; the PostgreSQL server is conftest.py's).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import pickle
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from core.cli import main as cli_main
from core.manifest import read_manifest
from core.prompt import Prompt
from core.runtime import Prediction
from webapp.feedback.migrations import COLUMNS, MIGRATIONS
from webapp.feedback.record import (
    COMMENT_MAX_CHARS,
    FeedbackError,
    FeedbackRecord,
    StoreUnavailable,
    encode_png,
    pixel_sha256,
)
from webapp.feedback.store import FeedbackStore

CLASSES = ("benign", "malignant")
TESTS = Path(__file__).resolve().parent


def make_record(i: int = 0, *, image: int | None = None, size=(56, 72), **review) -> FeedbackRecord:
    """Case ``i`` on image number ``image`` (default ``i``): a disk-shaped outline, alternating predicted class."""
    h, w = size
    pixels = np.random.default_rng(i if image is None else image).integers(0, 256, size, dtype=np.uint8)
    yy, xx = np.mgrid[:h, :w]
    cx, cy = w // 2 + i % 7 - 3, h // 2
    mask = (xx - cx) ** 2 + (yy - cy) ** 2 < (8 + i % 5) ** 2
    p_malignant = 0.8 if i % 2 else 0.3
    prediction = Prediction(
        mask=mask,
        class_probs={"benign": 1 - p_malignant, "malignant": p_malignant},
        malignant_prob=p_malignant,
        region=(0, 0, w, h),
    )
    fields = {
        "reviewer": f"reviewer{i % 3}",
        "model_name": "busi-lite",
        "model_version": "1.2.0",
        "agree": True,
        "outline_rating": 1 + i % 5,
        "accepted": True,
        "comment": f"case {i}: réviewed",
    }
    fields.update(review)
    prompt = Prompt().add_click(cx, cy).add_click(2, 2, positive=False)
    return FeedbackRecord.from_prediction(prediction, prompt, pixels, **fields)


# --- the store ---------------------------------------------------------------------------------


@pytest.mark.parametrize("store_images", [True, False])
def test_round_trip(db_url, store_images):
    records = [
        make_record(0),
        make_record(1, agree=False, corrected_class="benign", accepted=False, comment=""),
        make_record(2, created_at="2026-03-01T08:30:00Z"),
    ]
    with FeedbackStore.open(db_url, store_images=store_images) as store:
        ids = [store.add(r) for r in records]
        assert ids == sorted(ids) and len(set(ids)) == 3
        assert store.count() == 3 and store.count(accepted=True) == 2 and store.count(accepted=False) == 1
        back = list(store.iter_records(batch=2))  # paged reads
        assert [r.id for r in store.iter_records(accepted=False)] == [ids[1]]
        assert all(r.image is None for r in store.iter_records(images=False))
    for sent, got, id_ in zip(records, back, ids, strict=True):
        assert got.id == id_ and got.prompt == sent.prompt and np.array_equal(got.mask, sent.mask)
        same = ("reviewer", "model_name", "model_version", "class_probs", "malignant_prob", "predicted_class")
        same += ("agree", "corrected_class", "outline_rating", "accepted", "comment", "image_sha256")
        assert all(getattr(got, k) == getattr(sent, k) for k in same + ("image_width", "image_height"))
        assert got.created_at.endswith("+00:00")
        if store_images:
            assert got.image.dtype == np.uint8 and np.array_equal(got.image, sent.image)
            assert pixel_sha256(got.image) == got.image_sha256
        else:
            assert got.image is None
    assert back[1].reference_class == "benign" and back[0].reference_class == back[0].predicted_class
    assert back[2].created_at == "2026-03-01T08:30:00.000+00:00"


def _bad(record: FeedbackRecord, **changes) -> FeedbackRecord:
    return dataclasses.replace(record, **changes)


BAD = [
    ({"reviewer": "  "}, "reviewer is empty"),
    ({"reviewer": "x" * 201}, "reviewer is 201 characters"),
    ({"model_version": 3}, "model_version must be text"),
    ({"comment": "x" * (COMMENT_MAX_CHARS + 1)}, "comment is 2001 characters long; the limit is 2000"),
    ({"comment": "a\x00b"}, "NUL"),
    ({"agree": False}, "must give the corrected class"),
    ({"agree": False, "corrected_class": "cyst"}, "'cyst' is not one of the model's classes"),
    ({"agree": False, "corrected_class": "malignant"}, "equals the predicted class"),
    ({"corrected_class": "benign"}, "although the reviewer agreed"),
    ({"outline_rating": 0}, "outline_rating must be a whole number from 1 to 5"),
    ({"outline_rating": 6}, "from 1 to 5"),
    ({"outline_rating": 3.5}, "from 1 to 5"),
    ({"outline_rating": True}, "from 1 to 5"),
    ({"accepted": "yes"}, "accepted must be true or false"),
    ({"class_probs": {"benign": 0.5, "malignant": 0.2}}, "must sum to 1"),
    ({"class_probs": {"benign": 1.0}}, "at least two class names"),
    ({"class_probs": {"benign": float("nan"), "malignant": 1.0}}, "probability"),
    ({"predicted_class": "cyst"}, "predicted_class 'cyst' is not one of"),
    ({"malignant_prob": 1.5}, "malignant_prob must be a probability"),
    ({"mask": np.zeros((10, 10), bool)}, "the mask is"),
    ({"mask": np.full((56, 72), 0.5)}, "boolean, 0/1 or 0/255"),
    ({"mask": np.full((56, 72), 7, np.uint8)}, "boolean, 0/1 or 0/255"),
    ({"mask": np.zeros((56, 72), bool)}, "empty outline cannot be accepted"),
    ({"image_sha256": "abc"}, "64 lowercase hexadecimal"),
    ({"image_sha256": "0" * 64}, "does not match the image's pixels"),
    ({"image": np.zeros((56, 72), np.uint16)}, "8-bit grayscale"),
    ({"image_width": 0}, "image_width must be a positive whole number"),
    ({"prompt": Prompt().add_click(500, 5)}, "outside the 72 x 56 image"),
    ({"prompt": Prompt().add_click(5, 5, positive=False)}, "at least one click on the lesion"),
    ({"prompt": {"clicks": "x"}}, "'clicks' must be a list"),
    ({"prompt": "click"}, "expected a Prompt"),
    ({"created_at": "yesterday"}, "ISO 8601"),
    ({"created_at": "2026-01-01T10:00:00+02:00"}, "must be in UTC"),
]


def test_invalid_records_are_refused_and_nothing_is_stored(db_url):
    valid = make_record(1)  # predicted: malignant
    with FeedbackStore.open(db_url, store_images=True) as store:
        for changes, message in BAD:
            with pytest.raises(FeedbackError, match=message):
                store.add(_bad(valid, **changes))
        with pytest.raises(FeedbackError, match="expected a FeedbackRecord"):
            store.add({"reviewer": "dr_a"})
        # A record that slipped past validation is refused by the schema's constraints, in a rolled-back transaction.
        broken = _bad(valid)
        object.__setattr__(broken, "outline_rating", 9)
        with pytest.raises(FeedbackError, match="rejected by the database"):
            store.add(broken)
        assert store.count() == 0
        assert store.add(valid) > 0 and store.count() == 1  # the connection is still usable


def test_sqlite_settings_urls_and_errors(tmp_path, monkeypatch):
    path = tmp_path / "sub" / "fb.db"
    with FeedbackStore.open(f"sqlite:///{path}") as store:  # sqlite:////absolute/path
        conn = store._db._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
        store.add(make_record(0))
    monkeypatch.chdir(tmp_path)
    with FeedbackStore.open("sqlite:///sub/fb.db", create=False) as store:  # relative
        assert store.count() == 1 and store.url == str(Path("sub/fb.db"))
    with pytest.raises(FeedbackError, match="no feedback database at"):
        FeedbackStore.open(tmp_path / "missing.db", create=False)
    with pytest.raises(FeedbackError, match="unsupported database URL mysql://u:\\*\\*\\*@host/db") as err:
        FeedbackStore.open("mysql://u:secret@host/db")
    assert "secret" not in str(err.value)
    (tmp_path / "junk.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(FeedbackError, match="unavailable"):
        FeedbackStore.open(tmp_path / "junk.db")


def test_a_retried_write_returns_the_first_id_and_stores_nothing_new(db_url, caplog):
    first = make_record(0, reviewer="dr_a", request_id="9b2f-retry")
    with FeedbackStore.open(db_url) as store, caplog.at_level(logging.INFO, logger="liverclick.audit"):
        feedback_id = store.add(first)
        assert store.add(first) == feedback_id and store.count() == 1  # in sequence
        at_once = []
        threads = [threading.Thread(target=lambda: at_once.append(store.add(first))) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert at_once == [feedback_id] * 4 and store.count() == 1  # at once
        assert store.add(dataclasses.replace(first, reviewer="dr_b")) != feedback_id  # ids are per reviewer
        for other in (
            make_record(1, reviewer="dr_a", request_id="9b2f-retry"),  # another image
            dataclasses.replace(first, prompt=first.prompt.add_click(30, 30)),  # the same image, another prompt
            dataclasses.replace(first, outline_rating=first.outline_rating % 5 + 1),  # other answers
            dataclasses.replace(first, agree=False, corrected_class="malignant"),
            dataclasses.replace(first, comment="changed my mind"),
        ):
            with pytest.raises(FeedbackError, match="conflict: request id 9b2f-retry was already used"):
                store.add(other)
        (kept,) = store.iter_records(images=False, reviewer="dr_a")
        assert kept.comment == first.comment and kept.outline_rating == first.outline_rating  # nothing stored
        assert store.add(make_record(2)) != store.add(make_record(2))  # without an id, every write is new
        assert store.count() == 4
        with pytest.raises(FeedbackError, match="request_id must be 1 to 100"):
            make_record(0, request_id="a b")
    lines = [r.getMessage() for r in caplog.records]
    assert f"stored feedback #{feedback_id} by dr_a (request 9b2f-retry)" in lines
    assert (
        lines.count(f"repeated request: nothing stored for feedback #{feedback_id} by dr_a (request 9b2f-retry)") == 5
    )


def _add_site(execute, dialect) -> None:
    execute("ALTER TABLE feedback ADD COLUMN site TEXT")
    execute("CREATE INDEX feedback_site ON feedback (site)")


def _fails_halfway(execute, dialect) -> None:
    execute("ALTER TABLE feedback ADD COLUMN half TEXT")
    raise RuntimeError("migration bug")


def _columns(store: FeedbackStore) -> list[str]:
    return [d[0] for d in store._db.read(lambda run: run("SELECT * FROM feedback LIMIT 1").description)]


def test_migrations_upgrade_in_order_and_roll_back_on_failure(db_url):
    n = len(MIGRATIONS)
    with FeedbackStore.open(db_url, migrations=MIGRATIONS[:1]) as store:  # a database of the first release
        assert store.schema_version == 1
        v1 = [*COLUMNS[: COLUMNS.index("image_height") + 1], "image_png"]  # the first release's columns
        row = make_record(0)
        sql = f"INSERT INTO feedback ({', '.join(v1)}) VALUES ({', '.join('?' * len(v1))})"
        store._db.write(lambda run: run(sql, _v1_row(row)))
    with FeedbackStore.open(db_url) as store:
        assert store.schema_version == n
        (old,) = store.iter_records()
        assert old.frame == 0 and old.request_id is None and old.case_id is None and old.comment == row.comment
        first = old.id
    more = (*MIGRATIONS, _add_site)
    with FeedbackStore.open(db_url, migrations=more) as store:
        assert store.schema_version == n + 1 and "site" in _columns(store)
        assert [r.id for r in store.iter_records()] == [first]
        store.add(make_record(1))
    with FeedbackStore.open(db_url, migrations=more) as store:  # nothing left to apply
        assert store.schema_version == n + 1 and store.count() == 2
    with pytest.raises(RuntimeError, match="migration bug"):
        FeedbackStore.open(db_url, migrations=(*more, _fails_halfway))
    with FeedbackStore.open(db_url, migrations=more) as store:
        assert store.schema_version == n + 1 and "half" not in _columns(store)
    with pytest.raises(FeedbackError, match=f"schema is version {n + 1}; this liverclick knows up to {n}"):
        FeedbackStore.open(db_url)


def _v1_row(record: FeedbackRecord) -> tuple:
    """A record as the first schema held it."""
    mask = encode_png(record.mask.astype(np.uint8) * 255)
    return (
        "2026-01-01T00:00:00.000+00:00", record.reviewer, record.model_name, record.model_version,
        json.dumps(record.prompt.to_dict()), mask, json.dumps(record.class_probs), record.malignant_prob,
        record.predicted_class, int(record.agree), record.corrected_class, record.outline_rating,
        int(record.accepted), record.comment, record.image_sha256, record.image_width, record.image_height, None,
    )  # fmt: skip


def test_concurrent_opens_and_writers(db_url):
    """Four threads open a fresh database at once (one migration runs) and write through their own stores,
    while two more share one store."""
    errors, ids = [], []
    shared = []

    def work(n: int, store: FeedbackStore | None) -> None:
        try:
            own = store or FeedbackStore.open(db_url)
            ids.extend(own.add(make_record(n * 10 + k)) for k in range(5))
            if store is None:
                own.close()
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n, None)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shared.append(FeedbackStore.open(db_url))
    threads = [threading.Thread(target=work, args=(n, shared[0])) for n in (4, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(ids)) == 30 and shared[0].count() == 30 and shared[0].schema_version == len(MIGRATIONS)
    shared[0].close()


# --- crash safety --------------------------------------------------------------------------------

WRITER = """
import pickle
import sys
from webapp.feedback.store import FeedbackStore
records = pickle.loads(open(sys.argv[2], "rb").read())
store = FeedbackStore.open(sys.argv[1], store_images=True)
print("open", flush=True)
for i in range(100000):
    print(store.add(records[i % len(records)]), flush=True)
"""


def _write_until_killed(url: str, acks: int, kill, tmp_path: Path) -> set[int]:
    """Run a writer of 50 cases over and over; after ``acks`` acknowledged records call ``kill(proc)``; return every
    id it acknowledged."""
    records = tmp_path / "records.pickle"
    records.write_bytes(pickle.dumps([make_record(i) for i in range(50)]))
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(records)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=TESTS.parent,
    )
    acknowledged: set[int] = set()
    try:
        assert proc.stdout.readline() == "open\n", proc.stderr.read()
        while len(acknowledged) < acks:
            line = proc.stdout.readline()
            assert line.endswith("\n"), f"writer stopped early: {proc.stderr.read()[-2000:]}"
            acknowledged.add(int(line))
        kill(proc)
    finally:
        proc.kill()
        rest, _ = proc.communicate(timeout=30)
    acknowledged |= {
        int(line) for line in rest.splitlines(keepends=True) if line.strip().isdigit() and line[-1] == "\n"
    }
    return acknowledged


@pytest.mark.timeout(90)
def test_sigkill_during_writes_loses_no_acknowledged_record_sqlite(tmp_path):
    db = tmp_path / "feedback.db"
    acknowledged = _write_until_killed(str(db), 25, lambda proc: proc.send_signal(signal.SIGKILL), tmp_path)
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with FeedbackStore.open(db) as store:
        stored = {r.id for r in store.iter_records()}  # every row decodes into a valid record
        assert acknowledged <= stored, f"lost acknowledged ids {sorted(acknowledged - stored)}"
        store.add(make_record(0))  # and the store takes writes again


@pytest.mark.postgres
@pytest.mark.timeout(90)
def test_server_crash_and_sigkill_during_writes_lose_no_acknowledged_record_postgres(pg_server, tmp_path):
    database = pg_server.new_database().rsplit("/", 1)[1]

    def crash(proc) -> None:
        pg_server.crash()  # the server goes down mid-stream: in-flight commits are not acknowledged
        proc.send_signal(signal.SIGKILL)

    try:
        acknowledged = _write_until_killed(pg_server.url(database), 25, crash, tmp_path)
    finally:
        pg_server.start()  # recovery from the WAL
    url = pg_server.url(database)
    with FeedbackStore.open(url) as store:
        stored = {r.id for r in store.iter_records()}
        assert acknowledged <= stored, f"lost acknowledged ids {sorted(acknowledged - stored)}"
        store.add(make_record(0))
    _amcheck(url)


@pytest.mark.postgres
def test_postgres_store_reconnects_after_a_server_restart(pg_server):
    """A hosted demo outlives database restarts: the write in flight fails clearly, the next one reconnects."""
    database = pg_server.new_database().rsplit("/", 1)[1]
    with FeedbackStore.open(pg_server.url(database)) as store:
        store.add(make_record(0))
        pg_server.crash()
        pg_server.start()
        if store.url != pg_server.url(database):  # the port was taken meanwhile
            pytest.skip("the server came back on another port")
        with pytest.raises(StoreUnavailable, match="unavailable"):
            store.add(make_record(1))
        store.add(make_record(2))
        assert [r.comment for r in store.iter_records()] == ["case 0: réviewed", "case 2: réviewed"]


def _amcheck(url: str) -> None:
    """B-tree and heap checks with the amcheck extension, where the server has it."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        try:
            conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
        except psycopg.Error:
            return  # contrib not installed: the row check above stands alone
        conn.execute("SELECT bt_index_check(indexrelid, true) FROM pg_index WHERE indrelid = 'feedback'::regclass")
        if conn.info.server_version >= 140000:  # verify_heapam is new in PostgreSQL 14
            assert conn.execute("SELECT * FROM verify_heapam('feedback')").fetchall() == []


# --- export ----------------------------------------------------------------------------------------


def _fill_for_export(url: str) -> None:
    """Ids 1-12: cases 0-11 on their own images, 3 and 4 corrected; 13: a second review of image 5; 14: image 6,
    not accepted; 15: image 7 corrected (conflicts with id 8); 16: accepted, no image stored."""
    with FeedbackStore.open(url, store_images=True) as store:
        for i in range(12):
            disagree = i in (3, 4)
            store.add(
                make_record(
                    i, agree=not disagree, corrected_class=("benign", "malignant")[i % 2 == 0] if disagree else None
                )
            )
        store.add(make_record(5, image=5))  # a second reviewer on image 5, same class: same group, kept
        store.add(make_record(6, image=6, accepted=False, outline_rating=1))
        store.add(make_record(7, image=7, agree=False, corrected_class="benign"))  # conflicts with case 7
    with FeedbackStore.open(url) as store:  # the operator turned image storing off
        store.add(make_record(20))


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_export_manifest_and_agreement_report(tmp_path, request, backend, capsys):
    url = str(tmp_path / "fb.db") if backend == "sqlite" else request.getfixturevalue("pg_server").new_database()
    _fill_for_export(url)
    out = tmp_path / "export"
    assert cli_main(["feedback", "export", "--db", url, "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "1 accepted cases have no stored image" in printed.err and "2 cases left out" in printed.err

    cases, problems = read_manifest(out / "manifest.csv", labels=CLASSES)
    assert not problems and len(cases) == 14 - 2  # the two conflicting reviews of image 7 are left out
    assert len({c.group for c in cases}) == 11 and {c.split for c in cases} <= {"train", "val", "test"}
    by_group: dict[str, set[str]] = {}
    for c in cases:
        by_group.setdefault(c.group, set()).add(c.split)
        image, mask = c.load()
        assert image.shape == mask.shape == (56, 72) and mask.any()
        assert pixel_sha256(image) == c.group  # the exported pixels are the reviewed ones
    assert all(len(s) == 1 for s in by_group.values())  # reviews of one image stay in one split
    labels = {c.extra["case_id"]: c.label for c in cases}
    assert labels["feedback_4"] == "benign" and labels["feedback_5"] == "malignant"  # the corrections
    assert "feedback_8" not in labels and "feedback_15" not in labels
    assert len(list((out / "masks").glob("*.png"))) == len(cases)

    report = json.loads((out / "agreement.json").read_text())
    assert report["records"] == 16 and report["accepted"] == 15 and report["reviewers"] == 3
    assert report["export"]["accepted_without_image"] == 1 and report["export"]["conflicting"] == 2
    (model,) = report["models"]
    assert model["classes"] == list(CLASSES)
    # cases 0..11 + 5, 6, 7 again + 20: predicted benign for even i, malignant for odd i
    predicted = [i % 2 for i in (*range(12), 5, 6, 7, 20)]
    agree = [i not in (3, 4) for i in range(12)] + [True, True, False, True]
    for k, name in enumerate(CLASSES):
        row = model["per_class"][name]
        assert row["reviewed"] == predicted.count(k)
        assert row["agreed"] == sum(a for a, p in zip(agree, predicted, strict=True) if p == k)
    assert model["confusion"]["matrix"] == [[7, 1], [2, 6]]
    ratings = [1 + i % 5 for i in range(12)] + [1 + 5 % 5, 1, 1 + 7 % 5, 1 + 20 % 5]
    assert model["outline_rating"]["mean"] == pytest.approx(np.mean(ratings), abs=1e-4)
    markdown = (out / "agreement.md").read_text()
    assert "not for diagnosis" in markdown and "| benign | 8 | 7 | 0.88 | " in markdown


def test_export_without_training_data_writes_the_report_and_says_why(tmp_path, capsys):
    db = tmp_path / "fb.db"
    with FeedbackStore.open(db) as store:
        store.add(make_record(0))
    out = tmp_path / "export"
    assert cli_main(["feedback", "export", "--db", str(db), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "is empty: no accepted case with a stored image" in err and "--store-images" in err
    assert (out / "agreement.json").is_file() and (out / "manifest.csv").read_text().count("\n") == 1
    assert cli_main(["feedback", "export", "--db", str(tmp_path / "none.db"), "--out", str(out)]) == 2


@pytest.mark.slow
def test_exported_manifest_trains(tmp_path):
    from training.config import TrainConfig
    from training.train import train

    db = tmp_path / "fb.db"
    _fill_for_export(str(db))
    assert cli_main(["feedback", "export", "--db", str(db), "--out", str(tmp_path / "export")]) == 0
    manifest = tmp_path / "export" / "manifest.csv"
    overrides = [f"data={manifest}", "iterations=2", "width=0.125", "input_size=64", "batch_size=2"]
    overrides += ["num_workers=0", "val_every=100", "classes=[benign, malignant]", "malignant=[malignant]"]
    best = train(TrainConfig.load(None, overrides), tmp_path / "run")
    assert best.is_file()
