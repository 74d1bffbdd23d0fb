"""Replies saved as they grow are saved together: every growing reply of a process in one batch
per tick (one statement on PostgreSQL, one transaction on SQLite), on one pooled connection however
many replies stream; and a reply's final save is never lost or overwritten by a batch."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text

from portico.chat.growing import GrowingReplies, GrowingReply, StartedReply
from portico.chat.records import Reply
from portico.chat.store import GuestStore
from portico.kit.crypto import digest, new_token
from portico.models import utcnow
from tests.conftest import Person

MANY = 60


async def _sessions(store: GuestStore, assistant: dict, count: int) -> list[int]:
    return [
        await store.start_session(
            assistant_id=assistant["id"],
            version=1,
            channel="link",
            token_digest=digest(new_token("pts_")),
            now=utcnow(),
        )
        for _ in range(count)
    ]


async def _rows(app: Any, ids: list[int]) -> dict[int, dict[str, Any]]:
    """The replies' rows, with the transaction that last wrote each on PostgreSQL (`xmin`)."""
    xmin = ", xmin::text AS xmin" if app.state.engine.dialect.name == "postgresql" else ""
    query = f"SELECT id, content, duration_ms, saved_at, error_code{xmin} FROM messages WHERE id IN ({','.join(map(str, ids))})"
    async with app.state.engine.connect() as conn:
        return {row["id"]: dict(row) for row in (await conn.execute(text(query))).mappings()}


class Checkouts:
    """How many times connections are taken from the engine's pool."""

    def __init__(self, app: Any) -> None:
        self.count = 0
        self._pool = app.state.engine.sync_engine.pool
        event.listen(self._pool, "checkout", self._taken)

    def _taken(self, *_: object) -> None:
        self.count += 1

    def close(self) -> None:
        event.remove(self._pool, "checkout", self._taken)


def _reply(session_id: int, content: str) -> Reply:
    return Reply(session_id, content, 5, 900, tokens_in=7, tokens_out=11, error_code=None)


async def test_many_growing_replies_are_saved_in_one_batch_on_one_connection_per_tick(app, alice: Person):
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    sessions = await _sessions(store, assistant, MANY)
    growing = GrowingReplies(store.save_growing, every=3600)  # ticks by hand (write_now)
    replies = [GrowingReply(session_id, utcnow(), store_text=True, parts=["Hello"]) for session_id in sessions]
    for reply in replies:
        growing.track(reply)
    checkouts = Checkouts(app)
    try:
        await growing.write_now()  # inserts every row
        assert checkouts.count == 1
        ids = [reply.message_id for reply in replies]
        assert None not in ids and len(set(ids)) == MANY
        for reply in replies[::2]:
            reply.parts.append(f" from {reply.session_id}")
        await growing.write_now()  # updates the half that grew
        assert checkouts.count == 2
        await growing.write_now()  # nothing grew: no batch
        assert checkouts.count == 2
    finally:
        checkouts.close()
        await growing.close()
    rows = await _rows(app, ids)  # type: ignore[arg-type]
    for index, reply in enumerate(replies):
        row = rows[reply.message_id]  # type: ignore[index]
        assert row["content"] == ("Hello" if index % 2 else f"Hello from {reply.session_id}")
        assert row["duration_ms"] is None and row["saved_at"] is not None
    async with app.state.engine.connect() as conn:
        owners = (
            await conn.execute(text(f"SELECT id, session_id FROM messages WHERE id IN ({','.join(map(str, ids))})"))
        ).all()  # type: ignore[arg-type]
    assert {message_id: session_id for message_id, session_id in owners} == {
        r.message_id: r.session_id for r in replies
    }
    if app.state.engine.dialect.name == "postgresql":
        # One statement: every row inserted, and every row updated, by one transaction.
        assert len({rows[reply.message_id]["xmin"] for reply in replies[1::2]}) == 1  # type: ignore[index]
        assert len({rows[reply.message_id]["xmin"] for reply in replies[::2]}) == 1  # type: ignore[index]


async def test_a_late_batch_never_overwrites_a_final_save(app, alice: Person):
    """A batch read the reply's text before its final save and reaches the database after it."""
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    (session_id,) = await _sessions(store, assistant, 1)
    (message_id,) = await store.save_growing([StartedReply(session_id, "We open", utcnow(), 5)], [])
    stale = [(message_id, "We open at")]
    await store.save_reply(_reply(session_id, "We open at 9."), now=utcnow(), message_id=message_id)
    await store.save_growing([], stale)
    row = (await _rows(app, [message_id]))[message_id]
    assert row["content"] == "We open at 9." and row["duration_ms"] == 900 and row["error_code"] is None


async def test_a_reply_ending_while_the_batch_inserts_its_row_finishes_that_row(app, alice: Person):
    """The final save waits for the batch in flight that is inserting the reply's row, and then
    finishes that row: one row, with the whole reply, not a second one."""
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    (session_id,) = await _sessions(store, assistant, 1)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_write(started: list[StartedReply], grown: list[tuple[int, str | None]]) -> list[int]:
        entered.set()
        await release.wait()
        return await store.save_growing(started, grown)

    growing = GrowingReplies(slow_write, every=3600)
    reply = GrowingReply(session_id, utcnow(), store_text=True, parts=["We"])
    growing.track(reply)
    batch = asyncio.create_task(growing.write_now())
    await entered.wait()
    ending = asyncio.create_task(growing.untrack(reply))
    await asyncio.sleep(0.05)
    assert not ending.done(), "the final save went ahead while its row was being inserted"
    release.set()
    message_id = await ending
    await batch
    assert message_id is not None
    await store.save_reply(_reply(session_id, "We open at 9."), now=utcnow(), message_id=message_id)
    await growing.close()
    async with app.state.engine.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT content, duration_ms FROM messages WHERE session_id = :id"), {"id": session_id}
            )
        ).all()
    assert [tuple(row) for row in rows] == [("We open at 9.", 900)]


async def test_a_failed_batch_is_tried_again_at_the_next_tick(app, alice: Person):
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    (session_id,) = await _sessions(store, assistant, 1)
    failures = [RuntimeError("the database went away")]

    async def flaky_write(started: list[StartedReply], grown: list[tuple[int, str | None]]) -> list[int]:
        if failures:
            raise failures.pop()
        return await store.save_growing(started, grown)

    growing = GrowingReplies(flaky_write, every=3600)
    reply = GrowingReply(session_id, utcnow(), store_text=True, parts=["We"])
    growing.track(reply)
    await growing.write_now()
    assert reply.message_id is None and not reply.inserting
    await growing.write_now()
    await growing.close()
    assert reply.message_id is not None
    assert (await _rows(app, [reply.message_id]))[reply.message_id]["content"] == "We"


async def test_the_tick_saves_a_tracked_reply_and_stops_when_none_is_left(app, alice: Person):
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    (session_id,) = await _sessions(store, assistant, 1)
    growing = GrowingReplies(store.save_growing, every=0.05)
    reply = GrowingReply(session_id, utcnow(), store_text=False, parts=["We"])
    growing.track(reply)
    for _ in range(200):
        if reply.message_id is not None:
            break
        await asyncio.sleep(0.02)
    assert reply.message_id is not None
    assert (await _rows(app, [reply.message_id]))[reply.message_id]["content"] is None  # transcripts off
    assert await growing.untrack(reply) == reply.message_id
    await asyncio.sleep(0.2)
    assert len(growing) == 0 and growing._ticking is not None and growing._ticking.done()
    await growing.close()
