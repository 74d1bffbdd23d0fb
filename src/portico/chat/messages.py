"""A guest's message and the assistant's reply.

The guest's message is saved and committed first; the engine is called with no transaction
open; the reply is saved afterwards in its own short transaction. A reply being streamed is cut
when the assistant goes offline or the link is revoked (see cutoff.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.chat.cutoff import Cutoffs, guarded
from portico.chat.sessions import OpenedSession, open_session
from portico.engines import ENGINES, EngineError, EngineRequest, Turn, Usage, get_engine
from portico.errors import Conflict, PorticoError
from portico.kit.crypto import Vault
from portico.models import AssistantVersion, ChatSession, Message, utcnow

HISTORY_TURNS = 20
log = logging.getLogger("portico.chat")


class SessionEnded(Conflict):
    code = "session_ended"
    message = "This conversation has ended. Start a new one to keep talking."


class MessageTooLong(PorticoError):
    status = 413
    code = "message_too_long"


CUT_MESSAGES = {
    "assistant_offline": "The assistant went offline, so this conversation has ended.",
    "assistant_deleted": "This assistant was removed, so this conversation has ended.",
    "link_revoked": "Your link was turned off by the assistant's owner, so this conversation has ended.",
}

# Configurations by content digest: a version never changes, and equal digests mean equal
# configurations, so any instance may keep them in memory and skip loading the knowledge text.
_configs: OrderedDict[str, dict[str, Any]] = OrderedDict()

# The message path's statements are built once, and run as Core on the transaction's connection:
# building a statement and its cache key, and the ORM's unit of work, cost more than running the
# statement on a local database (see gate.py).
_VERSION = and_(
    AssistantVersion.assistant_id == bindparam("p_assistant_id"), AssistantVersion.number == bindparam("p_number")
)
_DIGEST = select(AssistantVersion.digest).where(_VERSION)
_CONFIG = select(AssistantVersion.config).where(_VERSION)
_HISTORY = (
    select(Message.role, Message.content)
    .where(Message.session_id == bindparam("p_session_id"), Message.content.is_not(None), Message.error_code.is_(None))
    .order_by(Message.id.desc())
    .limit(HISTORY_TURNS)
)
_INSERT_MESSAGE = insert(Message)
_INSERT_REPLY = insert(Message).returning(Message.id)
_TOUCH_SESSION = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"))
    .values(last_activity_at=bindparam("p_now"), message_count=ChatSession.message_count + 1)
)
_COUNT_REPLY = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"))
    .values(
        last_activity_at=bindparam("p_now"),
        message_count=ChatSession.message_count + 1,
        tokens_in=ChatSession.tokens_in + bindparam("p_tokens_in"),
        tokens_out=ChatSession.tokens_out + bindparam("p_tokens_out"),
    )
)


async def version_config(
    db: AsyncSession, *, assistant_id: int, number: int, digest: str | None = None
) -> dict[str, Any]:
    """A published version's configuration; give its `digest` when known, to skip a query."""
    conn = await db.connection()
    params = {"p_assistant_id": assistant_id, "p_number": number}
    if digest is None:
        digest = (await conn.execute(_DIGEST, params)).scalar_one()
    if digest not in _configs:
        config = (await conn.execute(_CONFIG, params)).scalar_one()
        _configs[digest] = {**config, "digest": digest}
        while len(_configs) > 64:
            _configs.popitem(last=False)
    _configs.move_to_end(digest)
    return _configs[digest]


@dataclass
class PendingReply:
    session_id: int
    assistant_id: int
    link_id: int | None
    request: EngineRequest
    # The owner's "don't store transcripts" switch: messages are counted, their text is not kept.
    store_text: bool = True


async def accept_guest_message(
    db: AsyncSession, *, session_id: int, token: str, content: str, vault: Vault
) -> PendingReply:
    opened = await open_session(db, session_id=session_id, token=token)
    return await prepare_reply(db, opened=opened, content=content, history=None, vault=vault)


async def prepare_reply(
    db: AsyncSession, *, opened: OpenedSession, content: str, history: list[Turn] | None, vault: Vault
) -> PendingReply:
    """Check and save the guest's message; return what the engine needs to answer it.

    With `history` None, the session's own is read, if the engine uses it.
    """
    session = opened.session
    if session.ended_at is not None:
        raise SessionEnded()
    limit = opened.settings["max_message_length"]
    if len(content) > limit:
        raise MessageTooLong(f"This message is too long: at most {limit:,} characters, please.")
    config = await version_config(
        db, assistant_id=session.assistant_id, number=session.version_number, digest=opened.version_digest
    )
    if history is None:
        engine = ENGINES.get(config["engine"]["type"])
        reads_history = engine is None or engine.reads_history
        history = await history_of(db, session_id=session.id) if reads_history else []
    now = utcnow()
    store_text = opened.assistant is None or opened.assistant.store_transcripts
    # Messages the caller added (the compat API's earlier turns) come first in the transcript.
    await db.flush()
    conn = await db.connection()
    message = {"session_id": session.id, "role": "guest", "content": content if store_text else None, "created_at": now}
    await conn.execute(_INSERT_MESSAGE, message)
    await conn.execute(_TOUCH_SESSION, {"p_session_id": session.id, "p_now": now})
    request = engine_request(config, prompt=content, history=history, vault=vault)
    return PendingReply(session.id, session.assistant_id, session.link_id, request, store_text)


