"""QR codes of links, as SVG (segno). Owner-only: a private link's QR code holds its key, so
every answer that carries one is `no-store`, and routes take the link's id, never its key."""

from __future__ import annotations

import io
from typing import Any

import segno
from fastapi.responses import Response
from markupsafe import Markup

SVG_TYPE = "image/svg+xml"
# What a QR route answers, for the OpenAPI document (the links' routes and the public link's).
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The link's QR code (SVG). Not cached: it holds the key.", "content": {SVG_TYPE: {}}}
}
# Medium error correction survives a crease or a smudge on a printed sheet; scale 4 keeps a
# module at 4 px, which phones read from the screen as well.
ERROR_LEVEL = "m"


def svg(url: str, *, title: str = "") -> str:
    """A standalone SVG document (for download), black on white with the quiet zone."""
    buffer = io.BytesIO()
    segno.make(url, error=ERROR_LEVEL).save(
        buffer, kind="svg", xmldecl=False, nl=False, scale=4, border=4, light="#fff", title=title or None
    )
    return buffer.getvalue().decode()


def inline(url: str, *, title: str = "") -> Markup:
    """The same SVG for a page; segno writes only its own markup and escapes the title."""
    return Markup(svg(url, title=title))


def response(url: str, *, filename: str | None = None) -> Response:
    headers = {"Cache-Control": "no-store"}
    if filename:
        headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return Response(svg(url), media_type=SVG_TYPE, headers=headers)
