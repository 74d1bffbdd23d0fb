"""The owner's preview: chatting with the draft (or the published version) inside the dashboard.

Preview sessions have channel `preview`; they skip the gate (the owner may preview an offline,
unpublished assistant), take no use of any link and never count as guest sessions. A
`version_number` of 0 means the draft, read afresh at each message so edits show at once.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from portico.chat.messages import MessageTooLong, PendingReply, engine_request, history_of, version_config
from portico.chat.sessions import TOKEN_PREFIX
from portico.errors import InvalidRequest, NotFound
from portico.kit.crypto import Vault, digest, new_token
from portico.models import Assistant, ChatSession, Message, utcnow

DRAFT = 0


async def start_preview(db: AsyncSession, *, assistant: Assistant, use_published: bool) -> ChatSession:
    if use_published and assistant.published_version is None:
        raise InvalidRequest("This assistant has not been published yet: preview the draft instead.")
    session = ChatSession(
        assistant_id=assistant.id,
        version_number=assistant.published_version if use_published else DRAFT,
        channel="preview",
        # Preview sessions are reached through the owner's dashboard sign-in, not a token.
        token_digest=digest(new_token(TOKEN_PREFIX)),
    )
    db.add(session)
    await db.flush()
    return session


async def preview_greeting(db: AsyncSession, *, assistant: Assistant, session: ChatSession) -> str:
    config = await _config(db, assistant=assistant, session=session)
    return config["greeting"] if config.get("greeting_enabled", True) else ""


async def _config(db: AsyncSession, *, assistant: Assistant, session: ChatSession) -> dict:
    if session.version_number == DRAFT:
        return {**assistant.draft, "digest": assistant.draft_digest}
    return await version_config(db, assistant_id=assistant.id, number=session.version_number)


async def get_preview_session(db: AsyncSession, *, assistant: Assistant, session_id: int) -> ChatSession:
    session = await db.scalar(
        select(ChatSession).where(
            ChatSession.id == session_id, ChatSession.assistant_id == assistant.id, ChatSession.channel == "preview"
        )
    )
    if session is None:
        raise NotFound("No preview conversation with this id.")
    return session


async def accept_preview_message(
    db: AsyncSession, *, assistant: Assistant, session_id: int, content: str, vault: Vault
) -> PendingReply:
    session = await get_preview_session(db, assistant=assistant, session_id=session_id)
    config = await _config(db, assistant=assistant, session=session)
    limit = config["settings"]["max_message_length"]
    if len(content) > limit:
        raise MessageTooLong(f"This message is too long: at most {limit:,} characters, please.")
    history = await history_of(db, session_id=session.id)
    now = utcnow()
    db.add(
        Message(
            session_id=session.id,
            role="guest",
            content=content if assistant.store_transcripts else None,
            created_at=now,
        )
    )
    session.last_activity_at = now
    session.message_count += 1
    await db.flush()
    request = engine_request(config, prompt=content, history=history, vault=vault)
    # link_id None: a preview is cut only when the assistant is deleted, not when it goes offline.
    return PendingReply(session.id, assistant.id, None, request, assistant.store_transcripts)