def engine_request(config: dict[str, Any], *, prompt: str, history: list[Turn], vault: Vault) -> EngineRequest:
    """What an engine needs from a configuration (a published version's, or the draft's)."""
    engine = config["engine"]
    api_key = vault.decrypt(engine["api_key_encrypted"]) if "api_key_encrypted" in engine else None
    return EngineRequest(
        version_key=config["digest"],
        instructions=config["instructions"],
        knowledge=config["knowledge"],
        engine=engine,
        prompt=prompt,
        history=history,
        api_key=api_key,
    )


async def history_of(db: AsyncSession, *, session_id: int) -> list[Turn]:
    rows = list(await (await db.connection()).execute(_HISTORY, {"p_session_id": session_id}))
    return [Turn("user" if r.role == "guest" else "assistant", r.content) for r in reversed(rows)]


@dataclass
class ReplyEvent:
    kind: str  # "token", "done" or "error"
    data: dict[str, Any]


async def stream_reply(
    pending: PendingReply, *, sessionmaker: async_sessionmaker[AsyncSession], cutoffs: Cutoffs
) -> AsyncIterator[ReplyEvent]:
    engine = get_engine(pending.request.engine["type"])
    started = time.perf_counter()
    first_token: float | None = None
    parts: list[str] = []
    usage = Usage(0, 0)
    error: tuple[str, str] | None = None
    with cutoffs.watch(assistant_id=pending.assistant_id, link_id=pending.link_id) as watch:
        try:
            async for item in guarded(engine.stream(pending.request), watch):
                if isinstance(item, Usage):
                    usage = item
                    continue
                if first_token is None:
                    first_token = time.perf_counter()
                parts.append(str(item))
                yield ReplyEvent("token", {"text": item})
            if watch.code is not None:
                error = (watch.code, CUT_MESSAGES[watch.code])
        except EngineError as exc:
            error = (exc.code, exc.guest_message)
        except Exception as exc:  # noqa: BLE001 - a guest gets a sentence, never a broken stream
            log.error("engine %s failed: %s", pending.request.engine["type"], type(exc).__name__)
            error = ("engine_error", EngineError.guest_message)
        except asyncio.CancelledError:
            # The guest went away mid-reply: keep what was written, then stop.
            await asyncio.shield(_save_reply(sessionmaker, pending, parts, usage, started, first_token, "disconnected"))
            raise
    message_id = await _save_reply(sessionmaker, pending, parts, usage, started, first_token, error and error[0])
    if error is not None:
        yield ReplyEvent("error", {"code": error[0], "message": error[1], "message_id": message_id})
    else:
        yield ReplyEvent(
            "done", {"message_id": message_id, "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out}
        )


async def _save_reply(
    sessionmaker: async_sessionmaker[AsyncSession],
    pending: PendingReply,
    parts: list[str],
    usage: Usage,
    started: float,
    first_token: float | None,
    error_code: str | None,
) -> int:
    finished = time.perf_counter()
    reply = {
        "session_id": pending.session_id,
        "role": "assistant",
        "content": "".join(parts) if pending.store_text else None,
        "created_at": utcnow(),
        "first_token_ms": round((first_token - started) * 1000) if first_token else None,
        "duration_ms": round((finished - started) * 1000),
        "tokens_in": usage.tokens_in,
        "tokens_out": usage.tokens_out,
        "error_code": error_code,
    }
    counts = {
        "p_session_id": pending.session_id,
        "p_now": reply["created_at"],
        "p_tokens_in": usage.tokens_in,
        "p_tokens_out": usage.tokens_out,
    }
    async with sessionmaker() as db, db.begin():
        conn = await db.connection()
        await conn.execute(_COUNT_REPLY, counts)
        return (await conn.execute(_INSERT_REPLY, reply)).scalar_one()


async def transcript(db: AsyncSession, *, session_id: int) -> list[Message]:
    query = select(Message).where(Message.session_id == session_id).order_by(Message.id)
    return list(await db.scalars(query))
