"""What every HTML page shares: templates, versioned static URLs and security headers."""

from __future__ import annotations

import hashlib
import math
from datetime import datetime
from functools import cache
from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, FileSystemLoader, PrefixLoader
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from portico.identity import roles
from portico.kit.i18n import LANGUAGES, gettext, ngettext
from portico.vocabulary import Channel, ShareMode, Status, reply_error_label

HERE = Path(__file__).parent.parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=HERE / "templates")
# A provider's form fragment lives in its own folder: "engines/openai/form.html".
templates.env.loader = ChoiceLoader(
    [templates.env.loader, PrefixLoader({"engines": FileSystemLoader(HERE / "engines")})]  # type: ignore[list-item]
)

# Nothing from any other origin, no inline script or style: a page can only run our own files.
STRICT_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


@cache
def _digest(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    # The content's digest in the URL lets browsers keep the file for a year and still see changes.
    return f"/static/{name}?v={_digest(name)}"


def when(moment: datetime | None) -> str:
    """A timestamp for people: UTC, to the minute."""
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else ""


def when_seconds(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def iso_when(value: str | None) -> str:
    return when(datetime.fromisoformat(value)) if value else ""


def duration(seconds: float | None) -> str:
    """3 s, 4 min 05 s, 2 h 03 min: short and exact enough to read in a table."""
    if seconds is None:
        return ""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def time_left(moment: datetime, now: datetime) -> str:
    """How long until `moment`, in the largest whole unit that is not zero: "45 minutes",
    "3 hours", "2 days" (rounded up, so an end 20 hours away is never "0 days" nor "1 day")."""
    seconds = max((moment - now).total_seconds(), 0)
    for unit, size in (("day", 86400), ("hour", 3600)):
        if seconds >= size:
            count = math.ceil(seconds / size)
            return f"{count} {unit}{'s' if count != 1 else ''}"
    count = max(math.ceil(seconds / 60), 1)
    return f"{count} minute{'s' if count != 1 else ''}"


# The languages guests can be answered in, each named in itself (the Behavior page's choice).
GUEST_LANGUAGES = sorted(
    (code, (language.locale.get_display_name(language.locale) or code).capitalize())
    for code, language in LANGUAGES.items()
)

# `_` and `ngettext`: a sentence in the request's language (kit/i18n.py); English on owner pages.
templates.env.globals.update(
    static=static_url,
    Status=Status,
    ShareMode=ShareMode,
    Channel=Channel,
    reply_error_label=reply_error_label,
    _=gettext,
    ngettext=ngettext,
    guest_languages=GUEST_LANGUAGES,
)
# What the signed-in member's role may do, to grey out (and explain) what the services would refuse.
templates.env.globals.update(can=roles.allows, needed=roles.needed, Action=roles.Action)
templates.env.filters.update(when=when, when_seconds=when_seconds, iso_when=iso_when, duration=duration)
templates.env.globals.update(time_left=time_left)


class CachedStatic(StaticFiles):
    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        if b"v=" in scope.get("query_string", b""):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "public, max-age=300"
        return response


# Dashboard pages and API answers carry keys, tokens and transcripts: no browser or proxy may keep
# them, so Back after signing out (or the next person at a shared computer) shows nothing. A
# response that sets its own Cache-Control (a download, the widget loader) keeps it.
NO_STORE_PREFIXES = ("/dashboard", "/api/", "/v1/")


class SecurityHeaders:
    """Headers every response carries; HTML pages also get the strict Content-Security-Policy, and
    the dashboard and the APIs `Cache-Control: no-store`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        private = scope["path"].startswith(NO_STORE_PREFIXES)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                extra = [(b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff")]
                if private:
                    extra.append((b"cache-control", b"no-store"))
                content_type = dict(headers).get(b"content-type", b"")
                if content_type.startswith(b"text/html") and b"content-security-policy" not in present:
                    extra += [(b"content-security-policy", STRICT_CSP.encode()), (b"x-frame-options", b"DENY")]
                headers.extend(h for h in extra if h[0] not in present)
            await send(message)

        await self.app(scope, receive, with_headers)


class CompressPublicAssets:
    """Gzip for what guests download (the widget loader, the chat page and its files), never for
    the dashboard or the API, whose pages hold secrets beside text a visitor controls (BREACH)."""

    PREFIXES = ("/static/", "/widget.js", "/c/")

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=500, compresslevel=6)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and (path.startswith(self.PREFIXES) or path == "/c"):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)
