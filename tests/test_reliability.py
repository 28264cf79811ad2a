"""The viewer's server under load, a crash, and bad input, and a feedback session's round trip to training.

Bounded in count and time, loopback only. The load and fault tests run ``liverclick serve`` as a subprocess
(the fault test kills it); the others serve the tiny model in this process.
"""

import io
import json
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from core.imageio import load_image
from core.manifest import read_manifest
from core.runtime import Segmenter
from webapp.feedback.record import pixel_sha256
from webapp.feedback.store import FeedbackStore

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
LOGIN = ("ann", "ann-password")
CLASSES = ("benign", "malignant")


def click(x: int, y: int, positive: bool = True) -> dict:
    return {"x": x, "y": y, "positive": positive}


# --- load ------------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_load_concurrent_sessions_each_get_their_own_answers(tiny_model, servers, load_test, tmp_path):
    server = servers(["--model", tiny_model]).start()  # default --max-concurrency (2)
    load_test(server.url, tiny_model, tmp_path)


# --- faults ----------------------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_server_killed_during_feedback_writes_loses_no_acknowledged_record(tiny_model, servers, tmp_path, image_bytes):
    from gradio_client import Client, handle_file

    db = tmp_path / "feedback.db"
    scan = tmp_path / "scan.png"
    cv2.imwrite(str(scan), image_bytes.lesion(0, (120, 200), (140, 60)))
    server = servers(["--model", tiny_model, "--feedback-db", db, "--auth", ":".join(LOGIN)]).start()
    client = Client(server.url, auth=LOGIN, verbose=False)
    acknowledged: list[int] = []
    failed: list[Exception] = []

    def write(client, n: int) -> int:
        review = dict(agree=True, outline_rating=1 + n % 5, accepted=n % 2 == 0, comment=f"write {n}")
        prompt = json.dumps({"clicks": [click(130 + n % 20, 60)]})
        return client.predict(handle_file(str(scan)), prompt, **review, api_name="/feedback")["id"]

    def stream() -> None:
        n = 0
        while True:
            try:
                acknowledged.append(write(client, n))
            except Exception as exc:  # the server is gone: this write was not acknowledged
                failed.append(exc)
                return
            n += 1

    writer = threading.Thread(target=stream)
    writer.start()
    end = time.monotonic() + 90
    while len(acknowledged) < 20 and not failed and time.monotonic() < end:
        time.sleep(0.01)
    assert len(acknowledged) >= 20, f"only {len(acknowledged)} writes acknowledged: {failed}"
    server.kill()  # SIGKILL in the middle of the stream
    writer.join(timeout=60)
    assert not writer.is_alive() and failed, "the write in flight should have failed"

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    server.start()  # the same database, after the crash
    after = write(Client(server.url, auth=LOGIN, verbose=False), 999)
    with FeedbackStore.open(db, create=False) as store:
        stored = {r.id: r for r in store.iter_records()}
    missing = set(acknowledged) - set(stored)
    assert not missing, f"acknowledged but lost: {sorted(missing)}"
    assert after in stored and after > max(acknowledged) and stored[after].comment == "write 999"
    assert all(r.reviewer == "ann" for r in stored.values())
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    print(f"\nfaults: {len(acknowledged)} writes acknowledged before SIGKILL, all kept ({len(stored)} rows after)")


# --- bad input -------------------------------------------------------------------------------------

CLICK = {"clicks": [click(140, 60)]}


# Files are made by a function of the image_bytes fixture (conftest.py).
def _png(f) -> bytes:
    return f.encode(_scan(f), "PNG")


def _scan(f) -> np.ndarray:
    return f.lesion(3, (120, 200), (140, 60))


