"""Replies saved as they grow, all of a process's together: once per tick, every reply being
streamed that grew since its last save is written by one batch (chat/store.py `save_growing`:
on PostgreSQL one statement, on SQLite one transaction behind the writer queue), so the number
of open streams does not decide how many database connections are busy: one, once a second.

A reply joins the batch of the first tick after its first token; its first save inserts its row
(in progress: no duration), later ones update the text. Its final save (`GuestStore.save_reply`)
is not batched: it finishes the row by its id, or inserts the whole reply when it never had one.
Two rules keep a late batch from losing a final save:
- a reply whose row is being inserted by the batch in flight waits for that batch before its
  final save (so it finishes that row, not a second one);
- a batch's update writes only rows still in progress, so one that reaches the database after a
  reply's final save changes nothing.
An instance that dies loses what its replies got since the last tick: about a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

log = logging.getLogger("portico.chat")

# How often the growing replies are written (and about how much an instance that dies loses).
SAVE_SECONDS = 1.0


@dataclass(frozen=True)
class StartedReply:
    """A reply's first save: the row it is inserted as."""

    session_id: int
    content: str | None
    created_at: datetime
    first_token_ms: int | None


@dataclass(eq=False)
class GrowingReply:
    """A reply as it streams, as the batch writer sees it."""

    session_id: int
    created_at: datetime
    store_text: bool
    parts: list[str] = field(default_factory=list)
    first_token_ms: int | None = None
    message_id: int | None = None
    # How many parts the database has (the last save's), and whether the batch in flight is
    # inserting the reply's row.
    saved: int = 0
    inserting: bool = False

    def content(self) -> str | None:
        return "".join(self.parts) if self.store_text else None


# The store's batch: the rows to insert and the (id, text) to update; the inserted rows' ids, in order.
WriteBatch = Callable[[list[StartedReply], list[tuple[int, str | None]]], Awaitable[list[int]]]


class GrowingReplies:
    """This process's replies being streamed, written together once per tick while there are any."""

    def __init__(self, write: WriteBatch, every: float = SAVE_SECONDS) -> None:
        self._write = write
        self.every = every
        self._replies: dict[GrowingReply, None] = {}  # in order of arrival
        self._ticking: asyncio.Task[None] | None = None
        self._batch: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._replies)

    def track(self, reply: GrowingReply) -> None:
        """Save this reply with the others from the next tick on (call it on its first token)."""
        self._replies[reply] = None
        if self._ticking is None or self._ticking.done():
            self._ticking = asyncio.create_task(self._tick(), name="portico-growing-replies")

    async def untrack(self, reply: GrowingReply) -> int | None:
        """No more batched saves of this reply; its row's id, if it has one, for its final save.
        Waits for the batch in flight when that batch is inserting the reply's row."""
        self._replies.pop(reply, None)
        if reply.inserting and self._batch is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._batch)
        return reply.message_id

    async def close(self) -> None:
        for task in (self._ticking, self._batch):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _tick(self) -> None:
        # At a steady rate: a batch that takes longer than a tick starts the next one at once.
        due = time.monotonic() + self.every
        while self._replies:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            due = max(due + self.every, time.monotonic())
            await self.write_now()

    async def write_now(self) -> None:
        """One batch: every tracked reply that grew since its last save."""
        self._batch = asyncio.create_task(self._write_batch())
        # Shielded: a reply's final save may be waiting on this batch when the tick is cancelled.
        await asyncio.shield(self._batch)

    async def _write_batch(self) -> None:
        started: list[GrowingReply] = []
        rows: list[StartedReply] = []
        grown: list[tuple[GrowingReply, int]] = []
        updates: list[tuple[int, str | None]] = []
        for reply in self._replies:
            count = len(reply.parts)
            if count == reply.saved or reply.inserting:
                continue
            if reply.message_id is None:
                reply.inserting = True
                started.append(reply)
                rows.append(StartedReply(reply.session_id, reply.content(), reply.created_at, reply.first_token_ms))
            else:
                grown.append((reply, count))
                updates.append((reply.message_id, reply.content()))
            reply.saved = count  # optimistic: set back below when the batch fails
        if not rows and not updates:
            return
        try:
            ids = await self._write(rows, updates)
        except Exception as exc:  # noqa: BLE001 - the next tick tries again; the final save does not depend on it
            log.warning("saving %d growing replies failed: %s", len(rows) + len(updates), type(exc).__name__)
            for reply in started:
                reply.saved = 0
            for reply, _count in grown:
                reply.saved = 0
            return
        finally:
            for reply in started:
                reply.inserting = False
        for reply, message_id in zip(started, ids, strict=True):
            reply.message_id = message_id
