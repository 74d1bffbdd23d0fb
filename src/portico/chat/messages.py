"""A guest's message and the assistant's reply.

The guest's message is saved and committed first; the engine is called with no transaction
open; the reply is saved afterwards in its own short transaction. A reply being streamed is cut
when the assistant goes offline or the link is revoked (see cutoff.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from portico.access.gate import Refused
from portico.chat.cutoff import TIMED_OUT, Cutoffs, guarded
from portico.chat.growing import GrowingReply
from portico.chat.records import OpenSession, Reply, SessionEnded
from portico.chat.sessions import count_refusal, open_session
from portico.chat.store import GuestStore, PreviewStore
from portico.engines import PROVIDERS, EngineError, EngineRequest, Kind, Sources, Turn, Usage, get_engine, secrets
from portico.errors import PorticoError
from portico.kit.crypto import Vault
from portico.kit.i18n import N_, format_number, gettext
from portico.models import utcnow
from portico.vocabulary import END_MESSAGES, EndReason, Role

HISTORY_TURNS = 20
TOO_SLOW = N_("The assistant took too long to answer. Please try again in a moment.")
log = logging.getLogger("portico.chat")


class MessageTooLong(PorticoError):
    status = 413
    code = "message_too_long"

    def __init__(self, limit: int) -> None:
        sentence = gettext("This message is too long: at most {limit} characters, please.")
        super().__init__(sentence.format(limit=format_number(limit)))


@dataclass(frozen=True)
class PendingReply:
    session_id: int
    assistant_id: int
    link_id: int | None
    request: EngineRequest
    store_text: bool = True
    # The owner's preview: cut only when its assistant is deleted, never when it goes offline.
    preview: bool = False
    # The assistant has a tokens_per_day quota: the reply's tokens count towards today's.
    count_tokens: bool = False


def check_length(content: str, settings: dict[str, Any]) -> None:
    limit = settings["max_message_length"]
    if len(content) > limit:
        raise MessageTooLong(limit)


async def accept_guest_message(
    store: GuestStore, *, session_id: int, token: str, content: str, vault: Vault, audio_ms: int | None = None
) -> PendingReply:
    """Save the guest's message, committed when this returns (before the engine is called).
    A spoken message (chat/voice.py) gives the length of the audio it was heard from."""
    opened = await open_session(store, session_id=session_id, token=token)
    return await _accept(store, opened=opened, content=content, earlier=None, vault=vault, audio_ms=audio_ms)


async def accept_conversation(
    store: GuestStore, *, opened: OpenSession, earlier: list[Turn], content: str, vault: Vault
) -> PendingReply:
    """An OpenAI-style request: the conversation so far arrives with it. The engine reads it; the
    transcript keeps only the guest's last turn and the reply, since earlier turns are the client's
    word for what was said (docs/design.md)."""
    return await _accept(store, opened=opened, content=content, earlier=earlier, vault=vault)


async def _accept(
    store: GuestStore,
    *,
    opened: OpenSession,
    content: str,
    earlier: list[Turn] | None,
    vault: Vault,
    audio_ms: int | None = None,
) -> PendingReply:
    session = opened.session
    if session.ended_at is not None:
        # A guest whose link was replaced is told so: a new conversation on the old link cannot start.
        reissued = session.end_reason == EndReason.LINK_REISSUED
        raise SessionEnded(gettext(END_MESSAGES[EndReason.LINK_REISSUED]) if reissued else None)
    check_length(content, opened.settings)
    config = await store.version_config(
        assistant_id=session.assistant_id, number=session.version_number, digest=opened.version_digest
    )
    stored = content if opened.store_text else None
    now = utcnow()
    history = earlier
    if history is None:
        known = PROVIDERS.find(Kind.REPLY, config["engine"]["type"]) is not None
        reads = not known or PROVIDERS.engine(config["engine"]["type"]).reads_history
        history = await history_of(store, session.id) if reads else []
    assistant = opened.assistant
    assert assistant is not None  # open_session refuses a deleted assistant
    try:
        await store.save_guest_message(
            session.id,
            content=stored,
            now=now,
            assistant_id=assistant.id,
            cap=assistant.messages_per_session,
            tokens_per_day=assistant.tokens_per_day,
            audio_ms=audio_ms,
        )
    except Refused as refused:  # a quota: counted in Metrics (a session that ended is not a refusal)
        await count_refusal(store, refused.refusal)
        raise
    request = engine_request(config, prompt=content, history=history, vault=vault)
    return PendingReply(
        session.id,
        session.assistant_id,
        session.link_id,
        request,
        opened.store_text,
        count_tokens=assistant.tokens_per_day > 0,
    )


def engine_request(config: dict[str, Any], *, prompt: str, history: list[Turn], vault: Vault) -> EngineRequest:
    """What an engine needs from a configuration (a published version's, or the draft's)."""
    engine = config["engine"]
    provider = PROVIDERS.find(Kind.REPLY, engine["type"])
    # Unknown: stream_reply answers `engine_unknown`; there is no secret to send to it.
    given = secrets.decrypted(provider, engine, vault) if provider is not None else {}
    return EngineRequest(
        version_key=config["digest"],
        instructions=config["instructions"],
        knowledge=config["knowledge"],
        engine=engine,
        prompt=prompt,
        history=history,
        secrets=given,
        # A version's documents (issue 24); a draft's are read into the preview's configuration.
        documents=tuple((d["title"], d["text"]) for d in config.get("documents", []) if "text" in d),
    )


async def history_of(store: GuestStore | PreviewStore, session_id: int) -> list[Turn]:
    rows = await store.history(session_id, turns=HISTORY_TURNS)
    return [Turn("user" if role == Role.GUEST else "assistant", content) for role, content in rows]


@dataclass
class ReplyEvent:
    kind: str  # "token", "done" or "error"
    data: dict[str, Any]


async def stream_reply(pending: PendingReply, *, store: GuestStore, cutoffs: Cutoffs) -> AsyncIterator[ReplyEvent]:
    chat_engine = get_engine(pending.request.engine["type"])
    reply = _Growing(pending, store)
    error: tuple[str, str] | None = None
    with cutoffs.watch(
        assistant_id=pending.assistant_id,
        link_id=pending.link_id,
        preview=pending.preview,
        session_id=pending.session_id,
    ) as watch:
        try:
            async for item in guarded(chat_engine.stream(pending.request), watch):
                if isinstance(item, Usage):
                    reply.usage = item
                    continue
                if isinstance(item, Sources):
                    reply.sources = item
                    continue
                reply.add(str(item))
                yield ReplyEvent("token", {"text": item})
            if watch.code == TIMED_OUT:
                error = (watch.code, gettext(TOO_SLOW))
            elif watch.code is not None:
                error = (watch.code, gettext(END_MESSAGES[EndReason(watch.code)]))
        except EngineError as exc:
            error = (exc.code, gettext(exc.guest_message))
        except Exception as exc:  # noqa: BLE001 - a guest gets a sentence, never a broken stream
            log.error("engine %s failed: %s", pending.request.engine["type"], type(exc).__name__)
            error = ("engine_error", gettext(EngineError.guest_message))
        except asyncio.CancelledError:
            # The guest went away mid-reply: keep what was written, then stop.
            await asyncio.shield(reply.finish("disconnected"))
            raise
    message_id = await reply.finish(error and error[0])
    if error is not None:
        yield ReplyEvent("error", {"code": error[0], "message": error[1], "message_id": message_id})
    else:
        yield ReplyEvent(
            "done",
            {
                "message_id": message_id,
                "tokens_in": reply.usage.tokens_in,
                "tokens_out": reply.usage.tokens_out,
                "sources": list(reply.sources.titles),
                "answered": reply.sources.answered,
            },
        )


class _Growing:
    """A reply as it streams. While it streams it is saved with this process's other growing
    replies, once per tick (chat/growing.py), so an instance that dies loses about a second of
    it; the sweep marks such an orphan `interrupted` (chat/sweep.py). Its end is saved by
    `GuestStore.save_reply`, the one final save of every reply."""

    def __init__(self, pending: PendingReply, store: GuestStore) -> None:
        self.pending = pending
        self.store = store
        self.started = time.perf_counter()
        self.draft = GrowingReply(pending.session_id, utcnow(), pending.store_text)
        self.usage = Usage(0, 0)
        self.sources = Sources()
        self.first_token: float | None = None

    def add(self, text: str) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter()
            self.draft.first_token_ms = self._first_token_ms()
            self.store.growing.track(self.draft)
        self.draft.parts.append(text)

    def _first_token_ms(self) -> int | None:
        return round((self.first_token - self.started) * 1000) if self.first_token else None

    async def finish(self, error_code: str | None) -> int:
        # The reply's row, if a batch saved (or is saving) it, is the one finished.
        message_id = await self.store.growing.untrack(self.draft)
        reply = Reply(
            session_id=self.pending.session_id,
            content=self.draft.content(),
            first_token_ms=self._first_token_ms(),
            duration_ms=round((time.perf_counter() - self.started) * 1000),
            tokens_in=self.usage.tokens_in,
            tokens_out=self.usage.tokens_out,
            error_code=error_code,
            sources=self.sources.titles,
            answered=self.sources.answered,
        )
        count_tokens_of = self.pending.assistant_id if self.pending.count_tokens else None
        return await self.store.save_reply(reply, now=utcnow(), count_tokens_of=count_tokens_of, message_id=message_id)
