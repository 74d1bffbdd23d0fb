"""Cutting replies that are being streamed when their assistant goes offline or is deleted, or
their link is revoked, or the assistant is made private (replies on the public link).

A preview (the owner's own test chat) is cut only when its assistant is deleted: a new
assistant is Offline, and its owner previews it all the same.

Each process keeps a table of the streams it is running, by assistant and by link. How it learns
of a change, within a second, on every instance:
- PostgreSQL: the change sends `NOTIFY portico_cutoff` in its own transaction (so it is delivered
  only if the change commits), and every process LISTENs on one dedicated connection.
- SQLite (one machine): while any stream runs, each process asks the database every 0.25 s
  whether a watched assistant or link changed; the CLI, in another process, is seen too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from portico.chat.store import GuestStore
from portico.vocabulary import EndReason, ShareMode, Status

log = logging.getLogger("portico.cutoff")
# Cuts that stop guests and not the owner's preview (an Offline assistant can be previewed).
_GUEST_ONLY = {EndReason.ASSISTANT_OFFLINE, EndReason.LINK_REVOKED, EndReason.MADE_PRIVATE}
# A reply past its time limit (PORTICO_REPLY_TIMEOUT) is cut with this code.
TIMED_OUT = "engine_timeout"
CHANNEL = "portico_cutoff"
POLL_SECONDS = 0.25


@dataclass(eq=False)
class Watch:
    assistant_id: int
    link_id: int | None
    preview: bool = False
    code: str | None = None
    # The task that waits for the stream's next item, while it waits (see `guarded`).
    waiting: asyncio.Task[Any] | None = field(default=None, repr=False)
    interrupted: bool = False

    def cut(self, code: str) -> None:
        if self.preview and code in _GUEST_ONLY:
            return
        if self.code is None:
            self.code = code
            if self.waiting is not None:
                self.interrupted = True
                self.waiting.cancel()


async def announce(db: AsyncSession, *, code: EndReason, assistant_id: int, link_id: int | None = None) -> None:
    """Tell every instance, once this transaction commits, to cut matching streams.

    `made_private` cuts the assistant's replies on its public link (no private link)."""
    if db.get_bind().dialect.name == "postgresql":
        if link_id is not None:
            target = f"link:{link_id}"
        elif code == EndReason.MADE_PRIVATE:
            target = f"public:{assistant_id}"
        else:
            target = f"assistant:{assistant_id}"
        await db.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": f"{target}:{code}"}
        )


class Cutoffs:
    def __init__(self, *, reply_timeout: float = 120) -> None:
        self.reply_timeout = reply_timeout
        self._watches: set[Watch] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @contextlib.contextmanager
    def watch(self, *, assistant_id: int, link_id: int | None, preview: bool = False) -> Iterator[Watch]:
        watch = Watch(assistant_id, link_id, preview)
        self._watches.add(watch)
        self._wake.set()
        # Every reply ends: whatever the engine does, it is cut at the time limit.
        deadline = asyncio.get_running_loop().call_later(self.reply_timeout, watch.cut, TIMED_OUT)
        try:
            yield watch
        finally:
            deadline.cancel()
            self._watches.discard(watch)

    def cut(self, target: str, code: str) -> None:
        kind, _, ident = target.partition(":")
        for watch in list(self._watches):
            if (
                (kind == "assistant" and watch.assistant_id == int(ident))
                or (kind == "link" and watch.link_id == int(ident))
                or (kind == "public" and watch.assistant_id == int(ident) and watch.link_id is None)
            ):
                watch.cut(code)

    async def start(self, engine: AsyncEngine, store: GuestStore) -> None:
        if engine.dialect.name == "postgresql":
            self._task = asyncio.create_task(self._listen(engine), name="portico-cutoffs")
        else:
            self._task = asyncio.create_task(self._poll(store), name="portico-cutoffs")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        target, _, code = payload.rpartition(":")
        self.cut(target, code)

    async def _listen(self, engine: AsyncEngine) -> None:
        url = engine.url.set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        while True:
            try:
                conn = await asyncpg.connect(dsn)
                try:
                    await conn.add_listener(CHANNEL, self._on_notify)
                    while not conn.is_closed():  # noqa: ASYNC110 - asyncpg offers no event for a lost connection
                        await asyncio.sleep(5)
                finally:
                    await conn.close()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cutoff listener lost its connection (%s); reconnecting", type(exc).__name__)
                await asyncio.sleep(1)

    async def _poll(self, store: GuestStore) -> None:
        while True:
            if not self._watches:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(POLL_SECONDS)
            try:
                await self._check(store)
            except Exception:
                log.exception("cutoff check failed; trying again in %s s", POLL_SECONDS)

    async def _check(self, store: GuestStore) -> None:
        watches = list(self._watches)
        assistant_ids = {w.assistant_id for w in watches}
        link_ids = {w.link_id for w in watches if w.link_id is not None}
        assistants, revoked = await store.stopped(assistant_ids=assistant_ids, link_ids=link_ids)
        for watch in watches:
            status, share_mode, deleted_at = assistants.get(watch.assistant_id, (Status.LIVE, ShareMode.PUBLIC, None))
            if deleted_at is not None:
                watch.cut(EndReason.ASSISTANT_DELETED)
            elif status != Status.LIVE:
                watch.cut(EndReason.ASSISTANT_OFFLINE)
            elif watch.link_id in revoked:
                watch.cut(EndReason.LINK_REVOKED)
            elif watch.link_id is None and share_mode != ShareMode.PUBLIC:
                watch.cut(EndReason.MADE_PRIVATE)


async def guarded(stream: AsyncIterator[object], watch: Watch) -> AsyncIterator[object]:
    """Items of `stream` until it ends or `watch` is cut, whichever comes first.

    A cut between two items is seen before the next one is asked for. A cut while the stream is
    silent cancels the waiting task, and the cancellation is taken back here, as `asyncio.timeout`
    does: no task and no `asyncio.wait` per item, which cost more than the rest of a token's way.
    """
    iterator = stream.__aiter__()
    task = asyncio.current_task()
    try:
        while watch.code is None:
            watch.waiting = task
            try:
                item = await iterator.__anext__()
            except StopAsyncIteration:
                return
            except asyncio.CancelledError:
                # Cancelled by the cut alone: the stream ends here. Also by someone else (the
                # guest went away): that cancellation goes on.
                if watch.interrupted and task is not None and task.uncancel() == 0:
                    return
                raise
            finally:
                watch.waiting = None
            if watch.interrupted:
                # The stream swallowed the cancellation; take it back all the same.
                if task is not None:
                    task.uncancel()
                return
            yield item
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
