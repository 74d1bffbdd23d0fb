"""Each of the guest store's writes of several statements is one transaction, on SQLite and on
PostgreSQL: when the database refuses a later statement, nothing of the earlier ones is kept.

The database refuses with a trigger on the table the later statement writes. Where PostgreSQL
writes both in one statement (a data-modifying WITH) the test holds all the same: the store's
promise is the same on both."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from sqlalchemy import text

from portico.chat.growing import StartedReply
from portico.chat.records import DailyCaps, Reply
from portico.chat.store import GuestStore
from portico.kit.crypto import digest, new_token
from portico.models import utcnow
from tests.conftest import Person


@asynccontextmanager
async def refusing(app: Any, table: str, when: str = "true") -> AsyncIterator[None]:
    """The database refuses every row inserted into (or updated in) `table` while this is open."""
    engine = app.state.engine
    if engine.dialect.name == "sqlite":
        condition = when.replace("true", "1")
        made = [
            f"CREATE TRIGGER refuse_{event} BEFORE {event} ON {table} WHEN {condition} "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END"
            for event in ("insert", "update")
        ]
        dropped = ["DROP TRIGGER refuse_insert", "DROP TRIGGER refuse_update"]
    else:
        made = [
            "CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN "
            f"IF {when} THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            f"CREATE TRIGGER refuse BEFORE INSERT OR UPDATE ON {table} FOR EACH ROW EXECUTE FUNCTION refuse()",
        ]
        dropped = [f"DROP TRIGGER refuse ON {table}", "DROP FUNCTION refuse()"]
    await _run(app, made)
    try:
        yield
    finally:
        await _run(app, dropped)


async def _run(app: Any, statements: list[str]) -> None:
    async with app.state.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def _one(app: Any, query: str, **params: object) -> Any:
    async with app.state.engine.connect() as conn:
        return (await conn.execute(text(query), params)).one()


def _start(assistant: dict, **extra: object) -> dict[str, Any]:
    token_digest = digest(new_token("pts_"))
    return {"assistant_id": assistant["id"], "version": 1, "token_digest": token_digest, "now": utcnow(), **extra}


async def _session(store: GuestStore, assistant: dict) -> int:
    return await store.start_session(**_start(assistant, channel="link"))


def _reply(session_id: int) -> Reply:
    return Reply(session_id, "We open at 9.", 5, 20, tokens_in=7, tokens_out=11, error_code=None)


async def _counts(app: Any, session_id: int) -> tuple[int, int, int, int]:
    """The session's running totals and how many messages it has."""
    row = await _one(
        app,
        "SELECT message_count, guest_messages, tokens_out, "
        "(SELECT count(*) FROM messages WHERE session_id = :id) FROM chat_sessions WHERE id = :id",
        id=session_id,
    )
    return tuple(row)  # type: ignore[return-value]


@pytest.mark.parametrize("daily", [DailyCaps(), DailyCaps(sessions=5)], ids=["no quota", "daily quota"])
async def test_a_refused_session_row_takes_no_use_of_its_link(app, alice: Person, daily: DailyCaps):
    """Taking the link's use, then inserting the session (then counting it in the day)."""
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    store: GuestStore = app.state.store
    async with refusing(app, "chat_sessions"):
        with pytest.raises(Exception, match="refused"):
            await store.start_session_taking_use(**_start(assistant, link_id=link["id"], channel="link", daily=daily))
    assert (await _one(app, "SELECT sessions_used FROM private_links WHERE id = :id", id=link["id"]))[0] == 0
    assert (await _one(app, "SELECT count(*) FROM chat_sessions WHERE assistant_id = :id", id=assistant["id"]))[0] == 0


@pytest.mark.parametrize("with_link", [True, False], ids=["private link", "public link"])
async def test_a_refused_count_of_the_day_keeps_neither_the_session_nor_the_use(app, alice: Person, with_link: bool):
    """A start under a daily quota: the use and the session, then today's count, which the database refuses."""
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    store: GuestStore = app.state.store
    daily = DailyCaps(sessions=5)
    async with refusing(app, "daily_usage"):
        with pytest.raises(Exception, match="refused"):
            if with_link:
                await store.start_session_taking_use(
                    **_start(assistant, link_id=link["id"], channel="link", daily=daily)
                )
            else:
                await store.start_session(**_start(assistant, channel="link", daily=daily))
    assert (await _one(app, "SELECT sessions_used FROM private_links WHERE id = :id", id=link["id"]))[0] == 0
    assert (await _one(app, "SELECT count(*) FROM chat_sessions WHERE assistant_id = :id", id=assistant["id"]))[0] == 0


