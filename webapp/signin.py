"""Failed sign-ins slow down further ones, per account and per client address, and every one is logged.

:class:`SignInThrottle` is an ASGI middleware in front of Gradio's ``POST /login``. After FREE_FAILURES failures
within WINDOW_S for an account or from an address, the next attempt must wait (1 s, then doubling up to
MAX_WAIT_S since the last failure); one that comes earlier is answered 429 at once, with the wait, without
checking its password. An attempt counts as failed from the moment it is heard, so guesses sent in parallel gain
nothing; a success clears the account's count and takes its own off the address's.
The address is the client's as uvicorn sees it: behind a proxy it trusts (``FORWARDED_ALLOW_IPS``, loopback by
default), the one in ``X-Forwarded-For``. Lines go to ``liverclick.audit``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections import defaultdict, deque
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import JSONResponse

FREE_FAILURES = 5
WINDOW_S = 15 * 60
FIRST_WAIT_S, MAX_WAIT_S = 1.0, 300.0
MAX_FORM_BYTES = 64 * 1024
LOGIN_PATHS = ("/login", "/login/")

audit = logging.getLogger("liverclick.audit")


class Failures:
    """Recent sign-in attempts that failed, by key (``account:NAME``, ``address:IP``), and the wait each key owes.

    An attempt counts as failed from the moment it is admitted until it succeeds, so that attempts sent at once
    are held up as if they came one after the other.
    """

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._seen: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, *keys: str) -> tuple[float, float]:
        """(wait, stamp): a wait > 0 refuses the attempt; else it is counted as failed, under ``stamp``."""
        now = self._clock()
        with self._lock:
            wait = max(self._wait(key, now) for key in keys)
            if wait == 0:
                for key in keys:
                    self._seen[key].append(now)
            return wait, now

    def succeeded(self, stamp: float, account: str, *others: str) -> None:
        """The attempt admitted under ``stamp`` succeeded: the account starts afresh, the others lose its count."""
        with self._lock:
            self._seen.pop(account, None)
            for key in others:
                with contextlib.suppress(ValueError):
                    self._seen[key].remove(stamp)

    def count(self, key: str) -> int:
        with self._lock:
            return len(self._seen.get(key, ()))

    def _wait(self, key: str, now: float) -> float:
        seen = self._seen.get(key)
        if not seen:
            return 0.0
        while seen and now - seen[0] > WINDOW_S:
            seen.popleft()
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
        wait, stamp = self.failures.admit(*keys)
        who = f"account {name[:64]!r} from {address}"
        if wait > 0:
            audit.warning("sign-in refused, too many failures: %s (retry in %.0f s)", who, math.ceil(wait))
            detail = f"Too many failed sign-ins: try again in {math.ceil(wait)} s."
            headers = {"Retry-After": str(math.ceil(wait))}
            await JSONResponse({"detail": detail}, status_code=429, headers=headers)(scope, receive, send)
            return
        status = []

        async def watch(message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        await self.app(scope, _replay(body), watch)
        if status and status[0] == 200:
            self.failures.succeeded(stamp, *keys)
            audit.info("signed in: %s", who)
        else:
            count = self.failures.count(keys[0])
            audit.warning("failed sign-in: %s (%d in %d min)", who, count, WINDOW_S // 60)


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
