"""QR codes on the Share page and the printable sheet of links for the selected users.

Every route here takes link ids, never keys (a key in a URL would reach the server's logs), and
answers `no-store` (a QR code of a private link is its key)."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from portico.access import links as links_service
from portico.access import qr
from portico.assistants.deps import DashboardAssistant
from portico.db import SessionDep
from portico.models import Assistant
from portico.schemas import Id
from portico.web.forms import check_csrf, render

router = APIRouter(
    prefix="/dashboard/assistants/{assistant_id}", include_in_schema=False, dependencies=[Depends(check_csrf)]
)


@dataclass(frozen=True)
class Card:
    name: str
    url: str
    qr: Markup


@router.get("/public-link/qr.svg")
async def public_qr(request: Request, assistant: DashboardAssistant, download: bool = False) -> Response:
    url = links_service.public_url(assistant, base_url=request.app.state.settings.base_url)
    return qr.response(url, filename=f"portico-{assistant.public_id}-qr.svg" if download else None)


@router.get("/users/{link_id}/qr.svg")
async def link_qr(
    request: Request, db: SessionDep, assistant: DashboardAssistant, link_id: Id, download: bool = False
) -> Response:
    link = await links_service.live_link(db, assistant=assistant, link_id=link_id)
    url = links_service.link_url(link, vault=request.app.state.vault, base_url=request.app.state.settings.base_url)
    return qr.response(url, filename=f"portico-link-{link.id}-qr.svg" if download else None)


async def print_sheet(request: Request, db: SessionDep, assistant: Assistant, ids: list[int]) -> HTMLResponse:
    """The selected users' names, links and QR codes, several to an A4 page (static/print.css)."""
    vault, base_url = request.app.state.vault, request.app.state.settings.base_url
    cards = []
    for link in await links_service.live_links(db, assistant=assistant, ids=ids):
        url = links_service.link_url(link, vault=vault, base_url=base_url)
        cards.append(Card(name=link.name, url=url, qr=qr.inline(url, title=f"QR code for {link.name}")))
    response = render(
        request,
        "print_sheet.html",
        {"title": f"Links to print · {assistant.name}", "assistant": assistant, "cards": cards},
    )
    response.headers["Cache-Control"] = "no-store"
    return response
