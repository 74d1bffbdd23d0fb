"""Guest routes: no owner authentication. Session routes take the session's own token."""

from __future__ import annotations

from fastapi import APIRouter

from portico.chat import sessions as service
from portico.chat.schemas import AssistantBrief, LinkBrief, SessionStart, SessionStarted, SessionState
from portico.db import SessionDep
from portico.deps import BearerToken

router = APIRouter(prefix="/chat", tags=["guest chat"])


def _briefs(opened: service.OpenedSession) -> tuple[AssistantBrief, LinkBrief | None]:
    assert opened.assistant is not None
    assistant = AssistantBrief(
        public_id=opened.assistant.public_id, name=opened.assistant.name, description=opened.assistant.description
    )
    link = LinkBrief(name=opened.link.name, sessions_left=opened.link.sessions_left) if opened.link else None
    return assistant, link


def _state(opened: service.OpenedSession) -> SessionState:
    session = opened.session
    assistant, link = _briefs(opened)
    return SessionState(
        session_id=session.id,
        state="ended" if session.ended_at else "active",
        end_reason=session.end_reason,
        channel=session.channel,
        started_at=session.started_at,
        ended_at=session.ended_at,
        greeting=opened.greeting,
        assistant=assistant,
        link=link,
    )


@router.post("/sessions", status_code=201)
async def start_session(body: SessionStart, db: SessionDep) -> SessionStarted:
    opened, token = await service.start_session(db, public_id=body.public_id, key=body.key, channel=body.channel)
    assistant, link = _briefs(opened)
    return SessionStarted(
        session_id=opened.session.id, token=token, greeting=opened.greeting, assistant=assistant, link=link
    )


@router.get("/sessions/{session_id}")
async def resume_session(session_id: int, token: BearerToken, db: SessionDep) -> SessionState:
    opened = await service.open_session(db, session_id=session_id, token=token)
    return _state(opened)


@router.post("/sessions/{session_id}/end")
async def end_session(session_id: int, token: BearerToken, db: SessionDep) -> SessionState:
    opened = await service.open_session(db, session_id=session_id, token=token)
    await service.end_session(db, session=opened.session, reason="guest")
    return _state(opened)
