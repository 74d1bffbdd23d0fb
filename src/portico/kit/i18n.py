"""The guest's language: the message catalogues, the language of the request being answered, and
numbers formatted for it. See docs/design.md, "The guest's language".

English is the source language: every sentence is written in English in the code (its msgid), and
`locales/<lang>/LC_MESSAGES/messages.po` holds its translation. The `.po` files are read once, at
import, with Babel's reader and compiled in memory: there is no build step and no compiled `.mo`
file to keep in step with its `.po` (reading the four catalogues takes a few milliseconds).

The language of a request lives in a context variable: set once per request (the `GuestLanguage`
middleware for guest routes, the chat page for its fuller choice), read by `gettext` wherever a
guest's sentence is made. Owner pages and the owner API never set it, so they stay in English.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from gettext import NullTranslations
from pathlib import Path

from babel import Locale
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from babel.support import Translations
from starlette.types import ASGIApp, Receive, Scope, Send

LOCALES_DIR = Path(__file__).parent.parent / "locales"
SOURCE = "en"
# The guest routes: the chat page and its frame, the guest chat API, the OpenAI-compatible API.
GUEST_PREFIXES = ("/c/", "/api/v1/chat/", "/v1/")
# Browsers send a few dozen characters; what is cached per header stays small whatever is sent.
MAX_HEADER = 200


@dataclass(frozen=True)
class Language:
    code: str
    locale: Locale
    translations: NullTranslations

    @property
    def dir(self) -> str:
        """`ltr` or `rtl`, for `<html dir>` (CLDR's, so a right-to-left catalogue needs no code)."""
        return "rtl" if self.locale.text_direction == "rtl" else "ltr"


def _load() -> dict[str, Language]:
    languages = {SOURCE: Language(SOURCE, Locale.parse(SOURCE), NullTranslations())}
    for po in sorted(LOCALES_DIR.glob("*/LC_MESSAGES/messages.po")):
        code = po.parent.parent.name
        with po.open("rb") as source:
            catalog = read_po(source, locale=code)
        compiled = io.BytesIO()
        write_mo(compiled, catalog)
        compiled.seek(0)
        languages[code.lower().replace("_", "-")] = Language(code, Locale.parse(code), Translations(compiled))
    return languages


LANGUAGES: dict[str, Language] = _load()
ENGLISH = LANGUAGES[SOURCE]

_current: ContextVar[Language] = ContextVar("portico_language", default=ENGLISH)


def N_(message: str) -> str:
    """Marks a sentence for the catalogue where it is defined (a constant); it is translated with
    `gettext` where a guest is given it."""
    return message


def current() -> Language:
    return _current.get()


def use(language: Language) -> None:
    """The language of the rest of this request (a context variable: each request has its own)."""
    _current.set(language)


def gettext(message: str) -> str:
    return _current.get().translations.gettext(message)


def ngettext(singular: str, plural: str, count: int) -> str:
    return _current.get().translations.ngettext(singular, plural, count)


def format_number(number: int | float) -> str:
    """1,234 in English, 1.234 in German, 1 234 in French: as the guest reads numbers."""
    return format_decimal(number, locale=_current.get().locale)


@lru_cache(maxsize=1024)
def find(tag: str | None) -> Language | None:
    """The shipped language a tag names (`de`, `de-AT`, `DE_at`), or None. Cached: after the first
    request with a tag, a dict lookup."""
    if not tag:
        return None
    tag = tag.strip().lower().replace("_", "-")
    return LANGUAGES.get(tag) or LANGUAGES.get(tag.split("-", 1)[0])


@lru_cache(maxsize=1024)
def from_accept_language(header: str) -> Language | None:
    """The best shipped language an `Accept-Language` header asks for, or None. Cached: browsers
    send a handful of distinct headers, so most requests pay a dict lookup."""
    wanted: list[tuple[float, int, str]] = []
    for position, part in enumerate(header.split(",")):
        tag, _, params = part.partition(";")
        quality = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                quality = float(params[2:])
            except ValueError:
                continue
        if quality > 0 and tag.strip() and tag.strip() != "*":
            wanted.append((-quality, position, tag))
    for _, _, tag in sorted(wanted):
        language = find(tag)
        if language is not None:
            return language
    return None


def choose(*tags: str | None, accept_language: str = "") -> Language:
    """The first of `tags` that names a shipped language, else the best of `accept_language`, else English."""
    for tag in tags:
        language = find(tag)
        if language is not None:
            return language
    return from_accept_language(accept_language[:MAX_HEADER]) or ENGLISH


class GuestLanguage:
    """Guest routes answer in the language of `Accept-Language` (the chat page sends its own
    language there). Every other route stays in English. The language is reset when the request
    ends, whoever set it during the request (the chat page sets its own)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path.startswith(GUEST_PREFIXES) or path == "/c"):
            await self.app(scope, receive, send)
            return
        language = None
        for name, value in scope["headers"]:
            if name == b"accept-language":
                language = from_accept_language(value[:MAX_HEADER].decode("latin-1"))
                break
        token = _current.set(language or ENGLISH)
        try:
            await self.app(scope, receive, send)
        finally:
            _current.reset(token)
