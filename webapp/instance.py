"""Which server process a page talks to, so that a tab whose server went away is told to reload.

Behind a proxy with several replicas (``deploy/``), a tab stays on the replica that signed it in; its session
(image, clicks) lives in that process (its sign-in, in the shared store: webapp.shared). When the replica dies the
proxy sends the tab to another one, which does not know the session. The page asks ``/liverclick/instance`` every few
seconds (INSTANCE_CHECK); when the answer names another process than the first answer did, it shows a banner asking
to reload the page (reviews already saved are in the shared database). The route answers without a login and says
nothing else.
"""

from __future__ import annotations

import json
import uuid

from starlette.responses import JSONResponse

INSTANCE = uuid.uuid4().hex[:16]  # this server process
ROUTE = "/liverclick/instance"
MOVED = (
    "This page's server has stopped and another one answers now: reload the page to go on "
    "(your saved reviews are kept)."
)
INSTANCE_CHECK = f"""
<script>
(() => {{
  let first = null;
  const moved = () => {{
    if (document.getElementById("liverclick-moved")) return;
    const note = document.createElement("div");
    note.id = "liverclick-moved";
    note.setAttribute("role", "alert");
    note.textContent = {json.dumps(MOVED)};
    note.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:10000;padding:12px;"
      + "background:#b91c1c;color:#fff;font:600 15px sans-serif;text-align:center";
    document.body.prepend(note);
  }};
  const check = async () => {{
    try {{
      const answer = await fetch("liverclick/instance", {{credentials: "same-origin", cache: "no-store"}});
      if (!answer.ok) return;
      const id = (await answer.json()).instance;
      if (first === null) first = id;
      else if (id !== first) moved();
    }} catch (error) {{}}
  }};
  check();
  setInterval(check, 3000);
}})();
</script>
"""


class InstanceRoute:
    """ASGI middleware answering ``GET /liverclick/instance`` with this process's id."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") == ROUTE:
            response = JSONResponse({"instance": INSTANCE}, headers={"Cache-Control": "no-store"})
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
