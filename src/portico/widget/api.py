"""Serving the widget's loader: `/widget.js`."""

from __future__ import annotations

import hashlib
import json
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import Response

from portico.kit.i18n import LANGUAGES, N_
from portico.web.pages import STATIC_DIR, static_url

router = APIRouter(include_in_schema=False)


# The loader's own words: its button's label and its frame's title. Put into the loader in every
# shipped language (about 100 bytes gzipped each), so it labels its button before any request, in
# its `data-lang` or the browser's language; the frame it opens chooses its language itself.
LOADER_WORDS = {"title": N_("Chat"), "open": N_("Open chat: {title}"), "close": N_("Close chat")}


def _words() -> bytes:
    said = {
        code: {name: language.translations.gettext(text) for name, text in LOADER_WORDS.items()}
        for code, language in LANGUAGES.items()
    }
    return json.dumps(said, separators=(",", ":"), sort_keys=True).encode()


@cache
def loader() -> tuple[bytes, str]:
    """The loader with the chat frame's version and its words in it, and its ETag."""
    version = hashlib.sha256(
        "".join(static_url(name) for name in ("chat.css", "chat.js")).encode()
        + (STATIC_DIR.parent / "templates" / "chat.html").read_bytes()
    ).hexdigest()[:12]
    body = (STATIC_DIR / "widget.js").read_bytes().replace(b"__PORTICO_VERSION__", version.encode())
    body = body.replace(b"{/*__PORTICO_WORDS__*/}", _words())
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
