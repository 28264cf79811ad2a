"""The files the viewer handles, and who may fetch them.

Gradio serves every file under its upload and cache folder to any signed-in user who knows the URL, and URLs
travel in every response. So:

- an upload (a page's or an API client's) is read into memory and removed from disk at once
  (:meth:`Workspace.read_upload`): a DICOM file's header, patient data included, never stays on disk;
- what the viewer serves (the view, the downloads, an API answer's mask) is written into a :class:`Workspace`
  inside Gradio's cache folder (so Gradio serves it in place, without a copy), in a folder of its owner;
- :class:`FileGuard`, an ASGI middleware, answers a file request under that folder only for the owner (the
  signed-in user it was made for), refuses every other file of the upload and cache folder, and refuses
  Gradio's deep links (which hand a Gradio session's contents to whoever has its hash).

Without logins there is nobody to tell apart: every tab's files are then served to whoever has their URL,
which holds a random folder name.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import shutil
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

import gradio as gr
from gradio.utils import NamedString, get_upload_folder
from starlette.requests import Request
from starlette.responses import PlainTextResponse

from core.imageio import ImageError

API_FILE_TTL_S = 600  # an API answer's mask, kept for the client to download
RECENT_S, RECENT_BYTES = 60, 256 * 2**20  # uploads just read, for a request that shares one (below)
SERVED_KEPT = 9  # a tab's latest files (its picture and the latest outlines' downloads): a page may still fetch one
PUBLIC = "public"  # the owner folder when the server has no logins
FILE_ROUTES = ("/gradio_api/file=", "/file=", "/gradio_api/file/", "/file/")
DEEP_LINK = "/gradio_api/deep_link"
NOT_YOURS = "File not allowed."
WORKSPACE_PREFIX = "liverclick-"
_SECRET = secrets.token_bytes(32)  # keys the owner folders' names: a login never appears in a URL


def upload_root() -> Path:
    """Gradio's folder of uploads and cached files."""
    return Path(get_upload_folder()).resolve()


