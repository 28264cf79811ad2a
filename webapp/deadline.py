"""Model work on a few worker threads, each request within a time limit, and what a request that failed says."""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import TypeVar

# The slowest request measured on a 2-core CPU (paper-size x1.0 network, 40 MP PNG: read 0.6 s, predict up to
# 1.5 s) takes about 2 s; the limit leaves ten times that for a busy machine and stops only runaway work.
TIME_LIMIT_S = 20.0
INTERNAL_ERROR = "Something went wrong on the server (the details are in its log). The session is unchanged."

T = TypeVar("T")


class RequestTimeout(RuntimeError):
    """A request ran past the time limit; its answer is dropped."""


class Deadline:
    """Runs model work on ``workers`` threads and stops waiting for it after ``seconds`` (waiting for a worker counts).

    A prediction cannot be interrupted from outside: one past the limit finishes on its worker and its answer
    is dropped. As the workers are few, abandoned work never occupies more than ``workers`` cores.
    """

    def __init__(self, seconds: float, workers: int) -> None:
        self.seconds = seconds
        self._pool = concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="liverclick-model")

    def run(self, work: Callable[[], T]) -> T:
        future = self._pool.submit(work)
        try:
            return future.result(timeout=self.seconds)
        except concurrent.futures.TimeoutError:
            future.cancel()  # never starts if it is still waiting for a worker
            raise RequestTimeout(
                f"the request took longer than the server's limit of {self.seconds:g} s and was given up; "
                "a smaller image may help"
            ) from None