def _truncated_png(f) -> bytes:
    data = _png(f)
    return data[: len(data) // 2]


def _tiff16(f) -> bytes:
    return f.encode((_scan(f).astype(np.uint16) * 257 + 1000).astype(np.uint16), "TIFF")


def _doppler(f) -> bytes:
    """Gray B-mode with a red/blue colour-flow patch, as a colour Doppler screen grab."""
    rgb = np.repeat(_scan(f)[..., None], 3, axis=2)
    rgb[40:80, 110:170] = (200, 30, 40)
    rgb[50:70, 120:150] = (30, 60, 220)
    return f.encode(rgb, "PNG")


def _cine(f) -> bytes:
    return f.dicom(np.stack([f.lesion(k, (120, 200), (140, 60)) for k in range(3)]), spacing=(0.3, 0.3))


def _pages(f) -> bytes:
    """A three-page TIFF, one lesion image a page."""
    first, *more = (Image.fromarray(f.lesion(k, (120, 200), (140, 60))) for k in range(3))
    buf = io.BytesIO()
    first.save(buf, format="TIFF", save_all=True, append_images=more)
    return buf.getvalue()


BAD = {  # name: (file name, contents, prompt, what the user is told)
    "empty file": ("empty.png", lambda f: b"", CLICK, "the file is empty"),
    "text file named .png": ("notes.png", lambda f: b"just some notes\n" * 20, CLICK, "not an image file"),
    "truncated PNG": ("cut.png", _truncated_png, CLICK, "corrupt or truncated"),
    "30000 x 30000 PNG": ("huge.png", lambda f: f.bomb_png(), CLICK, "900 MP; the limit is 40 MP"),
    "DICOM frame that does not exist": ("cine.dcm", _cine, {**CLICK, "frame": 3}, "frame 3 does not exist"),
    "click outside the image": ("scan.png", _png, {"clicks": [click(260, 60)]}, "outside the 200"),
    "box of zero area": ("scan.png", _png, {"box": [50, 40, 50, 40]}, "zero area"),
    "background clicks only": (
        "scan.png",
        _png,
        {"clicks": [click(10, 10, False), click(190, 110, False)]},
        "at least one click on the lesion",
    ),
    "prompt that is not JSON": ("scan.png", _png, "{'clicks': oops", "not valid JSON"),
    "400-digit number": ("scan.png", _png, '{"clicks": [{"x": ' + "9" * 400 + ', "y": 60}]}', "400 characters"),
    "deeply nested prompt": ("scan.png", _png, "[" * 3000 + "]" * 3000, "nests 3000 levels deep"),
    "GIF": ("scan.gif", lambda f: f.encode(_scan(f), "GIF"), CLICK, "GIF images are not supported"),
    "TIFF page that does not exist": ("pages.tif", _pages, {**CLICK, "frame": 5}, "frame 5 does not exist"),
}
VALID = {  # name: (file name, contents, prompt)
    "16-bit TIFF": ("scan16.tif", _tiff16, CLICK),
    "colour Doppler-like RGB": ("doppler.png", _doppler, CLICK),
    "multi-frame DICOM, frame 0": ("cine.dcm", _cine, CLICK),
    "multi-frame DICOM, frame 2": ("cine.dcm", _cine, {**CLICK, "frame": 2}),
    "multi-page TIFF, frame 1": ("pages.tif", _pages, {**CLICK, "frame": 1}),
}


@pytest.fixture(scope="module")
def reviewed(tiny_model, start_viewer, tmp_path_factory):
    """(client logged in, store) of a viewer with logins and a feedback store, serving the tiny model."""
    from gradio_client import Client

    store = FeedbackStore.open(tmp_path_factory.mktemp("db") / "feedback.db")
    url = start_viewer(Segmenter(tiny_model, provider="cpu"), build={"store": store}, auth=[LOGIN])
    yield Client(url, auth=LOGIN, verbose=False), store
    store.close()


@pytest.fixture
def upload(tmp_path, image_bytes):
    """``upload(name, contents) -> path``: the file ``name`` holding ``contents(image_bytes)``."""

    def write(name: str, contents) -> str:
        path = tmp_path / name
        path.write_bytes(contents(image_bytes))
        return str(path)

    return write


def _prompt(prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


REVIEW = dict(agree=True, outline_rating=4, accepted=True)


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_gets_a_clear_message_and_nothing_is_stored(reviewed, upload, case):
    from gradio_client import handle_file

    client, store = reviewed
    name, contents, prompt, message = BAD[case]
    path = upload(name, contents)
    before = store.count()
    for endpoint, review in (("/segment", {}), ("/feedback", REVIEW)):
        with pytest.raises(Exception, match=message):
            client.predict(handle_file(path), _prompt(prompt), **review, api_name=endpoint)
    assert store.count() == before
    scan = upload("fine.png", _png)
    _, result = client.predict(handle_file(scan), json.dumps(CLICK), api_name="/segment")  # still serving
    assert result["area_px"] > 0


@pytest.mark.parametrize(
    ("review", "message"),
    [
        (dict(REVIEW, outline_rating=7), "outline_rating must be a whole number from 1 to 5"),
        (dict(REVIEW, agree=False), "must give the corrected class"),
        (dict(REVIEW, agree=False, corrected_class="hcc"), "'hcc' is not one of the model's classes"),
        (dict(REVIEW, comment="x" * 2001), "the limit is 2000"),
    ],
)
def test_bad_feedback_answers_get_a_clear_message_and_nothing_is_stored(reviewed, upload, review, message):
    from gradio_client import handle_file

    client, store = reviewed
    before = store.count()
    scan = upload("scan.png", _png)
    with pytest.raises(Exception, match=message):
        client.predict(handle_file(scan), json.dumps(CLICK), **review, api_name="/feedback")
    assert store.count() == before


@pytest.mark.parametrize("case", list(VALID))
def test_unusual_but_valid_images_are_segmented_and_reviewed(reviewed, upload, case):
    from gradio_client import handle_file

    client, store = reviewed
    name, contents, prompt = VALID[case]
    path = upload(name, contents)
    picture = load_image(path, frame=prompt.get("frame", 0))  # what the server should have seen: 8-bit gray
    mask_file, result = client.predict(handle_file(path), json.dumps(prompt), api_name="/segment")
    mask = cv2.imread(mask_file, cv2.IMREAD_GRAYSCALE)
    assert mask.shape == picture.pixels.shape == (120, 200) and mask[60, 140] == 255
    saved = client.predict(handle_file(path), json.dumps(prompt), **REVIEW, api_name="/feedback")
    record = next(r for r in store.iter_records() if r.id == saved["id"])
    assert record.image_sha256 == pixel_sha256(picture.pixels)  # the grayscale pixels (of the frame chosen)
    assert np.array_equal(record.mask, mask > 0) and record.frame == picture.frame  # the frame is stored
    if picture.n_frames > 1:
        other = load_image(path, frame=(picture.frame + 1) % picture.n_frames)
        assert pixel_sha256(other.pixels) != record.image_sha256


# --- the feedback session round trip ---------------------------------------------------------------


@pytest.mark.timeout(240)
def test_feedback_session_round_trip_to_training(tiny_model, start_viewer, tmp_path, image_bytes):
    """Predict, correct with clicks, submit feedback, `liverclick feedback export`, `liverclick train` on it."""
    from gradio_client import Client, handle_file

    db = tmp_path / "feedback.db"
    store = FeedbackStore.open(db, store_images=True)  # as `liverclick serve --feedback-db DB --store-images`
    client = Client(start_viewer(Segmenter(tiny_model, provider="cpu"), build={"store": store}, auth=[LOGIN]),
                    auth=LOGIN, verbose=False)  # fmt: skip
    ids, labels = [], {}
    for i in range(10):
        h, w = 100 + 8 * i, 150 + 5 * i
        centre = (w // 3 + 4 * i, h // 2)
        path = tmp_path / f"case{i}.png"
        cv2.imwrite(str(path), image_bytes.lesion(10 + i, (h, w), centre))
        first = {"clicks": [click(*centre)]}
        first_mask, _ = client.predict(handle_file(str(path)), json.dumps(first), api_name="/segment")
        first_mask = cv2.imread(first_mask, cv2.IMREAD_GRAYSCALE) > 0
        # The reviewer corrects the outline: a background click, and a lesion click where it fell short.
        extra = [click(5, 5, False), click(w - 10, h - 10)]
        corrected = {"clicks": [*first["clicks"], *extra]}
        final_mask, answer = client.predict(handle_file(str(path)), json.dumps(corrected), api_name="/segment")
        final_mask = cv2.imread(final_mask, cv2.IMREAD_GRAYSCALE) > 0
        assert final_mask[h - 10, w - 10] and not first_mask[h - 10, w - 10]
        agree = i % 3 != 0
        other = next(c for c in CLASSES if c != answer["predicted_class"])
        review = dict(agree=agree, corrected_class=None if agree else other, outline_rating=4, accepted=True)
        saved = client.predict(handle_file(str(path)), json.dumps(corrected), **review, api_name="/feedback")
        ids.append(saved["id"])
        labels[saved["id"]] = answer["predicted_class"] if agree else other
        (record,) = (r for r in store.iter_records() if r.id == saved["id"])
        assert np.array_equal(record.mask, final_mask) and record.prompt.to_dict() == corrected  # the corrected one
    store.close()

    out = tmp_path / "export"
    cli = [sys.executable, "-m", "core.cli"]
    done = subprocess.run([*cli, "feedback", "export", "--db", str(db), "--out", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    cases, problems = read_manifest(out / "manifest.csv", labels=CLASSES)
    assert not problems and len(cases) == 10
    assert {c.extra["case_id"]: c.label for c in cases} == {f"feedback_{i}": labels[i] for i in ids}

    train = [*cli, "train", "--config", "configs/phantoms_smoke.yaml", "--out", str(tmp_path / "run")]
    train += [f"data={out / 'manifest.csv'}", "iterations=2", "val_every=100", "classes=[benign, malignant]"]
    train += ["malignant=[malignant]"]
    done = subprocess.run(train, cwd=REPO, capture_output=True, text=True, timeout=200)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "log.csv").is_file()
