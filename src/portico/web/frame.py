"""The assistant's frame in the dashboard: its name, its tabs (Behavior, Share, Metrics, Logs...) and
whether its draft has changes not yet published. Every view of one assistant renders through it,
so none imports another domain's views for it."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from portico.assistants import service
from portico.db import SessionDep
from portico.models import Assistant
from portico.web.forms import render


async def _unpublished(db: SessionDep, assistant: Assistant) -> bool:
    digests = await service.published_digests(db, [assistant])
    return digests.get(assistant.id) != assistant.draft_digest


async def assistant_page(
    request: Request, db: SessionDep, assistant: Assistant, tab: str, title: str, status: int = 200, **context: Any
) -> HTMLResponse:
    base = {
        "title": f"{title} · {assistant.name}",
        "section": "assistants",
        "assistant": assistant,
        "tab": tab,
        "tab_title": title,
        "unpublished": await _unpublished(db, assistant),
    }
    page_url = f"/dashboard/assistants/{assistant.id}/{tab}"
    return render(request, f"{tab}.html", {**base, **context}, status=status, page_url=page_url)
