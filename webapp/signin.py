"""Failed sign-ins slow down further ones, per account and per client address, and every one is logged.

:class:`SignInThrottle` is an ASGI middleware in front of Gradio's ``POST /login``. After FREE_FAILURES failures
within WINDOW_S for an account or from an address, the next attempt must wait (1 s, then doubling up to
MAX_WAIT_S since the last failure): one that owes up to MAX_HOLD_S is held that long and then heard, one that owes
more is answered 429 at once, with the wait, its password unchecked. A key with failures has fewer attempts in
flight at once (one when it owes a wait), so guesses sent in parallel gain nothing; a success clears the
account's failures.
The address is the client's as uvicorn sees it: behind a proxy it trusts (``FORWARDED_ALLOW_IPS``, loopback by
default), the one in ``X-Forwarded-For``. Lines go to ``liverclick.audit``.

The failures are kept in a ledger: this process's memory (:class:`MemoryLedger`), or, for servers sharing a feedback
store, the store (:class:`StoreLedger`), so that N replicas do not give N times the guesses. Attempts in flight are
counted by each server.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import Counter, defaultdict, deque
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse

from .feedback.record import StoreUnavailable
from .feedback.store import FeedbackStore

FREE_FAILURES = 5
WINDOW_S = 15 * 60
FIRST_WAIT_S, MAX_WAIT_S = 1.0, 300.0
MAX_HOLD_S = 2.0  # an attempt that owes a wait up to this long is held that long, then heard; a longer one: 429
BUSY_WAIT_S = 0.05
MAX_FORM_BYTES = 64 * 1024
LOGIN_PATHS = ("/login", "/login/")

SIGN_IN_DOWN = "Signing in is not possible right now: the database cannot be reached. Try again in a minute."

audit = logging.getLogger("liverclick.audit")
log = logging.getLogger("liverclick.webapp")


class MemoryLedger:
    """Failed sign-ins by key, in this process: ``recent``, ``add`` and ``clear``, as every ledger has them."""

    def __init__(self) -> None:
        self._seen: dict[str, deque[float]] = defaultdict(deque)

    def recent(self, keys: tuple[str, ...], since: float) -> dict[str, tuple[int, float]]:
        """For each key with failures at ``since`` or later: their number and the time of the last."""
        found = {}
        for key in keys:
            seen = self._seen.get(key)
            while seen and seen[0] < since:
                seen.popleft()
            if seen:
                found[key] = (len(seen), seen[-1])
            else:
                self._seen.pop(key, None)
        return found

    def add(self, keys: tuple[str, ...], at: float) -> None:
        for key in keys:
            self._seen[key].append(at)

    def clear(self, key: str) -> None:
        self._seen.pop(key, None)


class StoreLedger:
    """Failed sign-ins by key, in a feedback store, counted together by every server sharing it."""

    def __init__(self, store: FeedbackStore) -> None:
        self._store = store

    def recent(self, keys: tuple[str, ...], since: float) -> dict[str, tuple[int, float]]:
        sql = (
            "SELECT throttle_key, COUNT(*), MAX(failed_at) FROM sign_in_failure "
            f"WHERE throttle_key IN ({', '.join('?' * len(keys))}) AND failed_at >= ? GROUP BY throttle_key"
        )
        rows = self._store.read(lambda run: run(sql, (*keys, since)).fetchall())
        return {key: (int(n), float(last)) for key, n, last in rows}

    def add(self, keys: tuple[str, ...], at: float) -> None:
        def write(run) -> None:
            run("DELETE FROM sign_in_failure WHERE failed_at < ?", (at - WINDOW_S,))  # what no one counts any more
            for key in keys:
                run("INSERT INTO sign_in_failure (throttle_key, failed_at) VALUES (?, ?)", (key, at))

        self._store.write(write)

    def clear(self, key: str) -> None:
        self._store.write(lambda run: run("DELETE FROM sign_in_failure WHERE throttle_key = ?", (key,)))


class Failures:
    """Failed sign-ins by key (``account:NAME``, ``address:IP``), kept in ``ledger``; the wait each key owes, and the
    attempts in flight.

    A key with f recent failures has FREE_FAILURES - f attempts in flight at most (one at least), so that guesses
    sent at once are checked no faster than one after the other, while people signing in together are not held up.
    Times are the wall clock's, which servers sharing a ledger have in common.
    """

    def __init__(self, clock=time.time, ledger=None) -> None:
        self._clock = clock
        self._ledger = ledger if ledger is not None else MemoryLedger()
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, *keys: str) -> float:
        """0: the attempt may go on (call :meth:`done` after); else the seconds to wait before trying again."""
        now = self._clock()
        with self._lock:
            recent = self._ledger.recent(keys, now - WINDOW_S)
            wait = max(_owed(*recent.get(key, (0, now)), now) for key in keys)
            slots = {key: max(1, FREE_FAILURES - recent.get(key, (0,))[0]) for key in keys}
            if wait == 0 and any(self._busy[key] >= slots[key] for key in keys):
                wait = BUSY_WAIT_S
            if wait == 0:
                self._busy.update(keys)
            return wait

    def done(self, keys: tuple[str, ...], success: bool) -> None:
        """An admitted attempt is over: a success clears the account (the first key), a failure counts."""
        now = self._clock()
        with self._lock:
            self._busy.subtract(keys)
            for key in keys:
                if self._busy[key] <= 0:
                    del self._busy[key]
            if success:
                self._ledger.clear(keys[0])
            else:
                self._ledger.add(keys, now)

    def count(self, key: str) -> int:
        with self._lock:
            return self._ledger.recent((key,), self._clock() - WINDOW_S).get(key, (0,))[0]


def _owed(failures: int, last: float, now: float) -> float:
    """The wait a key owes after ``failures`` recent failures, the last at ``last``."""
    if failures < FREE_FAILURES:
        return 0.0
    owed = min(FIRST_WAIT_S * 2 ** (failures - FREE_FAILURES), MAX_WAIT_S)
    return max(0.0, last + owed - now)


class SignInThrottle:
    """ASGI middleware: slows and logs failed sign-ins (see the module's description)."""

    def __init__(self, app, store: FeedbackStore | None = None) -> None:
        """``store``: a feedback store to keep the failures in, for every server sharing it; else this process."""
        self.app = app
        self.failures = Failures(ledger=StoreLedger(store)) if store is not None else Failures()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > MAX_FORM_BYTES:
                await JSONResponse({"detail": "sign-in form too large"}, status_code=413)(scope, receive, send)
                return
            if not message.get("more_body"):
                break
        name = await _username(scope, body)
        address = (scope.get("client") or ("unknown",))[0]
        keys = (f"account:{name}", f"address:{address}")
        who = f"account {name[:64]!r} from {address}"
        try:
            refusal = await self._admit(keys, who)
        except StoreUnavailable:
            log.exception("sign-in refused: the failed sign-ins cannot be counted")
            refusal = JSONResponse({"detail": SIGN_IN_DOWN}, status_code=503)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        settled = []

        async def watch(message) -> None:
            if message["type"] == "http.response.start" and not settled:
                success = message["status"] == 200
                settled.append(await asyncio.to_thread(self._settle, keys, who, success))  # before the client has it
            await send(message)

        try:
            await self.app(scope, _replay(body), watch)
        finally:
            if not settled:  # no answer at all: counted as a failure
                await asyncio.to_thread(self._settle, keys, who, False)

    async def _admit(self, keys: tuple[str, ...], who: str) -> JSONResponse | None:
        """None once the attempt may be heard (after a wait up to MAX_HOLD_S), else the 429 answer."""
        held = time.monotonic() + MAX_HOLD_S
        while (wait := await asyncio.to_thread(self.failures.admit, *keys)) > 0:  # a ledger may be a database
            if time.monotonic() + wait > held:
                audit.warning("sign-in refused, too many failures: %s (retry in %.0f s)", who, math.ceil(wait))
                detail = f"Too many failed sign-ins: try again in {math.ceil(wait)} s."
                return JSONResponse({"detail": detail}, status_code=429, headers={"Retry-After": str(math.ceil(wait))})
            await asyncio.sleep(wait)  # slowed, not refused: a mistyped password costs a second or two
        return None

    def _settle(self, keys: tuple[str, ...], who: str, success: bool) -> bool:
        try:
            self.failures.done(keys, success)
            counted = "" if success else f"{self.failures.count(keys[0])} in {WINDOW_S // 60} min"
        except StoreUnavailable:
            log.exception("a sign-in could not be counted: %s", who)
            counted = "not counted: the database cannot be reached"
        if success:
            audit.info("signed in: %s", who)
        else:
            audit.warning("failed sign-in: %s (%s)", who, counted)
        return success


async def _username(scope, body: bytes) -> str:
    """The form's username (urlencoded or multipart), as Gradio reads it; '' when there is none."""
    if scope_type(scope) == "application/x-www-form-urlencoded":
        values = parse_qs(body.decode("utf-8", "replace")).get("username", [""])
        return values[0].strip()
    try:
        form = await Request(scope, _replay(body)).form()
    except Exception:
        return ""
    value = form.get("username")
    return value.strip() if isinstance(value, str) else ""


def scope_type(scope) -> str:
    headers = dict(scope.get("headers") or [])
    return headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()


def _replay(body: bytes):
    """An ASGI ``receive`` that gives ``body`` once, then waits as a finished request does."""
    sent = False

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
