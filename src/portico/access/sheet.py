"""The printable sheet of links for the selected users (a bulk action of the Share page,
access/views.py), which answers `no-store`: a QR code of a private link is its key."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from portico.access import links as links_service
from portico.access import qr
from portico.db import SessionDep
from portico.models import Assistant
from portico.web.forms import render


@dataclass(frozen=True)
class Card:
    id: int
    name: str
    url: str
    qr: Markup


async def print_sheet(request: Request, db: SessionDep, assistant: Assistant, ids: list[int]) -> HTMLResponse:
    """The selected users' names, links and QR codes, several to an A4 page (static/print.css)."""
    vault, base_url = request.app.state.vault, request.app.state.settings.base_url
    cards = []
    for link in await links_service.live_links(db, assistant=assistant, ids=ids):
        url = links_service.link_url(link, vault=vault, base_url=base_url)
        cards.append(Card(id=link.id, name=link.name, url=url, qr=qr.inline(url, title=f"QR code for {link.name}")))
    response = render(
        request,
        "print_sheet.html",
        {"title": f"Links to print · {assistant.name}", "assistant": assistant, "cards": cards},
    )
    response.headers["Cache-Control"] = "no-store"
    return response
