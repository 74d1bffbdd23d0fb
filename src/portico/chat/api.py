"""Guest routes: no owner authentication. Session routes take the session's own token."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from portico.access import gate
from portico.chat import messages as messages_service
from portico.chat import sessions as service
from portico.chat.schemas import (
    AssistantBrief,
    LinkBrief,
    Lookup,
    LookupOut,
    MessageIn,
    MessageOut,
    ReplyOut,
    SessionStart,
    SessionStarted,
    SessionState,
)
from portico.db import SessionDep
from portico.deps import BearerToken, VaultDep
from portico.handlers import error_response

router = APIRouter(prefix="/chat", tags=["guest chat"])


def assistant_brief(facts: gate.AssistantFacts) -> AssistantBrief:
    return AssistantBrief(public_id=facts.public_id, name=facts.name, description=facts.description)


def link_brief(facts: gate.LinkFacts | None) -> LinkBrief | None:
    return LinkBrief(name=facts.name, sessions_left=facts.sessions_left) if facts else None


async def _state(db: SessionDep, opened: service.OpenedSession) -> SessionState:
    session = opened.session
    assert opened.assistant is not None
    messages = await messages_service.transcript(db, session_id=session.id)
    return SessionState(
        session_id=session.id,
        state="ended" if session.ended_at else "active",
        end_reason=session.end_reason,
        channel=session.channel,
        started_at=session.started_at,
        ended_at=session.ended_at,
        greeting=opened.greeting,
        assistant=assistant_brief(opened.assistant),
        link=link_brief(opened.link),
        messages=[
            MessageOut(id=m.id, role=m.role, content=m.content, created_at=m.created_at, error_code=m.error_code)  # type: ignore[arg-type]
            for m in messages
        ],
    )


@router.post("/lookup")
async def lookup(body: Lookup, db: SessionDep) -> LookupOut:
    """What the chat page shows before a session starts; takes no use of a private link."""
    admission = await gate.check(db, public_id=body.public_id, key=body.key)
    assistant = admission.assistant
    return LookupOut(assistant=assistant_brief(assistant), link=link_brief(admission.link), greeting=assistant.greeting)


@router.post("/sessions", status_code=201)
async def start_session(body: SessionStart, request: Request) -> SessionStarted:
    # Not the request's transaction: the start commits on its own (see service.start_session).
    opened, token = await service.start_session(
        request.app.state.engine, public_id=body.public_id, key=body.key, channel=body.channel, origin=body.origin
    )
    assert opened.assistant is not None
    return SessionStarted(
        session_id=opened.session.id,
        token=token,
        greeting=opened.greeting,
        assistant=assistant_brief(opened.assistant),
        link=link_brief(opened.link),
    )


@router.get("/sessions/{session_id}")
async def resume_session(session_id: int, token: BearerToken, db: SessionDep) -> SessionState:
    opened = await service.open_session(db, session_id=session_id, token=token)
    return await _state(db, opened)


@router.post("/sessions/{session_id}/end")
async def end_session(session_id: int, token: BearerToken, db: SessionDep) -> SessionState:
    opened = await service.open_session(db, session_id=session_id, token=token)
    await service.end_session(db, session=opened.session, reason="guest")
    return await _state(db, opened)


@router.post(
    "/sessions/{session_id}/messages",
    response_model=ReplyOut,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The reply, as JSON or as events"}},
)
async def post_message(
    session_id: int,
    body: MessageIn,
    token: BearerToken,
    request: Request,
    vault: VaultDep,
    accept: Annotated[str, Header()] = "application/json",
):  # type: ignore[no-untyped-def]
    """Send a guest message. With `Accept: text/event-stream` the reply streams as events
    `token` (`{text}`), then `done` (`{message_id, tokens_in, tokens_out}`) or `error` (`{code, message}`)."""
    engine = request.app.state.engine
    # Not the request's transaction: the message must be committed before the engine is called.
    pending = await messages_service.accept_guest_message(
        engine, session_id=session_id, token=token, content=body.content, vault=vault
    )
    events = messages_service.stream_reply(pending, engine=engine, cutoffs=request.app.state.cutoffs)
    if "text/event-stream" in accept:
        return EventSourceResponse(
            ({"event": event.kind, "data": json.dumps(event.data)} async for event in events),
            ping=15,
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
    parts: list[str] = []
    async for event in events:
        if event.kind == "token":
            parts.append(event.data["text"])
        elif event.kind == "error":
            status = 502 if event.data["code"].startswith("engine_") else 403
            return error_response(status, event.data["code"], event.data["message"])
        else:
            reply = ReplyOut(content="".join(parts), **event.data)
            return JSONResponse(reply.model_dump())
    raise AssertionError("a reply always ends with done or error")
