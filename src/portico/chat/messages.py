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

from sqlalchemy import Integer, String, Text, and_, bindparam, insert, literal, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from portico.chat.cutoff import Cutoffs, guarded
from portico.chat.sessions import OpenedSession, open_session
from portico.db import Db, HotStatement, connection_of, hot_connection
from portico.engines import ENGINES, EngineError, EngineRequest, Turn, Usage, get_engine
from portico.errors import Conflict, PorticoError
from portico.kit.crypto import Vault
from portico.models import AssistantVersion, ChatSession, Message, utcnow
from portico.models.base import UTCDateTime

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

# The message path's statements are built once and run on the driver connection
# (db.HotStatement): building a statement and its cache key, SQLAlchemy's execution and the ORM's
# unit of work cost more than running the statement on a local database (see gate.py).
_VERSION = and_(
    AssistantVersion.assistant_id == bindparam("p_assistant_id"), AssistantVersion.number == bindparam("p_number")
)
_DIGEST = HotStatement(select(AssistantVersion.digest).where(_VERSION))
_CONFIG = HotStatement(select(AssistantVersion.config).where(_VERSION))
_HISTORY = HotStatement(
    select(Message.role, Message.content)
    .where(Message.session_id == bindparam("p_session_id"), Message.content.is_not(None), Message.error_code.is_(None))
    .order_by(Message.id.desc())
    .limit(HISTORY_TURNS)
)
# A guest's message and its count are saved together, and only while the session is open: on
# PostgreSQL in one statement, which commits by itself (db.hot_connection); SQLite has no UPDATE
# in a WITH clause, and runs the two in one transaction.
_TOUCH = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"), ChatSession.ended_at.is_(None))
    .values(last_activity_at=bindparam("p_now"), message_count=ChatSession.message_count + 1)
    .returning(ChatSession.id)
)
_GUEST_VALUES = {
    "role": literal("guest", String),
    "content": bindparam("p_content", type_=Text),
    "created_at": bindparam("p_now", type_=UTCDateTime),
}
_TOUCHED = _TOUCH.cte("touched")
_SAVE_MESSAGE = HotStatement(
    insert(Message)
    .from_select(["session_id", *_GUEST_VALUES], select(_TOUCHED.c.id, *_GUEST_VALUES.values()))
    .returning(Message.id)
)
_TOUCH_SESSION = HotStatement(_TOUCH)
_INSERT_MESSAGE = HotStatement(insert(Message).values(session_id=bindparam("p_session_id"), **_GUEST_VALUES))
# A reply and the session's running totals, likewise.
_COUNT = (
    update(ChatSession)
    .where(ChatSession.id == bindparam("p_session_id"))
    .values(
        last_activity_at=bindparam("p_now"),
        message_count=ChatSession.message_count + 1,
        tokens_in=ChatSession.tokens_in + bindparam("p_tokens_in", type_=Integer),
        tokens_out=ChatSession.tokens_out + bindparam("p_tokens_out", type_=Integer),
    )
)
_INSERT_REPLY = (
    insert(Message)
    .values(
        session_id=bindparam("p_session_id"),
        role="assistant",
        content=bindparam("p_content"),
        created_at=bindparam("p_now"),
        first_token_ms=bindparam("p_first_token_ms"),
        duration_ms=bindparam("p_duration_ms"),
        tokens_in=bindparam("p_tokens_in"),
        tokens_out=bindparam("p_tokens_out"),
        error_code=bindparam("p_error_code"),
    )
    .returning(Message.id)
)
_SAVE_REPLY = HotStatement(_INSERT_REPLY.add_cte(_COUNT.cte("counted")))
_COUNT_REPLY = HotStatement(_COUNT)
_INSERT_REPLY_ALONE = HotStatement(_INSERT_REPLY)


async def version_config(db: Db, *, assistant_id: int, number: int, digest: str | None = None) -> dict[str, Any]:
    """A published version's configuration; give its `digest` when known, to skip a query."""
    conn = await connection_of(db)
    params = {"p_assistant_id": assistant_id, "p_number": number}
    if digest is None:
        row = await _DIGEST.one_or_none(conn, params)
        assert row is not None
        digest = row["digest"]
    if digest not in _configs:
        row = await _CONFIG.one_or_none(conn, params)
        assert row is not None
        config = row["config"]
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
    engine: AsyncEngine, *, session_id: int, token: str, content: str, vault: Vault
) -> PendingReply:
    """Save the guest's message, committed when this returns (before the engine is called)."""
    async with hot_connection(engine) as conn:
        opened = await open_session(conn, session_id=session_id, token=token)
        # Refused after leaving the block: a session that opening just found expired stays ended.
        refusal = _refusal(opened, content)
        if refusal is None:
            return await prepare_reply(conn, opened=opened, content=content, history=None, vault=vault)
    raise refusal


