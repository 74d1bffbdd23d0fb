"""The chat page guests open: `/c/{public_id}` (public link) and `/c#k=KEY` (private link).

Opening the page takes nothing: the session starts on the guest's first message.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from portico.access import gate
from portico.db import SessionDep
from portico.web.pages import templates

router = APIRouter(include_in_schema=False)


@router.get("/c", response_class=HTMLResponse)
async def private_chat(request: Request) -> HTMLResponse:
    # The key is in the fragment, which the server never sees; the page's script looks it up.
    return templates.TemplateResponse(request, "chat.html", {"title": "Chat", "embed": False})


@router.get("/c/{public_id}", response_class=HTMLResponse)
async def public_chat(public_id: str, request: Request, db: SessionDep) -> HTMLResponse:
    context: dict[str, object] = {"public_id": public_id, "embed": False}
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
        context.update(title="Unavailable", name="Unavailable", refusal=refusal.message)
    return templates.TemplateResponse(request, "chat.html", context, status_code=status)
