"""The chat page guests open: `/c/{public_id}` (public link) and `/c#k=KEY` (private link).

Opening the page takes nothing: the session starts on the guest's first message.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select

from portico.access import gate
from portico.db import SessionDep
from portico.models import Assistant
from portico.web.pages import STRICT_CSP, templates
from portico.widget.domains import frame_ancestors

router = APIRouter(include_in_schema=False)


@router.get("/c", response_class=HTMLResponse)
async def private_chat(request: Request) -> HTMLResponse:
    # The key is in the fragment, which the server never sees; the page's script looks it up.
    return templates.TemplateResponse(request, "chat.html", {"title": "Chat", "embed": False})


@router.get("/c/{public_id}", response_class=HTMLResponse)
async def public_chat(public_id: str, request: Request, db: SessionDep, embed: bool = False) -> HTMLResponse:
    context: dict[str, object] = {"public_id": public_id, "embed": embed}
    status = 200
    try:
        admission = await gate.check(db, public_id=public_id, key=None)
        context.update(
            title=admission.assistant.name, name=admission.assistant.name, description=admission.assistant.description
        )
    except gate.KeyRequired:
        # A private assistant's page may still be opened with a key in the fragment.
        facts = await gate.load_assistant(db, public_id=public_id)
        assert facts is not None
        context.update(title=facts.name, name=facts.name, description=facts.description)
    except gate.GateRefusal as refusal:
        status = refusal.status
        # Name the assistant when it exists (offline, not published); say nothing of one that does not.
        facts = None if isinstance(refusal, gate.NoSuchAssistant) else await gate.load_assistant(db, public_id=public_id)
        name = facts.name if facts else "Unavailable"
        context.update(title=name, name=name, description=facts.description if facts else "", refusal=refusal.message)
    response = templates.TemplateResponse(request, "chat.html", context, status_code=status)
    if embed:
        # The widget's frame: framable only by the assistant's allowed domains (any site when
        # the list is empty). The browser enforces this; the direct link is not affected.
        allowed = await db.scalar(select(Assistant.allowed_domains).where(Assistant.public_id == public_id))
        policy = STRICT_CSP.replace("frame-ancestors 'none'", f"frame-ancestors {frame_ancestors(allowed or [])}")
        response.headers["Content-Security-Policy"] = policy
    return response
