"""Signing in, kept in the feedback store, so that the servers sharing one (replicas behind a proxy) act as one.

Gradio keeps its sign-in tokens in the memory of the process that issued them, under a cookie whose name it draws
per process: a browser moved to another replica (its own died) was signed out, and each replica's sign-in throttle
counted its own failures, so that N replicas gave an attacker N times the guesses. With a store,

- :func:`share_sign_ins` gives Gradio's app, as it starts, the store's cookie name (drawn once, by the first server)
  and :class:`StoreTokens` for its tokens: every server knows every sign-in;
- webapp.signin's throttle counts the failed sign-ins kept in the store (``signin.StoreLedger``).

The store keeps a SHA-256 of each token, never the token. A sign-in lasts SESSION_LIFETIME_S. Each server keeps the
tokens it has seen in memory and checks them against the store again after RECHECK_S, so that a sign-out (Gradio's
``/logout``) on one server ends the session on the others within that time, and a store that cannot be reached for
a while signs nobody out who was known.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import time
from collections.abc import Iterator, MutableMapping

from .feedback.record import StoreUnavailable
from .feedback.store import FeedbackStore

SESSION_LIFETIME_S = 24 * 3600
RECHECK_S = 60.0
COOKIE_SETTING = "sign_in_cookie_id"


def share_sign_ins(store: FeedbackStore | None):
    """A lifespan for Gradio's app (``app_kwargs["lifespan"]``): once it starts, its sign-in cookie's name and its
    tokens are the store's. None without a store: Gradio's own, in this process."""
    if store is None:
        return None

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.cookie_id = cookie_id(store)
        app.tokens = StoreTokens(store)
        yield

    return lifespan


def cookie_id(store: FeedbackStore) -> str:
    """The sign-in cookie's name suffix of every server of ``store`` (the first to ask draws it)."""
    drawn = secrets.token_urlsafe(32)

    def write(run) -> str:
        insert = "INSERT INTO server_setting (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"
        run(insert, (COOKIE_SETTING, drawn))
        return run("SELECT value FROM server_setting WHERE name = ?", (COOKIE_SETTING,)).fetchone()[0]

    return store.write(write)


class StoreTokens(MutableMapping):
    """Gradio's tokens (token -> login), kept in the store; what Gradio does with its dict works on it."""

    def __init__(self, store: FeedbackStore, clock=time.time) -> None:
        self._store, self._clock = store, clock
        self._known: dict[str, tuple[str, float]] = {}  # token -> (login, when the store last said so)

    def __getitem__(self, token: str) -> str:
        if not isinstance(token, str):
            raise KeyError(token)
        now, known = self._clock(), self._known.get(token)
        if known is not None and now - known[1] < RECHECK_S:
            return known[0]
        sql = "SELECT username FROM sign_in_session WHERE token_sha256 = ? AND expires_at > ?"
        try:
            row = self._store.read(lambda run: run(sql, (_digest(token), now)).fetchone())
        except StoreUnavailable:
            if known is None:
                raise KeyError(token) from None
            return known[0]
        if row is None:
            self._known.pop(token, None)
            raise KeyError(token)
        self._known[token] = (row[0], now)
        return row[0]

    def __setitem__(self, token: str, login: str) -> None:
        now = self._clock()

        def write(run) -> None:
            run("DELETE FROM sign_in_session WHERE expires_at <= ?", (now,))
            insert = "INSERT INTO sign_in_session (token_sha256, username, expires_at) VALUES (?, ?, ?)"
            run(insert, (_digest(token), login, now + SESSION_LIFETIME_S))

        self._store.write(write)
        self._known[token] = (login, now)

    def __delitem__(self, token: str) -> None:
        self._store.write(lambda run: run("DELETE FROM sign_in_session WHERE token_sha256 = ?", (_digest(token),)))
        self._known.pop(token, None)

    def __iter__(self) -> Iterator[str]:
        """The tokens this server has seen (the store holds only their hashes)."""
        return iter(list(self._known))

    def __len__(self) -> int:
        return len(self._known)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
