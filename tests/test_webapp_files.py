"""Who may fetch which file: a signed-in user is served only their own masks, views and downloads; uploads are
read into memory and removed at once (a DICOM file above all); deep links are refused; a caller who has not signed
in reaches nothing of the API (the queue's reset and cancel included). And nothing is left on disk: a server's files
live in a folder of its own, removed when it stops (SIGTERM included) or, after a crash, when the next one starts."""

import json
import os
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from gradio.data_classes import FileData

from core.imageio import ImageError
from core.runtime import Segmenter
from webapp import tempdir
from webapp.app import EXAMPLES_DIR, build_demo
from webapp.files import Workspace, upload_root

USERS = [("rev", "pw-one"), ("rev2", "pw-two")]
CLICK = json.dumps({"clicks": [{"x": 140, "y": 60, "positive": True}]})


@pytest.fixture(scope="module")
def url(tiny_model, start_viewer):
    return start_viewer(Segmenter(tiny_model, provider="cpu"), auth=USERS)


def signed_in(url: str, user: tuple[str, str]) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=30)
    assert client.post("login", data={"username": user[0], "password": user[1]}).status_code == 200
    return client


def file_url(path: str) -> str:
    return f"gradio_api/file={path}"


@pytest.mark.slow
def test_a_second_user_cannot_fetch_the_first_users_mask_upload_or_view(url, scan):
    from gradio_client import Client, handle_file

    rev, rev2 = (signed_in(url, u) for u in USERS)
    mask, _ = Client(url, auth=USERS[0], verbose=False, download_files=False).predict(
        handle_file(scan), CLICK, api_name="/segment"
    )
    assert rev.get(file_url(mask["path"])).status_code == 200
    refused = rev2.get(file_url(mask["path"]))
    assert refused.status_code == 403 and b"PNG" not in refused.content
    assert httpx.get(f"{url}{file_url(mask['path'])}").status_code in (401, 403)  # nobody signed in

    # The view and the downloads live in the same per-user folders as the API's masks.
    workspace = Workspace()
    view = workspace.write(workspace.new_key("rev"), "view.jpg", b"a view")
    assert rev.get(file_url(view)).content == b"a view" and rev2.get(file_url(view)).status_code == 403

    # An upload no request has read yet is not served back, to anyone.
    with open(scan, "rb") as fh:
        (uploaded,) = rev2.post("gradio_api/upload", files={"files": ("scan.png", fh, "image/png")}).json()
    assert rev.get(file_url(uploaded)).status_code == 403 and rev2.get(file_url(uploaded)).status_code == 403

    assert rev.get("gradio_api/deep_link", params={"session_hash": "abc"}).status_code == 403
    example = next(EXAMPLES_DIR.glob("*.png"))
    assert rev2.get(file_url(str(example))).status_code == 200  # the examples are public


@pytest.mark.slow
def test_an_uploaded_dicom_is_read_and_removed_at_once(url, tmp_path, image_bytes):
    from gradio_client import Client, handle_file

    name = f"patient-{uuid.uuid4().hex}.dcm"
    path = tmp_path / name
    frames = np.stack([np.full((64, 80), 90, np.uint8)] * 2)
    path.write_bytes(image_bytes.dicom(frames))
    assert b"Doe^Jane" in path.read_bytes()
    client = Client(url, auth=USERS[0], verbose=False)
    prompt = json.dumps({"clicks": [{"x": 40, "y": 30, "positive": True}], "frame": 1})
    client.predict(handle_file(str(path)), prompt, api_name="/segment")
    left = [p for p in Path(upload_root()).rglob(name)]
    assert not left, f"the upload stayed on disk: {left}"


def test_an_upload_is_read_once_and_removed_and_only_uploads_are_read(scan):
    folder = upload_root() / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / "scan.png"
    path.write_bytes(Path(scan).read_bytes())
    workspace = Workspace()
    assert workspace.read_upload(str(path)) == (Path(scan).read_bytes(), "scan.png")
    assert not folder.exists()  # the file and Gradio's folder for it
    # A second request that sent the same file at once shares its path (Gradio names it by content).
    assert workspace.read_upload(str(path))[0] == Path(scan).read_bytes()
    with pytest.raises(ImageError, match="no longer on the server"):
        Workspace().read_upload(str(path))
    made = workspace.write(workspace.new_key("rev"), "view.jpg", b"a view")
    for elsewhere in ("/etc/hostname", scan, made, ""):
        with pytest.raises(ImageError, match="send the image as a file"):
            workspace.read_upload(elsewhere)
    assert Path(made).exists()
    example = next(EXAMPLES_DIR.glob("*.png"))
    assert workspace.read_upload(str(example), public=(EXAMPLES_DIR,))[1] == example.name and example.exists()


# Gradio's routes that answered callers who had not signed in (before the gate), and some that did not.
API_ROUTES = [
    ("POST", "gradio_api/reset"),
    ("POST", "gradio_api/cancel"),
    ("GET", "gradio_api/heartbeat/abc"),
    ("POST", "gradio_api/stream/abc"),
    ("POST", "gradio_api/stream/abc/close"),
    ("GET", "gradio_api/app_id"),
    ("POST", "gradio_api/queue/join"),
    ("GET", "gradio_api/queue/data"),
    ("POST", "gradio_api/upload"),
]


