"""Where a server's uploads and the files made from them live on disk, and how they go: a folder of each server
process's own, removed when it stops and, when it was killed, by the next server to start.

Gradio keeps uploads and its cache in ``GRADIO_TEMP_DIR`` (by default ``<tmp>/gradio``), a folder every Gradio process
shares and none empties on a stop signal: a file sent to its upload route and never read by an event (a DICOM file,
patient data in its header) stayed there for good. ``liverclick serve`` runs inside :func:`instance_folder`, which
points ``GRADIO_TEMP_DIR`` at ``BASE/instance-<id>`` before Gradio reads it; BASE is the ``GRADIO_TEMP_DIR`` the
server was started with, else ``<tmp>/liverclick``. While the process runs it holds an exclusive lock on
``BASE/instance-<id>.lock``; on the way out (Ctrl-C, or SIGTERM, which serve turns into the same) the folder and the
lock file are removed. A process killed outright (SIGKILL, a crash, a power cut) leaves its folder, but the kernel
releases its lock: every server starting under the same BASE removes each instance folder whose lock it can take, and
each folder without a lock file (its server removed the lock but not all the folder).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .instance import INSTANCE

ENV = "GRADIO_TEMP_DIR"
DEFAULT_BASE = "liverclick"  # under the system's temporary folder
PREFIX = "instance-"


def base_folder() -> Path:
    """BASE: where instance folders are made (the ``GRADIO_TEMP_DIR`` given, else ``<tmp>/liverclick``)."""
    return Path(os.environ.get(ENV) or Path(tempfile.gettempdir()) / DEFAULT_BASE).resolve()


@contextlib.contextmanager
def instance_folder(base: Path | None = None) -> Iterator[Path]:
    """This process's folder under ``base`` (default :func:`base_folder`), as ``GRADIO_TEMP_DIR`` for the block's
    duration; the folders of dead servers are swept first, and this one is removed on the way out."""
    base = Path(base or base_folder())
    base.mkdir(parents=True, exist_ok=True)
    folder, lock_file = base / f"{PREFIX}{INSTANCE}", base / f"{PREFIX}{INSTANCE}.lock"
    lock = _locked(lock_file)
    before = os.environ.get(ENV)
    try:
        sweep(base)
        folder.mkdir(mode=0o700)
        os.environ[ENV] = str(folder)
        yield folder
    finally:
        if before is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = before
        shutil.rmtree(folder, ignore_errors=True)
        lock_file.unlink(missing_ok=True)
        os.close(lock)


def sweep(base: Path) -> list[Path]:
    """Remove the instance folders under ``base`` whose server is gone (its lock is free, or its lock file missing);
    returns them."""
    swept = []
    for lock_file in base.glob(f"{PREFIX}*.lock"):
        with contextlib.suppress(FileNotFoundError), _free_lock(lock_file) as free:
            if free:
                shutil.rmtree(lock_file.with_suffix(""), ignore_errors=True)
                lock_file.unlink(missing_ok=True)
                swept.append(lock_file.with_suffix(""))
    for folder in base.glob(f"{PREFIX}*"):
        if folder.is_dir() and not folder.with_name(f"{folder.name}.lock").exists():
            shutil.rmtree(folder, ignore_errors=True)
            swept.append(folder)
    return swept


def _locked(lock_file: Path) -> int:
    """A new lock file, locked (exclusively, until closed or the process ends) before it appears under its name, so
    that no sweep can take it for a dead server's; its descriptor."""
    hidden = lock_file.with_name(f".{lock_file.name}")  # not a name the sweep looks at
    fd = os.open(hidden, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(hidden, lock_file)
    return fd


@contextlib.contextmanager
def _free_lock(lock_file: Path) -> Iterator[bool]:
    """Whether ``lock_file``'s lock could be taken (then held for the block): its server is gone."""
    fd = os.open(lock_file, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)
