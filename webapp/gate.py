"""With logins, a caller who has not signed in reaches nothing of Gradio's API: only the sign-in page.

Gradio checks the login on most of its routes but not on all: ``POST /gradio_api/reset`` and ``/cancel`` (which
cancels a queued or running event by its session and event ids), the ``heartbeat`` and ``stream`` routes answer
anyone. :class:`ApiGate`, an ASGI middleware, answers 401 to every request under ``/gradio_api/`` that is not signed
in, when the server has logins. The sign-in page itself asks for nothing there (in Chromium it loads the page, its
assets and ``/theme.css``, then posts ``/login``), so refusing the whole prefix costs nothing and also covers a route
a later Gradio adds. One route stays open: ``startup-events``, which Gradio's ``launch`` calls itself, signed out, to
see that the server is up (it starts the queue once, and says whether it had). Without logins (the open demo)
nothing changes.
"""

from __future__ import annotations

from starlette.responses import JSONResponse

from .files import signed_in

API_PREFIX = "/gradio_api/"
OPEN = ("/gradio_api/startup-events",)
SIGN_IN_FIRST = "Not authenticated: sign in first."


class ApiGate:
    """ASGI middleware: with logins, no request under API_PREFIX without a signed-in user."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and path.startswith(API_PREFIX) and path not in OPEN and not _admitted(scope):
            await JSONResponse({"detail": SIGN_IN_FIRST}, status_code=401)(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _admitted(scope) -> bool:
    """Whether a request may go on: the server has no logins, or the caller is signed in."""
    return getattr(scope.get("app"), "auth", None) is None or signed_in(scope) is not None
