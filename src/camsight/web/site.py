"""Serving the browser UI: one HTML shell, ES modules and a stylesheet, all from this package.

The UI is plain HTML, CSS and JavaScript modules so it runs without a build step
or anything fetched from the internet (the box may have no internet at all). It
talks only to ``/api/v1``; the session cookie is HTTP-only, so scripts never see it.

>>> app = FastAPI()  # doctest: +SKIP
>>> mount_site(app)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.types import Scope

STATIC = Path(__file__).parent / "static"
#: Scripts, styles and media only from this server; nothing inline, no framing (clickjacking).
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


@cache
def asset_version() -> str:
    """A hash of the static files, appended to their URLs so an upgrade is never served from cache."""
    digest = hashlib.sha256()
    for path in sorted(STATIC.rglob("*")):
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


class _Static(StaticFiles):
    """Static files with the UI's security headers; versioned URLs may be cached for a long time."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers.update(SECURITY_HEADERS)
        query = scope.get("query_string", b"")
        response.headers["Cache-Control"] = (
            "public, max-age=31536000, immutable" if query.startswith(b"v=") else "no-cache"
        )
        return response


def index_html() -> str:
    """The HTML shell, with asset URLs carrying the current version."""
    text = (STATIC / "index.html").read_text(encoding="utf-8")
    return text.replace("{{v}}", asset_version())


def mount_site(app: FastAPI) -> None:
    """Serve the UI at ``/`` and its assets under ``/static``."""

    @app.get("/", include_in_schema=False)
    def home() -> HTMLResponse:
        return HTMLResponse(index_html(), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response((STATIC / "icon.svg").read_bytes(), media_type="image/svg+xml")

    app.mount("/static", _Static(directory=STATIC), name="static")
