"""Every open viewer tab's state, by key: the one place it is kept.

The page's events (an upload, a frame, a review case, a submitted review) and the canvas's server functions (each
click, webapp.canvas) all find a tab here by its key (``Tab.key``, which also names its folder of served files and
its owner); the page keeps only the key (``gr.State``). A tab's changes are applied one at a time, in the order they
came (:meth:`Tabs.hold`), and each state held is stamped with a version one above the last, so that a page given
two answers out of order shows the newer.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

from .files import owner
from .tab import Tab
from .text import EXPIRED, NOT_YOURS


class TabError(LookupError):
    """A call for a tab this server does not hold, or one of another user's."""


class Tabs:
    """Tabs by key: the most recent ``capacity``, each for ``ttl_s`` after its last use."""

    def __init__(self, capacity: int, ttl_s: float) -> None:
        self.capacity, self.ttl_s = capacity, ttl_s
        self._tabs: OrderedDict[str, tuple[float, Tab]] = OrderedDict()
        self._locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def get(self, key: str, username: str | None) -> Tab:
        """The tab ``key``, for its owner only (TabError otherwise)."""
        with self._lock:
            self._expire()
            held = self._tabs.get(key)
        if held is None:
            raise TabError(EXPIRED)
        if key.split("/", 1)[0] != owner(username):
            raise TabError(NOT_YOURS)
        return held[1]

    @contextmanager
    def hold(self, key: str, username: str | None) -> Iterator[Tab]:
        """The tab ``key`` (see :meth:`get`), held while a change is made to it: the next waits for this one."""
        self.get(key, username)  # no lock is made for a key nobody holds
        with self._lock:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield self.get(key, username)

    def put(self, tab: Tab) -> Tab:
        """Hold ``tab`` as its key's newest state, returned stamped with a version above every earlier one."""
        with self._lock:
            held = self._tabs.pop(tab.key, None)
            tab = replace(tab, version=(held[1].version if held else tab.version) + 1)
            self._tabs[tab.key] = (time.monotonic(), tab)
            while len(self._tabs) > self.capacity:
                self._drop(next(iter(self._tabs)))
        return tab

    def drop(self, key: str) -> None:
        with self._lock:
            self._drop(key)

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