@pytest.mark.slow
def test_a_caller_who_has_not_signed_in_reaches_nothing_of_the_queue(url):
    event = {"session_hash": "abc", "fn_index": 0, "event_id": "e1"}
    with httpx.Client(base_url=url, timeout=10) as anonymous:
        for method, route in API_ROUTES:
            with anonymous.stream(method, route, json=event if method == "POST" else None) as answer:
                assert answer.status_code == 401, f"{method} /{route} answered {answer.status_code}"
        assert anonymous.get("").status_code == 200  # the sign-in page
    assert signed_in(url, USERS[0]).post("gradio_api/reset", json=event).status_code == 200


# --- nothing left behind -------------------------------------------------------------------------------------
def holding(text: str, *folders: Path) -> list[Path]:
    """The files under ``folders`` whose bytes hold ``text``."""
    return [f for d in folders for f in d.rglob("*") if f.is_file() and text.encode() in f.read_bytes()]


def patient_scan(image_bytes, name: str, level: int) -> bytes:
    """A two-frame ultrasound DICOM of patient ``name`` (``level``: its gray, so that files differ)."""
    return image_bytes.dicom(np.stack([np.full((64, 80), level, np.uint8)] * 2), patient=name)


@pytest.mark.slow
def test_sigterm_leaves_no_upload_and_no_file_made_from_one(servers, tiny_model, tmp_path, image_bytes):
    from gradio_client import Client, handle_file

    uploads, scratch = tmp_path / "uploads", tmp_path / "tmp"  # the server's temporary folders: Gradio's, the system's
    scratch.mkdir()
    login = ("ann", "ann-password")
    env = {"GRADIO_TEMP_DIR": str(uploads), "TMPDIR": str(scratch)}
    server = servers(["--model", tiny_model, "--auth", ":".join(login)], env).start()
    patient = f"Roe^{uuid.uuid4().hex[:12]}"
    web = signed_in(server.url, login)  # a file sent to Gradio's upload route that no event ever reads
    sent = web.post("gradio_api/upload", files={"files": ("a.dcm", patient_scan(image_bytes, patient, 90))}).json()
    read = tmp_path / "b.dcm"  # and one that /segment reads, outlines and answers with a mask
    read.write_bytes(patient_scan(image_bytes, patient, 120))
    prompt = json.dumps({"clicks": [{"x": 40, "y": 30, "positive": True}], "frame": 1})
    Client(server.url, auth=login, verbose=False).predict(handle_file(str(read)), prompt, api_name="/segment")
    assert holding(patient, uploads) == [Path(sent[0])]  # on disk while the server runs
    files = [f for f in uploads.rglob("*") if f.is_file()]
    assert any(f.name == "mask.png" for f in files)  # and what was made from the other

    status = server.stop()
    left = [f for f in uploads.rglob("*") if f.is_file()]
    print(f"\nSIGTERM: {len(files)} files under the upload folder before, {len(left)} after")
    assert not left and not holding(patient, uploads, scratch)
    assert status == 0  # stopped as by Ctrl-C


@pytest.mark.slow
def test_a_server_starting_sweeps_what_a_killed_one_left(servers, tiny_model, tmp_path, image_bytes):
    uploads, login = tmp_path / "uploads", ("ann", "ann-password")
    args, env = ["--model", tiny_model, "--auth", ":".join(login)], {"GRADIO_TEMP_DIR": str(uploads)}
    killed = servers(args, env).start()
    patient = f"Roe^{uuid.uuid4().hex[:12]}"
    dicom = patient_scan(image_bytes, patient, 90)
    assert signed_in(killed.url, login).post("gradio_api/upload", files={"files": ("a.dcm", dicom)}).status_code == 200
    killed.kill()  # SIGKILL: no chance to clean up
    assert holding(patient, uploads)
    servers(args, env).start()
    assert not holding(patient, uploads)


def test_instance_folders_of_dead_servers_are_swept_and_a_live_ones_kept(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADIO_TEMP_DIR", "/somewhere/else")
    for name in ("instance-dead", "instance-orphan", "instance-live"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "upload.dcm").write_bytes(b"patient data")
    (tmp_path / "instance-dead.lock").touch()  # nobody holds its lock: its server was killed
    live = tempdir._locked(tmp_path / "instance-live.lock")  # held, as a running server holds its own
    try:
        with tempdir.instance_folder(tmp_path) as mine:
            assert os.environ["GRADIO_TEMP_DIR"] == str(mine) and mine.is_dir()
            kept = {p.name for p in tmp_path.iterdir()}
            assert kept == {"instance-live", "instance-live.lock", mine.name, f"{mine.name}.lock"}
            (mine / "upload.dcm").write_bytes(b"patient data")
    finally:
        os.close(live)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["instance-live", "instance-live.lock"]
    assert os.environ["GRADIO_TEMP_DIR"] == "/somewhere/else"
    assert tempdir.sweep(tmp_path) == [tmp_path / "instance-live"]  # its lock is free now


def test_the_upload_field_leaves_no_empty_file_per_upload(tiny_model, tmp_path, monkeypatch, scan):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "cache"))  # read by Gradio's components when made
    demo = build_demo(Segmenter(tiny_model, provider="cpu"))
    field = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "upload")
    for _ in range(3):
        assert field.preprocess(FileData(path=scan, orig_name="scan.png")) == scan
    assert [f for f in (tmp_path / "cache").rglob("*") if f.is_file()] == []
