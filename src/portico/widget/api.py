"""Serving the widget's loader: `/widget.js`."""

from __future__ import annotations

import hashlib
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response

from portico.web.pages import STATIC_DIR, static_url

router = APIRouter(include_in_schema=False)


@cache
def loader() -> tuple[bytes, str]:
    """The loader with the chat frame's version in it, and its ETag."""
    version = hashlib.sha256(
        "".join(static_url(name) for name in ("chat.css", "chat.js")).encode()
        + (STATIC_DIR.parent / "templates" / "chat.html").read_bytes()
    ).hexdigest()[:12]
    body = (STATIC_DIR / "widget.js").read_bytes().replace(b"__PORTICO_VERSION__", version.encode())
    return body, '"' + hashlib.sha256(body).hexdigest()[:20] + '"'


@router.get("/widget.js")
async def widget_js(request: Request) -> Response:
    body, etag = loader()
    # The snippet's URL never changes, so the loader is cached for an hour and revalidated by
    # ETag; the frame it opens has the version in its URL and its files are cached for a year.
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="text/javascript; charset=utf-8", headers=headers)
