"""The owner's preview: chatting with the draft (or the published version) inside the dashboard.

A preview is the owner's own path, not a guest's: it runs in the owner's request (the
dashboard's sign-in, no session token), skips the gate (an owner may preview an Offline,
unpublished assistant), takes no use of any link, never counts as a guest session, and is cut
only when its assistant is deleted. Its sessions are kept with channel `preview`, so Logs show
them as the owner's; a preview of the draft has version number 0 (`DRAFT`), and reads the draft
afresh at each message so edits show at once.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from portico.chat.messages import PendingReply, check_length, engine_request, history_of
from portico.chat.sessions import TOKEN_PREFIX
from portico.chat.store import PreviewStore
from portico.documents import store as documents
from portico.errors import InvalidRequest, NotFound
from portico.kit.crypto import Vault, digest, new_token
from portico.models import Assistant, AssistantVersion, ChatSession, Message, utcnow
from portico.vocabulary import Channel, FeedbackReason, Rating, Role

DRAFT = 0


async def start_preview(db: AsyncSession, *, assistant: Assistant, use_published: bool) -> ChatSession:
    if use_published and assistant.published_version is None:
        raise InvalidRequest("This assistant has not been published yet: preview the draft instead.")
    session = ChatSession(
        assistant_id=assistant.id,
        version_number=assistant.published_version if use_published else DRAFT,
        channel=Channel.PREVIEW,
        # Reached through the owner's dashboard sign-in; this token is never handed out.
        token_digest=digest(new_token(TOKEN_PREFIX)),
    )
    db.add(session)
    await db.flush()
    return session


async def preview_opening(db: AsyncSession, *, assistant: Assistant, session: ChatSession) -> tuple[str, list[str]]:
    """The greeting and starter questions a guest of this version (or the draft) sees first."""
    config = await _config(db, assistant=assistant, number=session.version_number)
    return opening(config)


def opening(config: dict[str, Any]) -> tuple[str, list[str]]:
    greeting = str(config["greeting"]) if config.get("greeting_enabled", True) else ""
    return greeting, list(config.get("starters", []))


async def preview_intro(db: AsyncSession, *, assistant: Assistant) -> dict[str, dict[str, Any] | None]:
    """What the preview shows before the first message, for the draft and the published version:
    the greeting and the starter questions, as a guest would see them."""

    def intro(config: dict[str, Any]) -> dict[str, Any]:
        greeting = str(config.get("greeting") or "") if config.get("greeting_enabled", True) else ""
        return {"greeting": greeting, "starters": list(config.get("starters") or [])}

    published = None
    if assistant.published_version is not None:
        published = intro(await _config(db, assistant=assistant, number=assistant.published_version))
    return {"draft": intro(assistant.draft), "published": published}


async def _config(db: AsyncSession, *, assistant: Assistant, number: int) -> dict[str, Any]:
    if number == DRAFT:
        config = {**assistant.draft, "digest": assistant.draft_digest}
        if "documents" in config:
            config["documents"] = await documents.ready_texts(db, assistant_id=assistant.id)
        return config
    version = await db.scalar(
        select(AssistantVersion)
        .options(undefer(AssistantVersion.config))
        .where(AssistantVersion.assistant_id == assistant.id, AssistantVersion.number == number)
    )
    assert version is not None  # versions are never deleted
    return {**version.config, "digest": version.digest}


async def get_preview_session(db: AsyncSession, *, assistant: Assistant, session_id: int) -> ChatSession:
    session = await db.scalar(
        select(ChatSession).where(
            ChatSession.id == session_id,
            ChatSession.assistant_id == assistant.id,
            ChatSession.channel == Channel.PREVIEW,
        )
    )
    if session is None:
        raise NotFound("No preview conversation with this id.")
    return session


async def accept_preview_message(
    db: AsyncSession, *, assistant: Assistant, session_id: int, content: str, vault: Vault
) -> PendingReply:
    """Save the owner's message in the request's transaction (the caller commits before the engine)."""
    session = await get_preview_session(db, assistant=assistant, session_id=session_id)
    config = await _config(db, assistant=assistant, number=session.version_number)
    check_length(content, config["settings"])
    history = await history_of(PreviewStore(db), session.id)
    now = utcnow()
    db.add(
        Message(
            session_id=session.id,
            role=Role.GUEST,
            content=content if assistant.store_transcripts else None,
            created_at=now,
        )
    )
    session.last_activity_at = now
    session.message_count += 1
    await db.flush()
    request = engine_request(config, prompt=content, history=history, vault=vault)
    return PendingReply(session.id, assistant.id, None, request, assistant.store_transcripts, preview=True)


async def rate_preview_reply(
    db: AsyncSession,
    *,
    assistant: Assistant,
    session_id: int,
    message_id: int,
    rating: Rating,
    reason: FeedbackReason | None,
    comment: str | None,
) -> str | None:
    """The owner tries the thumbs in the preview: saved like a guest's rating, with the same refusals,
    and never counted (Metrics and the unanswered report leave previews out). The comment as kept."""
    session = await get_preview_session(db, assistant=assistant, session_id=session_id)
    kept = (comment.strip() or None) if comment is not None and assistant.store_transcripts else None
    await PreviewStore(db).rate_reply(
        session_id=session.id,
        message_id=message_id,
        rating=rating.value,
        reason=reason.value if reason is not None else None,
        comment=kept,
        now=utcnow(),
    )
    return kept
