"""Guest routes: no owner authentication. Session routes take the session's own token."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from sse_starlette import EventSourceResponse

from portico.access.gate import AssistantFacts, LinkFacts
from portico.access.ratelimit import GuardFeedback, GuardLookups, GuardMessages, GuardSecrets, GuardStarts
from portico.chat import feedback as feedback_service
from portico.chat import messages as messages_service
from portico.chat import sessions as service
from portico.chat.cutoff import Cutoffs
from portico.chat.schemas import (
    AssistantBrief,
    FeedbackIn,
    FeedbackOut,
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
from portico.chat.store import GuestStore
from portico.config import Settings
from portico.deps import BearerToken, SettingsDep, VaultDep
from portico.errors import ClientDisconnected
from portico.handlers import error_response
from portico.schemas import Id
from portico.vocabulary import END_MESSAGES, EndReason, FeedbackReason, Rating, Role

router = APIRouter(prefix="/chat", tags=["guest chat"])
T = TypeVar("T")


async def get_store(request: Request) -> GuestStore:
    return request.app.state.store  # type: ignore[no-any-return]  # app.state is untyped


async def get_cutoffs(request: Request) -> Cutoffs:
    return request.app.state.cutoffs  # type: ignore[no-any-return]  # app.state is untyped


StoreDep = Annotated[GuestStore, Depends(get_store)]
CutoffsDep = Annotated[Cutoffs, Depends(get_cutoffs)]


def assistant_brief(facts: AssistantFacts) -> AssistantBrief:
    return AssistantBrief(public_id=facts.public_id, name=facts.name, description=facts.description)


def link_brief(facts: LinkFacts | None, *, in_session: bool) -> LinkBrief | None:
    if facts is None:
        return None
    return LinkBrief(
        name=facts.name, sessions_left=facts.sessions_left, uses_message=_uses(facts.sessions_left, in_session)
    )


def _uses(left: int | None, in_session: bool) -> str | None:
    if left is None:
        return None
    if not in_session:
        return "Your link has 1 session left." if left == 1 else f"Your link has {left:,} sessions left."
    if left == 0:
        return "This is the last session on your link."
    return f"Your link has {left:,} more session{'s' if left > 1 else ''} after this one."


async def _state(store: GuestStore, opened: service.OpenedSession) -> SessionState:
    session = opened.session
    assert opened.assistant is not None
    messages = await store.transcript(session.id)
    end_reason = EndReason(session.end_reason) if session.end_reason else None
    return SessionState(
        session_id=session.id,
        state="ended" if session.ended_at else "active",
        end_reason=end_reason,
        end_message=END_MESSAGES[end_reason] if end_reason else None,
        channel=session.channel,  # type: ignore[arg-type]  # validated by pydantic against Channel
        started_at=session.started_at,
        ended_at=session.ended_at,
        greeting=opened.greeting,
        starters=list(opened.starters),
        assistant=assistant_brief(opened.assistant),
        link=link_brief(opened.link, in_session=True),
        max_message_length=opened.settings["max_message_length"],
        messages=[
            MessageOut(
                id=m.id,
                role=Role(m.role),
                content=m.content,
                created_at=m.created_at,
                error_code=m.error_code,
                sources=m.sources or [],
                answered=m.answered,
                rating=Rating(m.rating) if m.rating else None,
                reason=FeedbackReason(m.rating_reason) if m.rating_reason else None,
                comment=m.rating_comment,
            )
            for m in messages
        ],
    )


@router.post("/lookup")
async def lookup(body: Lookup, store: StoreDep, _limits: GuardLookups) -> LookupOut:
    """What the chat page shows before a session starts; takes no use of a private link."""
    admission = await service.ask_gate(
        store,
        public_id=body.public_id,
        widget_id=body.widget_id,
        key=body.key,
        access_code=body.access_code,
        count_refusal=body.count,
    )
    assistant = admission.assistant
    link = link_brief(admission.link, in_session=False)
    assert assistant.settings is not None  # the gate admits only a published version
    return LookupOut(
        assistant=assistant_brief(assistant),
        link=link,
        greeting=assistant.greeting,
        starters=list(assistant.starters),
        max_message_length=assistant.settings["max_message_length"],
    )


@router.post("/sessions", status_code=201)
async def start_session(body: SessionStart, store: StoreDep, limits: GuardStarts) -> SessionStarted:
    await limits.assistant_start(public_id=body.public_id or body.widget_id, key=body.key)
    assert body.channel is not None  # set by SessionStart's validator
    opened, token = await service.start_session(
        store,
        public_id=body.public_id,
        widget_id=body.widget_id,
        key=body.key,
        access_code=body.access_code,
        channel=body.channel,
        origin=body.origin,
    )
    assert opened.assistant is not None
    return SessionStarted(
        session_id=opened.session.id,
        token=token,
        greeting=opened.greeting,
        starters=list(opened.starters),
        assistant=assistant_brief(opened.assistant),
        link=link_brief(opened.link, in_session=True),
        max_message_length=opened.settings["max_message_length"],
    )


@router.get("/sessions/{session_id}")
async def resume_session(session_id: Id, token: BearerToken, store: StoreDep, _limits: GuardLookups) -> SessionState:
    opened = await service.open_session(store, session_id=session_id, token=token)
    return await _state(store, opened)


@router.post("/sessions/{session_id}/end")
async def end_session(session_id: Id, token: BearerToken, store: StoreDep, _limits: GuardSecrets) -> SessionState:
    opened = await service.open_session(store, session_id=session_id, token=token)
    opened = await service.end_session(store, opened=opened, reason=EndReason.GUEST)
    return await _state(store, opened)


@router.post(
    "/sessions/{session_id}/messages",
    response_model=ReplyOut,
    responses={200: {"content": {"text/event-stream": {}}, "description": "The reply, as JSON or as events"}},
)
async def post_message(
    session_id: Id,
    body: MessageIn,
    token: BearerToken,
    store: StoreDep,
    cutoffs: CutoffsDep,
    vault: VaultDep,
    settings: SettingsDep,
    request: Request,
    _limits: GuardMessages,
    accept: Annotated[str, Header()] = "application/json",
) -> Response:
    """Send a guest message. With `Accept: text/event-stream` the reply streams as events
    `token` (`{text}`), then `done` (`{message_id, tokens_in, tokens_out}`) or `error` (`{code, message}`)."""
    # Committed before the engine is called (the store's own transaction).
    pending = await messages_service.accept_guest_message(
        store, session_id=session_id, token=token, content=body.content, vault=vault
    )
    events = messages_service.stream_reply(pending, store=store, cutoffs=cutoffs)
    if "text/event-stream" in accept:
        return event_stream(({"event": event.kind, "data": json.dumps(event.data)} async for event in events), settings)
    parts: list[str] = []
    async for event in until_disconnected(request, events):
        if event.kind == "token":
            parts.append(event.data["text"])
        elif event.kind == "error":
            return error_response(reply_error_status(event.data), event.data["code"], event.data["message"])
        else:
            reply = ReplyOut(content="".join(parts), **event.data)
            return JSONResponse(reply.model_dump())
    raise AssertionError("a reply always ends with done or error")


@router.post("/sessions/{session_id}/messages/{message_id}/feedback")
async def rate_reply(
    session_id: Id, message_id: Id, body: FeedbackIn, token: BearerToken, store: StoreDep, _limits: GuardFeedback
) -> FeedbackOut:
    """Rate a finished reply of this session up or down, optionally with a reason and a comment;
    a second rating replaces the first. A session that has ended may still be rated."""
    comment = await feedback_service.rate_reply(
        store,
        session_id=session_id,
        token=token,
        message_id=message_id,
        rating=body.rating,
        reason=body.reason,
        comment=body.comment,
    )
    return FeedbackOut(message_id=message_id, rating=body.rating, reason=body.reason, comment=comment)


def reply_error_status(error: dict[str, Any]) -> int:
    return 502 if str(error["code"]).startswith("engine_") else 403


def event_stream(events: AsyncIterator[dict[str, str]], settings: Settings) -> EventSourceResponse:
    """A reply as server-sent events; a guest who stops reading is dropped after the send timeout,
    which stops the engine (the reply is saved as `disconnected`)."""
    return EventSourceResponse(
        events,
        ping=15,
        send_timeout=settings.send_timeout,
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def until_disconnected(request: Request, events: AsyncIterator[T]) -> AsyncIterator[T]:
    """`events` while the client is still there. Without this a JSON reply whose client went away
    would run the engine to its end; with it the engine is stopped and the reply saved as
    `disconnected` (messages.stream_reply)."""
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        iterator = aiter(events)
        while True:
            step = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({step, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                step.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await step
                raise ClientDisconnected()
            try:
                yield step.result()
            except StopAsyncIteration:
                return
    finally:
        gone.cancel()


async def _disconnected(request: Request) -> None:
    # The body has been read: what the server sends next is the client's going away.
    while (await request.receive())["type"] != "http.disconnect":
        pass
