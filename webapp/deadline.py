"""Model work on a few worker threads, each request within a time limit, one request per user at a time, and what a
request that failed says."""

from __future__ import annotations

import concurrent.futures
import itertools
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import numpy as np

from core.runtime import Predictor

# The slowest request measured on a 2-core CPU (paper-size x1.0 network, 40 MP PNG: read 0.6 s, predict up to
# 1.5 s) takes about 2 s; the limit leaves ten times that for a busy machine and stops only runaway work.
TIME_LIMIT_S = 20.0
INTERNAL_ERROR = "Something went wrong on the server (the details are in its log). The session is unchanged."

T = TypeVar("T")


class RequestTimeout(RuntimeError):
    """A request ran past the time limit; its answer is dropped."""


class Deadline:
    """Runs model work on ``workers`` threads and stops waiting for it after ``seconds`` (waiting counts).

    Each user (``owner``) has at most one piece of work on the workers or waiting for one: their next waits for
    it to end, so that one user's many requests queue behind each other, not in front of another user's.
    A prediction cannot be interrupted from outside: one past the limit finishes on its worker and its answer
    is dropped, its user's turn held until it ends. As the workers are few, abandoned work never occupies more
    than ``workers`` cores.
    """

    def __init__(self, seconds: float, workers: int) -> None:
        self.seconds = seconds
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="liverclick-model")
        self._turns: dict[str, _Turn] = {}  # the owners with work running or waiting
        self._guard = threading.Lock()

    def run(self, work: Callable[[], T], *, owner: str | None = None) -> T:
        """``work``'s result, after ``owner``'s earlier work has ended (``None``: an owner of its own)."""
        start = time.monotonic()
        turn = self._enter(owner)
        if not turn.lock.acquire(timeout=self.seconds):
            self._leave(owner, turn, held=False)
            raise self._timeout()

        def in_turn() -> T:
            try:
                return work()
            finally:
                self._leave(owner, turn)

        future = self._pool.submit(in_turn)
        try:
            return future.result(timeout=max(0.0, self.seconds - (time.monotonic() - start)))
        except concurrent.futures.TimeoutError:
            if future.cancel():  # it never started: its turn is given back here
                self._leave(owner, turn)
            raise self._timeout() from None

    def _enter(self, owner: str | None) -> _Turn:
        """``owner``'s turn, counted as wanted once more."""
        with self._guard:
            turn = _Turn() if owner is None else self._turns.setdefault(owner, _Turn())
            turn.wanted += 1
            return turn

    def _leave(self, owner: str | None, turn: _Turn, *, held: bool = True) -> None:
        """Give back a turn (``held``, or waited for in vain): forgotten when nobody wants it."""
        with self._guard:
            if held:
                turn.lock.release()
            turn.wanted -= 1
            if owner is not None and not turn.wanted:
                del self._turns[owner]

    def _timeout(self) -> RequestTimeout:
        return RequestTimeout(
            f"the request took longer than the server's limit of {self.seconds:g} s and was given up; "
            "a smaller image may help"
        )


class _Turn:
    """One owner's turn on the workers, and how many of their requests hold or wait for it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.wanted = 0


class OneStepAtATime(Predictor):
    """``predictor`` with its steps (one input's prediction: framing, network pass, outline) taken one at a time,
    in the order they were asked for.

    The cores are shared step by step, not request by request: a request of many steps (a long click history)
    lets another user's step in after each of its own, and two steps never split the cores between them (on a
    CPU two concurrent steps each take about twice as long as one alone, and one step's framing slows the
    other's multi-threaded pass).
    """

    def __init__(self, predictor: Predictor) -> None:
        self.inner = predictor
        self.spec, self.card, self.provider = predictor.spec, predictor.card, predictor.provider
        self._tickets = itertools.count()
        self._serving = 0
        self._turn = threading.Condition()

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.inner.run(batch)

    def _predict(self, prepared, prompt, previous):
        """One step, after every step asked for before it."""
        with self._turn:
            ticket = next(self._tickets)
            self._turn.wait_for(lambda: self._serving == ticket)
        try:
            return super()._predict(prepared, prompt, previous)
        finally:
            with self._turn:
                self._serving += 1
                self._turn.notify_all()