class Workspace:
    """Files the viewer serves: ``ROOT/<owner>/<tab>/...`` and ``ROOT/<owner>/api/<id>/...``, inside
    Gradio's cache folder. A tab's folder goes with the tab; API files after API_FILE_TTL_S."""

    def __init__(self) -> None:
        upload_root().mkdir(parents=True, exist_ok=True)
        self._tmp = tempfile.TemporaryDirectory(prefix=WORKSPACE_PREFIX, dir=upload_root())
        self.root = Path(self._tmp.name).resolve()
        # Gradio names an upload's folder by its content, so two requests sending the same file at once share
        # one path: the second finds it removed by the first and takes the bytes from here.
        self._recent: OrderedDict[Path, tuple[float, bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def read_upload(self, path: str, public: tuple[Path, ...] = ()) -> tuple[bytes, str]:
        """The bytes and file name of an upload, which is removed from disk at once; a file in one of the
        ``public`` folders (the examples) is read and kept. Any other path (this workspace's included) is refused."""
        file = Path(path).resolve() if isinstance(path, str) and path else None
        if file is not None and any(file.is_relative_to(folder.resolve()) for folder in public):
            return file.read_bytes(), file.name
        root = upload_root()
        if file is None or not file.is_relative_to(root) or file.parent == root or file.is_relative_to(self.root):
            raise ImageError("send the image as a file (gradio_client.handle_file), not as a path on the server")
        with self._lock:
            try:
                data = file.read_bytes()
            except FileNotFoundError:
                data = self._recent.get(file, (0.0, None))[1]
                if data is None:
                    raise ImageError("the upload is no longer on the server; send it again") from None
            self._remember(file, data)
            file.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # Gradio's folder for this upload, when nothing else is in it
                file.parent.rmdir()
        return data, file.name

    def _remember(self, file: Path, data: bytes) -> None:
        """Keep the bytes of an upload just read for RECENT_S seconds, RECENT_BYTES in all."""
        now = time.monotonic()
        self._recent.pop(file, None)
        self._recent[file] = (now, data)
        total = sum(len(d) for _, d in self._recent.values())
        while self._recent:
            first, (when, old) = next(iter(self._recent.items()))
            if now - when <= RECENT_S and total <= RECENT_BYTES:
                break
            del self._recent[first]
            total -= len(old)

    def new_key(self, username: str | None) -> str:
        """A fresh tab folder of this user's, relative to the root."""
        return f"{owner(username)}/{uuid.uuid4().hex}"

    def write_served(self, key: str, name: str, data: bytes) -> str:
        """Write a file the tab ``key`` shows (the view, a download) into a folder named by its content, as Gradio's
        cache does: new content gets a new URL, the same content keeps its URL. The tab's older files
        beyond the latest SERVED_KEPT are removed."""
        folder = self.root / key / hashlib.sha256(data).hexdigest()[:16]
        target = folder / name
        if target.is_file():
            os.utime(folder)
        else:
            self.write(str(folder.relative_to(self.root)), name, data)
        served = sorted((d for d in folder.parent.iterdir() if d.is_dir()), key=lambda d: d.stat().st_mtime)
        for old in served[:-SERVED_KEPT]:
            shutil.rmtree(old, ignore_errors=True)
        return str(target)

    def write(self, folder: str, name: str, data: bytes) -> str:
        """Write ``data`` to ``folder/name`` atomically (a reader never sees half a file); return the path."""
        target = self.root / folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{uuid.uuid4().hex}")
        partial.write_bytes(data)
        os.replace(partial, target)
        return str(target)

    def write_once(self, username: str | None, name: str, data: bytes) -> str:
        """A file for one API answer; those older than API_FILE_TTL_S are removed as new ones come."""
        api = self.root / owner(username) / "api"
        if api.is_dir():
            for old in api.iterdir():
                if time.time() - old.stat().st_mtime > API_FILE_TTL_S:
                    shutil.rmtree(old, ignore_errors=True)
        return self.write(f"{owner(username)}/api/{uuid.uuid4().hex}", name, data)

    def remove(self, tab) -> None:
        """The tab's folder, with every file it was shown."""
        if tab.key:
            shutil.rmtree(self.root / tab.key, ignore_errors=True)


def upload_field(**kwargs) -> gr.File:
    """The page's upload field: a ``gr.File`` handing its handler the upload's path, without the empty temporary
    file that ``gr.File`` otherwise makes in the cache folder for every upload and never removes (Gradio 6). Set on
    the instance: a subclass of a Gradio component makes Gradio write a ``.pyi`` file beside this module."""
    field = gr.File(type="filepath", **kwargs)
    field._process_single_file = lambda upload: NamedString(upload.path)
    return field


class FileGuard:
    """ASGI middleware: a file of the upload and cache folder only for its owner; no deep links."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not self._allowed(scope):
            await PlainTextResponse(NOT_YOURS, status_code=403)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _allowed(self, scope) -> bool:
        path = scope.get("path", "")
        if path.rstrip("/") == DEEP_LINK:
            return False
        route = next((r for r in FILE_ROUTES if path.startswith(r)), None)
        if route is None:
            return True
        target = path[len(route) :]
        if "://" in target:
            return True  # a URL, not a file of ours: Gradio's rules for URLs apply
        return may_fetch(Path(os.path.abspath(target)).resolve(), signed_in(scope))


def owner(username: str | None) -> str:
    """The folder of a user's files: a keyed hash of the login, or PUBLIC without one."""
    if not username:
        return PUBLIC
    return hmac.new(_SECRET, username.encode(), hashlib.sha256).hexdigest()[:24]


def may_fetch(path: Path, username: str | None) -> bool:
    """Of the upload and cache folder, only the user's own workspace files; other paths are Gradio's to judge."""
    root = upload_root()
    if not path.is_relative_to(root):
        return True
    parts = path.relative_to(root).parts
    return len(parts) > 2 and parts[0].startswith(WORKSPACE_PREFIX) and parts[1] == owner(username)


def signed_in(scope) -> str | None:
    """The user a request is signed in as, read as Gradio reads it (its login cookie)."""
    app = scope.get("app")
    tokens, cookie_id = getattr(app, "tokens", None), getattr(app, "cookie_id", None)
    if tokens is None or cookie_id is None:
        return None
    cookies = Request(scope).cookies
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return tokens.get(token) if token else None
