"""Cutting replies that are being streamed when their assistant goes offline or is deleted, or
their link is revoked, or the assistant is made private (replies on the public link).

A preview (the owner's own test chat) is cut only when its assistant is deleted: a new
assistant is Offline, and its owner previews it all the same.

Each process keeps a table of the streams it is running, by assistant and by link. How it learns
of a change, within a second, on every instance:
- PostgreSQL: the change sends `NOTIFY portico_cutoff` in its own transaction (so it is delivered
  only if the change commits), and every process LISTENs on one dedicated connection. A cut-off
  never depends on one notification arriving: the listener re-reads what it watches whenever it
  (re)connects, and while streams run the database is asked every second as well.
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
_GUEST_ONLY = {EndReason.ASSISTANT_OFFLINE, EndReason.LINK_REVOKED, EndReason.LINK_REISSUED, EndReason.MADE_PRIVATE}
# A reply past its time limit (PORTICO_REPLY_TIMEOUT) is cut with this code.
TIMED_OUT = "engine_timeout"
CHANNEL = "portico_cutoff"
POLL_SECONDS = 0.25
# PostgreSQL: how often the database is asked while streams run, in case a notification was lost.
RECONCILE_SECONDS = 1.0


@dataclass(eq=False)
class Watch:
    assistant_id: int
    link_id: int | None
    preview: bool = False
    session_id: int | None = None
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
        self._tasks: list[asyncio.Task[None]] = []
        self._wake = asyncio.Event()
        self._postgres = False
        self._listening = self._listening_once = False

    @contextlib.contextmanager
    def watch(
        self, *, assistant_id: int, link_id: int | None, preview: bool = False, session_id: int | None = None
    ) -> Iterator[Watch]:
        watch = Watch(assistant_id, link_id, preview, session_id)
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

    @property
    def listening(self) -> bool:
        """Whether this instance hears other instances' cut-offs at once (for /readyz): on
        PostgreSQL while its listener is connected; SQLite has one instance and polls."""
        return self._listening if self._postgres else True

    async def start(self, engine: AsyncEngine, store: GuestStore) -> None:
        self._postgres = engine.dialect.name == "postgresql"
        self._tasks = [asyncio.create_task(self._reconcile(store), name="portico-cutoffs-reconcile")]
        if self._postgres:
            self._tasks.append(asyncio.create_task(self._listen(engine, store), name="portico-cutoffs-listen"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        target, _, code = str(payload).rpartition(":")
        self.cut(target, code)

    async def _listen(self, engine: AsyncEngine, store: GuestStore) -> None:
        """LISTEN on a connection of its own; a dropped connection is noticed at once (asyncpg's
        termination callback), reconnected with backoff, and every reconnect re-reads what the
        running streams watch, since notifications sent meanwhile are lost."""
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        backoff = 0.1
        while True:
            lost = asyncio.Event()
            try:
                conn = await asyncpg.connect(dsn, timeout=5)
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                log.warning("cutoff listener cannot connect (%s); retrying in %.1f s", type(exc).__name__, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                conn.add_termination_listener(lambda _conn, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                if backoff > 0.1 or not self._listening_once:
                    log.info("cutoff listener connected")
                self._listening = self._listening_once = True
                backoff = 0.1
                await self._check_logged(store)
                await lost.wait()
                log.warning("cutoff listener lost its connection; reconnecting")
            finally:
                self._listening = False
                with contextlib.suppress(Exception):
                    await conn.close(timeout=1)

    async def _reconcile(self, store: GuestStore) -> None:
        """While streams run, ask the database what changed: on SQLite how cut-offs arrive (one
        machine, no notifications); on PostgreSQL a safety net beside the listener."""
        every = POLL_SECONDS if not self._postgres else RECONCILE_SECONDS
        while True:
            if not self._watches:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(every)
            await self._check_logged(store)

    async def _check_logged(self, store: GuestStore) -> None:
        if not self._watches:
            return
        try:
            await self._check(store)
        except Exception:
            log.exception("cutoff check failed; trying again shortly")

    async def _check(self, store: GuestStore) -> None:
        watches = list(self._watches)
        assistant_ids = {w.assistant_id for w in watches}
        link_ids = {w.link_id for w in watches if w.link_id is not None}
        link_sessions = {w.session_id for w in watches if w.link_id is not None and w.session_id is not None}
        assistants, revoked, reissued = await store.stopped(
            assistant_ids=assistant_ids, link_ids=link_ids, link_session_ids=link_sessions
        )
        for watch in watches:
            found = assistants.get(watch.assistant_id)
            if found is None:  # no row any more: deleted, and purged since
                watch.cut(EndReason.ASSISTANT_DELETED)
                continue
            status, share_mode, deleted_at = found
            if deleted_at is not None:
                watch.cut(EndReason.ASSISTANT_DELETED)
            elif status != Status.LIVE:
                watch.cut(EndReason.ASSISTANT_OFFLINE)
            elif watch.link_id in revoked:
                watch.cut(EndReason.LINK_REVOKED)
            elif watch.session_id in reissued:
                watch.cut(EndReason.LINK_REISSUED)
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
