"""The newest session of every open viewer tab, where the page's events and the canvas's calls both find it.

Gradio keeps a tab's session in ``gr.State``, which only the page's queued events read and write; the canvas
(webapp.canvas) calls the server directly, outside the queue, for every click. So the newest session of a tab is
kept here by its key (``Session.key``, which names the tab's folder of served files and its owner), and every
handler starts from it: an event's ``gr.State`` value may be a step behind the canvas. A tab's inputs are applied
one at a time, in the order they came (its lock).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from .files import owner
from .session import Session

EXPIRED = "this page's session has expired or the server restarted: reload the page and open the image again"
NOT_YOURS = "this page's session belongs to another login"


class TabError(LookupError):
    """A canvas call for a tab this server does not hold, or one of another user's."""


class Tabs:
    """Sessions by key: the most recent ``capacity``, each for ``ttl_s`` after its last use."""

    def __init__(self, capacity: int, ttl_s: float) -> None:
        self.capacity, self.ttl_s = capacity, ttl_s
        self._tabs: OrderedDict[str, tuple[float, Session]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def latest(self, session: Session) -> Session:
        """The newest session of ``session``'s tab (``session`` itself when the tab is not held)."""
        if not session.key:
            return session
        with self._lock:
            held = self._tabs.get(session.key)
        return session if held is None or held[1].version < session.version else held[1]

    def get(self, key: str, username: str | None) -> Session:
        """The session of tab ``key``, for its owner only (TabError otherwise)."""
        with self._lock:
            self._expire()
            held = self._tabs.get(key)
        if held is None:
            raise TabError(EXPIRED)
        if key.split("/", 1)[0] != owner(username):
            raise TabError(NOT_YOURS)
        return held[1]

    def put(self, session: Session) -> Session:
        """Hold ``session`` as its tab's newest; returned with a version above every earlier one of the tab (an
        event may have started from an older session than the canvas's)."""
        if not session.key:
            return session
        with self._lock:
            held = self._tabs.pop(session.key, None)
            if held is not None and held[1].version >= session.version:
                session = replace(session, version=held[1].version + 1)
            self._tabs[session.key] = (time.monotonic(), session)
            self._locks.setdefault(session.key, threading.Lock())
            while len(self._tabs) > self.capacity:
                self._drop(next(iter(self._tabs)))
        return session

    def drop(self, key: str) -> None:
        with self._lock:
            self._drop(key)

    @contextmanager
    def turn(self, key: str) -> Iterator[None]:
        """Hold tab ``key`` while its inputs are applied: the next waits for this one."""
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def _expire(self) -> None:
        now = time.monotonic()
        while self._tabs:
            key, (used, _) = next(iter(self._tabs.items()))
            if now - used <= self.ttl_s:
                break
            self._drop(key)

    def _drop(self, key: str) -> None:
        self._tabs.pop(key, None)
        self._locks.pop(key, None)
