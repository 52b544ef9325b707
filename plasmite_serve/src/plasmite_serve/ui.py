"""The web UI's page: one static HTML file, served with a strict Content-Security-Policy.

The page holds no pool data and no secret (it reads the token from its own
field or URL), so its routes are public; its data comes from the ``/v0/ui``
routes, which are ordinary read routes.
"""

from __future__ import annotations

import hashlib
from base64 import b64encode
from importlib import resources

from .wire import PROTOCOL_VERSION


def load_ui() -> tuple[bytes, bytes]:
    """The page and its CSP, which allows only the page's own inline scripts (by hash)."""
    html = resources.files("plasmite_serve").joinpath("static/index.html").read_bytes()
    hashes = []
    start = 0
    while True:
        open_at = html.find(b"<script>", start)
        if open_at < 0:
            break
        close_at = html.find(b"</script>", open_at)
        body = html[open_at + len(b"<script>") : close_at]
        hashes.append(b"'sha256-" + b64encode(hashlib.sha256(body).digest()) + b"'")
        start = close_at
    csp = (
        b"default-src 'none'; script-src " + b" ".join(hashes)
        + b"; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; "
        b"form-action 'none'; frame-ancestors 'none'"
    )
    return html, csp


async def page(app, req) -> None:
    html, csp = app.ui
    await req.send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/html; charset=utf-8"),
                (b"content-length", str(len(html)).encode()),
                (b"cache-control", b"no-cache"),
                (b"content-security-policy", csp),
                (b"x-content-type-options", b"nosniff"),
                (b"referrer-policy", b"no-referrer"),
                (b"x-frame-options", b"DENY"),
                (b"plasmite-version", PROTOCOL_VERSION),
            ],
        }
    )
    await req.send({"type": "http.response.body", "body": html})


async def to_ui(app, req) -> None:
    """``/`` redirects to the page (below the mount point, if any)."""
    root = (req.scope.get("root_path") or "").rstrip("/")
    await req.send(
        {
            "type": "http.response.start",
            "status": 307,
            "headers": [(b"location", (root + "/ui").encode()), (b"content-length", b"0"),
                        (b"plasmite-version", PROTOCOL_VERSION)],
        }
    )
    await req.send({"type": "http.response.body", "body": b""})
