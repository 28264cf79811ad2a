"""Failed sign-ins slow down further ones, per account and per client address, and every one is logged.

:class:`SignInThrottle` is an ASGI middleware in front of Gradio's ``POST /login``. After FREE_FAILURES failures
within WINDOW_S for an account or from an address, the next attempt must wait (1 s, then doubling up to
MAX_WAIT_S since the last failure): one that owes up to MAX_HOLD_S is held that long and then heard, one that owes
more is answered 429 at once, with the wait, its password unchecked. A key with failures has fewer attempts in
flight at once (one when it owes a wait), so guesses sent in parallel gain nothing; a success clears the
account's failures.
The address is the client's as uvicorn sees it: behind a proxy it trusts (``FORWARDED_ALLOW_IPS``, loopback by
default), the one in ``X-Forwarded-For``. Lines go to ``liverclick.audit``.
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

FREE_FAILURES = 5
WINDOW_S = 15 * 60
FIRST_WAIT_S, MAX_WAIT_S = 1.0, 300.0
MAX_HOLD_S = 2.0  # an attempt that owes a wait up to this long is held that long, then heard; a longer one: 429
BUSY_WAIT_S = 0.05
MAX_FORM_BYTES = 64 * 1024
LOGIN_PATHS = ("/login", "/login/")

audit = logging.getLogger("liverclick.audit")


class Failures:
    """Failed sign-ins by key (``account:NAME``, ``address:IP``), the wait each key owes, and the attempts in flight.

    A key with f recent failures has FREE_FAILURES - f attempts in flight at most (one at least), so that guesses
    sent at once are checked no faster than one after the other, while people signing in together are not held up.
    """

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._busy: Counter[str] = Counter()
        self._lock = threading.Lock()

    def admit(self, *keys: str) -> float:
        """0: the attempt may go on (call :meth:`done` after); else the seconds to wait before trying again."""
        now = self._clock()
        with self._lock:
            wait = max(self._wait(key, now) for key in keys)
            slots = {key: max(1, FREE_FAILURES - len(self._seen.get(key, ()))) for key in keys}
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
                self._seen.pop(keys[0], None)
            else:
                for key in keys:
                    self._seen[key].append(now)

    def count(self, key: str) -> int:
        with self._lock:
            return len(self._seen.get(key, ()))

    def _wait(self, key: str, now: float) -> float:
        seen = self._seen.get(key)
        if not seen:
            return 0.0
        while seen and now - seen[0] > WINDOW_S:
            seen.popleft()
        if not seen:
            del self._seen[key]
        if len(seen) < FREE_FAILURES:
            return 0.0
        owed = min(FIRST_WAIT_S * 2 ** (len(seen) - FREE_FAILURES), MAX_WAIT_S)
        return max(0.0, seen[-1] + owed - now)


class SignInThrottle:
    """ASGI middleware: slows and logs failed sign-ins (see the module's description)."""

    def __init__(self, app, failures: Failures | None = None) -> None:
        self.app = app
        self.failures = failures or Failures()

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
        held = time.monotonic() + MAX_HOLD_S
        while (wait := self.failures.admit(*keys)) > 0:
            if time.monotonic() + wait > held:
                audit.warning("sign-in refused, too many failures: %s (retry in %.0f s)", who, math.ceil(wait))
                detail = f"Too many failed sign-ins: try again in {math.ceil(wait)} s."
                headers = {"Retry-After": str(math.ceil(wait))}
                await JSONResponse({"detail": detail}, status_code=429, headers=headers)(scope, receive, send)
                return
            await asyncio.sleep(wait)  # slowed, not refused: a mistyped password costs a second or two
        settled = []

        async def watch(message) -> None:
            if message["type"] == "http.response.start" and not settled:
                settled.append(self._settle(keys, who, message["status"] == 200))  # before the client has it
            await send(message)

        try:
            await self.app(scope, _replay(body), watch)
        finally:
            if not settled:  # no answer at all: counted as a failure
                self._settle(keys, who, False)

    def _settle(self, keys: tuple[str, ...], who: str, success: bool) -> bool:
        self.failures.done(keys, success)
        if success:
            audit.info("signed in: %s", who)
        else:
            audit.warning("failed sign-in: %s (%d in %d min)", who, self.failures.count(keys[0]), WINDOW_S // 60)
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