@pytest.mark.parametrize("tokens_per_day", [0, 1000], ids=["no quota", "token quota"])
async def test_a_refused_guest_message_leaves_its_session_uncounted(app, alice: Person, tokens_per_day: int):
    """The session's counters raised, then the message inserted, which the database refuses."""
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    session_id = await _session(store, assistant)
    async with refusing(app, "messages"):
        with pytest.raises(Exception, match="refused"):
            await store.save_guest_message(
                session_id, content="Hello", now=utcnow(), assistant_id=assistant["id"], tokens_per_day=tokens_per_day
            )
    assert await _counts(app, session_id) == (0, 0, 0, 0)


@pytest.mark.parametrize("growing", [False, True], ids=["saved at its end", "saved as it grew"])
async def test_a_refused_reply_leaves_its_session_uncounted(app, alice: Person, growing: bool):
    """The session's totals raised, then the reply inserted (or its row finished), which the database refuses."""
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    session_id = await _session(store, assistant)
    message_id = None
    if growing:
        (message_id,) = await store.save_growing([StartedReply(session_id, "We", utcnow(), 5)], [])
    before = await _counts(app, session_id)
    async with refusing(app, "messages", when="NEW.duration_ms IS NOT NULL"):
        with pytest.raises(Exception, match="refused"):
            await store.save_reply(_reply(session_id), now=utcnow(), message_id=message_id)
    assert await _counts(app, session_id) == before
    assert before[0] == 0


async def test_a_refused_count_of_the_day_s_tokens_keeps_no_reply(app, alice: Person):
    """A reply under a daily token quota: the reply and the session's totals, then today's tokens, refused."""
    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    session_id = await _session(store, assistant)
    async with refusing(app, "daily_usage"):
        with pytest.raises(Exception, match="refused"):
            await store.save_reply(_reply(session_id), now=utcnow(), count_tokens_of=assistant["id"])
    assert await _counts(app, session_id) == (0, 0, 0, 0)
    assert (await _one(app, "SELECT count(*) FROM daily_usage WHERE assistant_id = :id", id=assistant["id"]))[0] == 0


@pytest.mark.sqlite_only
async def test_on_sqlite_each_write_of_several_statements_is_one_hand_off(app, alice: Person, monkeypatch):
    """The statements of one transaction go to aiosqlite's thread together (Tx.at_once), BEGIN and
    COMMIT with them, where one hand-off each took four (issue 22: a hand-off costs the server more
    than the statement). The writes are all made, as the totals say."""
    import aiosqlite

    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    store: GuestStore = app.state.store
    session_id = await _session(store, assistant)
    (message_id,) = await store.save_growing([StartedReply(session_id, "We", utcnow(), 5)], [])
    hand_offs = 0
    real = aiosqlite.Connection._execute

    async def counted(self: Any, fn: Any, *args: Any, **kwargs: Any) -> Any:
        nonlocal hand_offs
        hand_offs += 1
        return await real(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    writes = [
        store.start_session_taking_use(**_start(assistant, link_id=link["id"], channel="link")),
        store.save_guest_message(session_id, content="Hello", now=utcnow(), assistant_id=assistant["id"]),
        store.save_growing([], [(message_id, "We open")]),
        store.save_reply(_reply(session_id), now=utcnow(), message_id=message_id),
    ]
    for write in writes:
        hand_offs = 0
        await write
        assert hand_offs == 1
    monkeypatch.undo()
    assert await _counts(app, session_id) == (2, 1, 11, 2)
    assert (await _one(app, "SELECT sessions_used FROM private_links WHERE id = :id", id=link["id"]))[0] == 1


@pytest.mark.sqlite_only
async def test_on_sqlite_sixteen_requests_at_once_keep_their_connections(app, alice: Person):
    """A connection opened for one of many concurrent requests stays in the pool for the next:
    past SQLAlchemy's default of 5 each one used to be opened (a thread and its pragmas) and closed
    again, request after request (issue 22)."""
    import asyncio

    from sqlalchemy import event

    assistant = await alice.new_assistant()
    store: GuestStore = app.state.store
    session_id = await _session(store, assistant)
    opened = 0

    def count(*_: Any) -> None:
        nonlocal opened
        opened += 1

    event.listen(app.state.engine.sync_engine, "connect", count)
    try:
        await asyncio.gather(*(store.open_session(session_id) for _ in range(16)))
        first = opened
        await asyncio.gather(*(store.open_session(session_id) for _ in range(16)))
    finally:
        event.remove(app.state.engine.sync_engine, "connect", count)
    assert first > 0
    assert opened == first
