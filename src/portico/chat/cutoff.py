"""Cutting replies that are being streamed when their assistant goes offline or their link is revoked.

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
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from portico.models import Assistant, PrivateLink

log = logging.getLogger("portico.cutoff")
CHANNEL = "portico_cutoff"
POLL_SECONDS = 0.25


@dataclass(eq=False)
class Watch:
    assistant_id: int
    link_id: int | None
    code: str | None = None
    # The task that waits for the stream's next item, while it waits (see `guarded`).
    waiting: asyncio.Task[Any] | None = field(default=None, repr=False)
    interrupted: bool = False

    def cut(self, code: str) -> None:
        if self.code is None:
            self.code = code
            if self.waiting is not None:
                self.interrupted = True
                self.waiting.cancel()


async def announce(db: AsyncSession, *, code: str, assistant_id: int, link_id: int | None = None) -> None:
    """Tell every instance, once this transaction commits, to cut matching streams."""
    if db.bind.dialect.name == "postgresql":
        target = f"link:{link_id}" if link_id is not None else f"assistant:{assistant_id}"
        await db.execute(
            text("SELECT pg_notify(:channel, :payload)"), {"channel": CHANNEL, "payload": f"{target}:{code}"}
        )


class Cutoffs:
    def __init__(self) -> None:
        self._watches: set[Watch] = set()
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    @contextlib.contextmanager
    def watch(self, *, assistant_id: int, link_id: int | None) -> Iterator[Watch]:
        watch = Watch(assistant_id, link_id)
        self._watches.add(watch)
        self._wake.set()
        try:
            yield watch
        finally:
            self._watches.discard(watch)

    def cut(self, target: str, code: str) -> None:
        kind, _, ident = target.partition(":")
        for watch in list(self._watches):
            if (kind == "assistant" and watch.assistant_id == int(ident)) or (
                kind == "link" and watch.link_id == int(ident)
            ):
                watch.cut(code)

    async def start(self, engine: AsyncEngine) -> None:
        runner = self._listen if engine.dialect.name == "postgresql" else self._poll
        self._task = asyncio.create_task(runner(engine), name="portico-cutoffs")

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

    async def _poll(self, engine: AsyncEngine) -> None:
        while True:
            if not self._watches:
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(POLL_SECONDS)
            with contextlib.suppress(Exception):
                await self._check(engine)

    async def _check(self, engine: AsyncEngine) -> None:
        watches = list(self._watches)
        assistant_ids = {w.assistant_id for w in watches}
        link_ids = {w.link_id for w in watches if w.link_id is not None}
        async with AsyncSession(engine) as db:
            stopped = {
                row.id: ("assistant_deleted" if row.deleted_at else "assistant_offline")
                for row in await db.execute(
                    select(Assistant.id, Assistant.status, Assistant.deleted_at).where(Assistant.id.in_(assistant_ids))
                )
                if row.status != "live" or row.deleted_at is not None
            }
            revoked = set()
            if link_ids:
                query = select(PrivateLink.id).where(PrivateLink.id.in_(link_ids), PrivateLink.revoked_at.is_not(None))
                revoked = set(await db.scalars(query))
        for watch in watches:
            if watch.assistant_id in stopped:
                watch.cut(stopped[watch.assistant_id])
            elif watch.link_id in revoked:
                watch.cut("link_revoked")


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
