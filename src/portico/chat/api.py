"""Guest routes: no owner authentication. Session routes take the session's own token."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response

from portico.access.ratelimit import (
    GuardCodeLookups,
    GuardCodeStarts,
    GuardFeedback,
    GuardLookups,
    GuardMessages,
    GuardSecrets,
)
from portico.chat import feedback as feedback_service
from portico.chat import messages as messages_service
from portico.chat import sessions as service
from portico.chat import voice as voice_service
from portico.chat.http import CutoffsDep, StoreDep, event_stream, reply_error_status, until_disconnected
from portico.chat.records import AssistantFacts, LinkFacts, OpenSession
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
    UtteranceReplyOut,
)
from portico.chat.store import GuestStore
from portico.config import Settings
from portico.deps import BearerToken, SettingsDep, VaultDep
from portico.handlers import error_response
from portico.kit.i18n import format_number, gettext, ngettext
from portico.schemas import Id
from portico.vocabulary import END_MESSAGES, EndReason, FeedbackReason, Rating, Role

router = APIRouter(prefix="/chat", tags=["guest chat"])


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
    count = format_number(left)
    if not in_session:
        return ngettext("Your link has {count} session left.", "Your link has {count} sessions left.", left).format(
            count=count
        )
    if left == 0:
        return gettext("This is the last session on your link.")
    return ngettext(
        "Your link has {count} more session after this one.",
        "Your link has {count} more sessions after this one.",
        left,
    ).format(count=count)


async def _state(store: GuestStore, opened: OpenSession) -> SessionState:
    session = opened.session
    assert opened.assistant is not None
    messages = await service.transcript(store, opened)
    end_reason = EndReason(session.end_reason) if session.end_reason else None
    return SessionState(
        session_id=session.id,
        state="ended" if session.ended_at else "active",
        end_reason=end_reason,
        end_message=gettext(END_MESSAGES[end_reason]) if end_reason else None,
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
                audio_ms=m.audio_ms,
            )
            for m in messages
        ],
    )


@router.post("/lookup")
async def lookup(body: Lookup, store: StoreDep, limits: GuardCodeLookups) -> LookupOut:
    """What the chat page shows before a session starts; takes no use of a private link."""
    limits.refuse_if_locked_out(access_code=body.access_code, key=body.key)
    admission = await service.ask_gate(
        store,
        public_id=body.public_id,
        widget_id=body.widget_id,
        key=body.key,
        access_code=body.access_code,
        count_refusal=body.count,
        lockout=limits.code_lockout,
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
        language=assistant.settings.get("language"),
    )


@router.post("/sessions", status_code=201)
async def start_session(body: SessionStart, store: StoreDep, limits: GuardCodeStarts) -> SessionStarted:
    limits.refuse_if_locked_out(access_code=body.access_code, key=body.key)
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
        lockout=limits.code_lockout,
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
    return await _reply(request, events, settings, accept)


async def _reply(
    request: Request,
    events: AsyncIterator[messages_service.ReplyEvent],
    settings: Settings,
    accept: str,
    *,
    heard: dict[str, Any] | None = None,
) -> Response:
    """A reply as server-sent events or as one JSON answer; a spoken message's `heard` (`{text,
    audio_ms}`) comes first as its own event, or beside the reply in the JSON."""
    if "text/event-stream" in accept:

        async def framed() -> AsyncIterator[dict[str, str]]:
            if heard is not None:
                yield {"event": "heard", "data": json.dumps(heard)}
            async for event in events:
                yield {"event": event.kind, "data": json.dumps(event.data)}

        return event_stream(framed(), settings)
    parts: list[str] = []
    async for event in until_disconnected(request, events):
        if event.kind == "token":
            parts.append(event.data["text"])
        elif event.kind == "error":
            return error_response(reply_error_status(event.data), event.data["code"], event.data["message"])
        else:
            content = "".join(parts)
            if heard is None:
                return JSONResponse(ReplyOut(content=content, **event.data).model_dump())
            spoken = UtteranceReplyOut(content=content, heard=heard["text"], audio_ms=heard["audio_ms"], **event.data)
            return JSONResponse(spoken.model_dump())
    raise AssertionError("a reply always ends with done or error")


AUDIO_BODY = {
    "content": {kind: {"schema": {"type": "string", "format": "binary"}} for kind in voice_service.AUDIO_TYPES[:4]},
    "required": True,
    "description": "The recording as the whole body, its type in Content-Type (a MediaRecorder's blob as it is).",
}


@router.post(
    "/sessions/{session_id}/utterances",
    response_model=UtteranceReplyOut,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The reply, as JSON or as events"},
        413: {"description": "The recording is longer or larger than allowed"},
        415: {"description": "Not a recording type taken"},
        503: {"description": "Transcriptions are queued full (see Retry-After)"},
    },
    openapi_extra={"requestBody": AUDIO_BODY},
)
async def post_utterance(
    session_id: Id,
    token: BearerToken,
    store: StoreDep,
    cutoffs: CutoffsDep,
    vault: VaultDep,
    settings: SettingsDep,
    request: Request,
    _limits: GuardMessages,
    accept: Annotated[str, Header()] = "application/json",
) -> Response:
    """Send a spoken message: one recording as the request body (`audio/webm;codecs=opus`,
    `audio/ogg`, `audio/mp4` or `audio/wav`). It is transcribed and dropped; the words are the
    guest's message and the reply comes as for `/messages`. With `Accept: text/event-stream` the
    first event is `heard` (`{text, audio_ms}`), then `token`s, then `done` or `error`."""
    heard = await voice_service.hear(
        store, session_id=session_id, token=token, request=request, vault=vault, settings=settings
    )
    pending = await messages_service.accept_guest_message(
        store, session_id=session_id, token=token, content=heard.text, vault=vault, audio_ms=heard.audio_ms
    )
    events = messages_service.stream_reply(pending, store=store, cutoffs=cutoffs)
    return await _reply(request, events, settings, accept, heard={"text": heard.text, "audio_ms": heard.audio_ms})


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
