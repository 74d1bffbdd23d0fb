"""Serving the widget's loader: `/widget.js`."""

from __future__ import annotations

import hashlib
import json
from functools import cache

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from portico.access.ratelimit import GuardLookups
from portico.chat import sessions
from portico.chat.http import StoreDep
from portico.kit.i18n import LANGUAGES, N_
from portico.web.pages import STATIC_DIR, static_url
from portico.widget.domains import allows

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


@router.post("/widget/check")
async def widget_check(request: Request, store: StoreDep, _limits: GuardLookups) -> JSONResponse:
    """The loader asks before it shows its bubble: a snippet that reaches no assistant (its widget
    id rotated, the assistant deleted) or a website not among the allowed ones shows nothing, and
    the answer's message is the one console line for the site's developer (English, like any
    developer's console). A form body (a "simple" cross-origin request, so no preflight), which keeps
    `data-key` out of every URL; the browser sets Origin itself."""
    form = await request.form()
    widget_id = str(form.get("widget_id", ""))[:200]
    key = str(form.get("key", ""))[:200] or None
    origin = request.headers.get("origin")
    assistant = await sessions.widget_assistant(store, widget_id=widget_id, key=key)
    answer: dict[str, object] = {"show": True}
    if assistant is None:
        answer = {
            "show": False,
            "message": f"Portico widget: no assistant has the widget id '{widget_id}' (it may have been rotated), "
            "so no chat bubble is shown. Copy the current embed code from the assistant's Share page.",
        }
    elif not allows(list(assistant.allowed_domains), origin):
        answer = {
            "show": False,
            "message": f"Portico widget: this website ({origin or 'no origin'}) is not among the assistant's allowed "
            "websites, so no chat bubble is shown. Add it on the assistant's Share page, under Embed on a website.",
        }
    headers = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}
    return JSONResponse(answer, headers=headers)
