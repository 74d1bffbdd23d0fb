"""Logs search (issue 22): PostgreSQL's per-session vectors in a side table, SQLite's FTS5 read newest
first in batches; both find the same sessions, page them, and keep the privacy rules."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import select, text, update

from portico.metrics import search
from portico.metrics.retention import purge_expired
from portico.models import ChatSession, Message, utcnow
from portico.vocabulary import Role
from tests.chat_helpers import say
from tests.conftest import Person, start
from tests.test_logs import FAQ, sessions

WORDS = ("heron", "otter", "lynx", "badger")


async def many_sessions(app, assistant_id: int, count: int) -> dict[int, list[str]]:
    """`count` sessions a minute apart, each with a few messages of random words; their texts by
    session id. Messages are inserted in the order they were saved: a reply's created_at is when it
    started, and it is saved when it ends, up to 10 minutes later, so ids and times cross."""
    rng = random.Random(22)
    now = utcnow()
    texts: dict[int, list[str]] = {}
    pending: list[tuple[object, int, Message]] = []
    async with app.state.sessionmaker() as db:
        for n in range(count):
            started = now - timedelta(minutes=count - n)
            session = ChatSession(
                assistant_id=assistant_id,
                version_number=1,
                channel="link",
                token_digest=f"search-{assistant_id}-{n}",
                started_at=started,
                last_activity_at=started,
            )
            db.add(session)
            await db.flush()
            texts[session.id] = []
            for turn in range(rng.randint(1, 4)):
                content = " ".join(rng.choice(WORDS) for _ in range(rng.randint(0, 2))) + f" filler{turn}"
                reply = turn % 2 == 1
                written = started + timedelta(seconds=20 * turn)
                saved = written + timedelta(seconds=rng.randint(0, 600) if reply else 0)
                role = Role.ASSISTANT if reply else Role.GUEST
                message = Message(session_id=session.id, role=role, content=content, created_at=written, duration_ms=5)
                pending.append((saved, len(pending), message))
                texts[session.id].append(content)
        for _, _, message in sorted(pending, key=lambda p: (p[0], p[1])):
            db.add(message)
            await db.flush()
        await db.commit()
    return texts


async def all_pages(alice: Person, assistant_id: int, q: str, limit: int) -> list[int]:
    found: list[int] = []
    cursor = None
    while True:
        params = {"q": q, "limit": str(limit)} | ({"cursor": cursor} if cursor else {})
        page = await sessions(alice, assistant_id, **params)
        found += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            return found


async def test_search_pages_every_matching_session_newest_first(app, alice: Person, monkeypatch):
    # Tiny batches, so SQLite reads the matches in several growing batches and must stop at the right one.
    monkeypatch.setattr(search, "FIRST_BATCH", 2)
    assistant = await alice.new_assistant(knowledge=FAQ)
    other = await alice.new_assistant(knowledge=FAQ)
    texts = await many_sessions(app, assistant["id"], 60)
    await many_sessions(app, other["id"], 10)
    newest_first = sorted(texts, reverse=True)
    for q in ("heron", "otter lynx", "badger"):
        words = q.split()
        expected = [s for s in newest_first if any(all(w in m.split() for w in words) for m in texts[s])]
        assert expected, q
        assert await all_pages(alice, assistant["id"], q, limit=2) == expected, q
        first = (await sessions(alice, assistant["id"], q=q, limit="5"))["items"]
        assert [i["id"] for i in first] == expected[:5]
    # Words in two different messages of a session are not one match.
    apart = [s for s in newest_first if any("otter" in m for m in texts[s]) and any("lynx" in m for m in texts[s])]
    together = [s for s in newest_first if any("otter" in m and "lynx" in m for m in texts[s])]
    assert set(apart) - set(together), "the data should have sessions with the two words apart"
    assert set(await all_pages(alice, assistant["id"], "otter lynx", limit=50)) == set(together)
    assert (await sessions(alice, assistant["id"], q="zebra"))["items"] == []


async def test_a_reply_is_found_once_finished_and_not_while_it_grows(app, client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    session = (await start(client, public_id=assistant["public_id"])).json()
    sid = session["session_id"]
    async with app.state.sessionmaker() as db:
        message = Message(session_id=sid, role=Role.ASSISTANT, content="partial", created_at=utcnow())
        db.add(message)
        await db.flush()
        await db.execute(update(Message).where(Message.id == message.id).values(content="partial wombat"))
        await db.commit()
        if db.get_bind().dialect.name == "postgresql":
            # The growing reply wrote nothing to the side table.
            assert await db.scalar(text("SELECT count(*) FROM session_search WHERE session_id = :s"), {"s": sid}) == 0
        await db.execute(
            update(Message).where(Message.id == message.id).values(content="the wombat sleeps", duration_ms=900)
        )
        await db.commit()
    assert [i["id"] for i in (await sessions(alice, assistant["id"], q="sleeps"))["items"]] == [sid]
    reply = (await say(client, session, "Where can I park?")).json()
    assert "behind the building" in reply["content"]
    assert [i["id"] for i in (await sessions(alice, assistant["id"], q="park"))["items"]] == [sid]
    assert [i["id"] for i in (await sessions(alice, assistant["id"], q="building"))["items"]] == [sid]


async def test_search_finds_nothing_that_is_not_kept(app, client, alice: Person):
    private = await alice.new_assistant(knowledge=FAQ)
    await alice.request("PATCH", f"/api/v1/assistants/{private['id']}", json={"store_transcripts": False})
    unkept = (await start(client, public_id=private["public_id"])).json()
    await say(client, unkept, "My secret is pangolin")
    assert (await sessions(alice, private["id"], q="pangolin"))["items"] == []
    assert (await sessions(alice, private["id"], q="parking"))["items"] == []

    kept = await alice.new_assistant(knowledge=FAQ)
    old = (await start(client, public_id=kept["public_id"])).json()
    await say(client, old, "An old pangolin")
    async with app.state.sessionmaker() as db:
        await db.execute(
            update(ChatSession)
            .where(ChatSession.id == old["session_id"])
            .values(started_at=utcnow() - timedelta(days=10))
        )
        await db.commit()
    assert [i["id"] for i in (await sessions(alice, kept["id"], q="pangolin"))["items"]] == [old["session_id"]]
    # Another assistant's sessions are never found.
    assert (await sessions(alice, private["id"], q="pangolin"))["items"] == []
    await alice.request("PATCH", f"/api/v1/assistants/{kept['id']}", json={"retention_days": 7})
    async with app.state.sessionmaker() as db:
        assert await purge_expired(db) == 1
        await db.commit()
        if db.get_bind().dialect.name == "postgresql":
            assert await db.scalar(text("SELECT count(*) FROM session_search")) == 0
    assert (await sessions(alice, kept["id"], q="pangolin"))["items"] == []


async def test_the_backfill_fills_older_sessions_in_resumable_batches(app, alice: Person, monkeypatch):
    if app.state.settings.resolved_database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL only: SQLite's FTS5 table follows the messages from migration 0004 on")
    assistant = await alice.new_assistant(knowledge=FAQ)
    texts = await many_sessions(app, assistant["id"], 25)
    expected = [s for s in sorted(texts, reverse=True) if any("heron" in m.split() for m in texts[s])]
    async with app.state.sessionmaker() as db:
        # As a database that had these sessions before migration 0014.
        await db.execute(text("DELETE FROM session_search"))
        await db.execute(text("INSERT INTO session_search_backfill SELECT max(id) + 1 FROM chat_sessions"))
        await db.commit()
    assert (await sessions(alice, assistant["id"], q="heron"))["items"] == []
    async with app.state.sessionmaker() as db:
        left = await search.backfill_batch(db, batch=10)  # the 10 newest; then stopped
        await db.commit()
    assert left == max(texts) - 9
    newest = [s for s in expected if s >= left]
    assert await all_pages(alice, assistant["id"], "heron", limit=3) == newest
    monkeypatch.setattr(search, "BACKFILL_BATCH", 4)
    assert (
        await search.backfill_now(app.state.sessionmaker) == 5
    )  # 15 sessions left: 4 batches, then one that finds none
    assert await all_pages(alice, assistant["id"], "heron", limit=3) == expected
    async with app.state.sessionmaker() as db:
        assert await db.scalar(text("SELECT count(*) FROM session_search_backfill")) == 0
        assert await db.scalar(select(Message.id).limit(1)) is not None
    assert await search.backfill_now(app.state.sessionmaker) == 0