def _refusal(opened: OpenedSession, content: str) -> PorticoError | None:
    if opened.session.ended_at is not None:
        return SessionEnded()
    limit = opened.settings["max_message_length"]
    if len(content) > limit:
        return MessageTooLong(f"This message is too long: at most {limit:,} characters, please.")
    return None


async def prepare_reply(
    db: Db, *, opened: OpenedSession, content: str, history: list[Turn] | None, vault: Vault
) -> PendingReply:
    """Check and save the guest's message; return what the engine needs to answer it.

    With `history` None, the session's own is read, if the engine uses it.
    """
    session = opened.session
    refusal = _refusal(opened, content)
    if refusal is not None:
        raise refusal
    config = await version_config(
        db, assistant_id=session.assistant_id, number=session.version_number, digest=opened.version_digest
    )
    if history is None:
        engine = ENGINES.get(config["engine"]["type"])
        reads_history = engine is None or engine.reads_history
        history = await history_of(db, session_id=session.id) if reads_history else []
    store_text = opened.assistant is None or opened.assistant.store_transcripts
    if isinstance(db, AsyncSession):
        # Messages the caller added (the compat API's earlier turns) come first in the transcript.
        await db.flush()
    conn = await connection_of(db)
    message = {"p_session_id": session.id, "p_content": content if store_text else None, "p_now": utcnow()}
    if conn.dialect.name == "postgresql":
        saved = await _SAVE_MESSAGE.one_or_none(conn, message)
    else:
        saved = await _TOUCH_SESSION.one_or_none(conn, message)
        if saved is not None:
            await _INSERT_MESSAGE.all(conn, message)
    if saved is None:  # ended since it was opened
        raise SessionEnded()
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


async def history_of(db: Db, *, session_id: int) -> list[Turn]:
    rows = await _HISTORY.all(await connection_of(db), {"p_session_id": session_id})
    return [Turn("user" if r["role"] == "guest" else "assistant", r["content"]) for r in reversed(rows)]


@dataclass
class ReplyEvent:
    kind: str  # "token", "done" or "error"
    data: dict[str, Any]


async def stream_reply(pending: PendingReply, *, engine: AsyncEngine, cutoffs: Cutoffs) -> AsyncIterator[ReplyEvent]:
    chat_engine = get_engine(pending.request.engine["type"])
    started = time.perf_counter()
    first_token: float | None = None
    parts: list[str] = []
    usage = Usage(0, 0)
    error: tuple[str, str] | None = None
    with cutoffs.watch(assistant_id=pending.assistant_id, link_id=pending.link_id) as watch:
        try:
            async for item in guarded(chat_engine.stream(pending.request), watch):
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
            await asyncio.shield(_save_reply(engine, pending, parts, usage, started, first_token, "disconnected"))
            raise
    message_id = await _save_reply(engine, pending, parts, usage, started, first_token, error and error[0])
    if error is not None:
        yield ReplyEvent("error", {"code": error[0], "message": error[1], "message_id": message_id})
    else:
        yield ReplyEvent(
            "done", {"message_id": message_id, "tokens_in": usage.tokens_in, "tokens_out": usage.tokens_out}
        )


async def _save_reply(
    engine: AsyncEngine,
    pending: PendingReply,
    parts: list[str],
    usage: Usage,
    started: float,
    first_token: float | None,
    error_code: str | None,
) -> int:
    finished = time.perf_counter()
    reply = {
        "p_session_id": pending.session_id,
        "p_content": "".join(parts) if pending.store_text else None,
        "p_now": utcnow(),
        "p_first_token_ms": round((first_token - started) * 1000) if first_token else None,
        "p_duration_ms": round((finished - started) * 1000),
        "p_tokens_in": usage.tokens_in,
        "p_tokens_out": usage.tokens_out,
        "p_error_code": error_code,
    }
    async with hot_connection(engine) as conn:
        if conn.dialect.name == "postgresql":
            saved = await _SAVE_REPLY.one_or_none(conn, reply)
        else:
            await _COUNT_REPLY.all(conn, reply)
            saved = await _INSERT_REPLY_ALONE.one_or_none(conn, reply)
    assert saved is not None
    return saved["id"]


async def transcript(db: AsyncSession, *, session_id: int) -> list[Message]:
    query = select(Message).where(Message.session_id == session_id).order_by(Message.id)
    return list(await db.scalars(query))
