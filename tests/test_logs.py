"""Logs: every session read back, attributed, filtered, paged stably, exported and purged."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from sqlalchemy import select, text, update

from portico.metrics.retention import purge_expired
from portico.models import Base, ChatSession, Message, utcnow
from tests.chat_helpers import bearer, say
from tests.conftest import Person, key_of, start
from tests.dashboard_helpers import Dashboard, dashboard_client

FAQ = "# Parking\nParking is free behind the building.\n# Hours\nWe are open from 9 to 5."


async def sessions(alice: Person, assistant_id: int, **query: str) -> dict:
    response = await alice.request("GET", f"/api/v1/assistants/{assistant_id}/sessions", params=query)
    assert response.status_code == 200, response.text
    return response.json()


async def chat(client, **start_body) -> dict:
    session = (await start(client, **start_body)).json()
    await say(client, session, "Where can I park?")
    return session


async def test_sessions_are_attributed_to_their_user(app, client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    (link,) = await alice.new_links(assistant["id"], 0)
    await chat(client, public_id=assistant["public_id"])
    await chat(client, key=key_of(link), channel="widget")
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in(alice.email, "correct horse battery")
        await web.get(f"/dashboard/assistants/{assistant['id']}/preview")
        preview = (await web.post(f"/dashboard/assistants/{assistant['id']}/preview/sessions", {"use": "draft"})).json()
        await web.post(
            f"/dashboard/assistants/{assistant['id']}/preview/sessions/{preview['session_id']}/messages",
            {"content": "Hi"},
        )
    items = (await sessions(alice, assistant["id"]))["items"]
    assert [(i["user"], i["channel"], i["version"]) for i in items] == [
        ("Owner preview", "preview", 0),
        ("User 1", "widget", 1),
        ("Anonymous", "link", 1),
    ]
    assert items[1]["messages"] == 2 and items[1]["tokens_out"] > 0
    await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
    assert (await sessions(alice, assistant["id"], user=str(link["id"])))["items"][0]["user"] == "User 1 (deleted)"


async def test_a_transcript_shows_every_message_with_timing_and_errors(client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    session = await chat(client, public_id=assistant["public_id"])
    detail = (
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions/{session['session_id']}")
    ).json()
    guest, reply = detail["messages"]
    assert (guest["role"], guest["content"]) == ("guest", "Where can I park?")
    assert reply["role"] == "assistant" and "Parking is free" in reply["content"]
    assert reply["first_token_ms"] is not None and reply["tokens_out"] > 0 and reply["error_code"] is None
    other = await alice.new_assistant()
    assert (
        await alice.request("GET", f"/api/v1/assistants/{other['id']}/sessions/{session['session_id']}")
    ).status_code == 404


async def test_filters_narrow_the_list(app, client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    links = await alice.new_links(assistant["id"], 0, 0)
    first = await chat(client, key=key_of(links[0]))
    await chat(client, key=key_of(links[1]), channel="widget")
    anonymous = (await start(client, public_id=assistant["public_id"])).json()
    await say(client, anonymous, "When are you open? Bonjour café")
    await client.post(f"/api/v1/chat/sessions/{first['session_id']}/end", headers=bearer(first))
    async with app.state.sessionmaker() as db:
        await db.execute(
            update(ChatSession)
            .where(ChatSession.id == first["session_id"])
            .values(started_at=utcnow() - timedelta(days=3))
        )
        await db.commit()
    aid = assistant["id"]
    ids = lambda result: [i["id"] for i in result["items"]]  # noqa: E731
    assert ids(await sessions(alice, aid, user=str(links[0]["id"]))) == [first["session_id"]]
    assert ids(await sessions(alice, aid, user="anonymous")) == [anonymous["session_id"]]
    assert len(ids(await sessions(alice, aid, channel="widget"))) == 1
    assert ids(await sessions(alice, aid, end_reason="guest")) == [first["session_id"]]
    assert len(ids(await sessions(alice, aid, end_reason="open"))) == 2
    day = (utcnow() - timedelta(days=3)).date().isoformat()
    assert ids(await sessions(alice, aid, **{"from": day, "to": day})) == [first["session_id"]]
    assert ids(await sessions(alice, aid, q="café")) == [anonymous["session_id"]]
    assert ids(await sessions(alice, aid, q="open")) == [anonymous["session_id"]]
    assert ids(await sessions(alice, aid, q="zebra")) == []
    for bad in (
        {"channel": "fax"},
        {"end_reason": "boredom"},
        {"user": "bob"},
        {"from": "yesterday"},
        {"from": "2026-11-10", "to": "2026-11-01"},
        {"cursor": "!!!"},
        {"limit": "0"},
    ):
        response = await alice.request("GET", f"/api/v1/assistants/{aid}/sessions", params=bad)
        assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request", bad


async def test_pages_stay_stable_while_new_sessions_arrive(client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    for _ in range(7):
        await start(client, public_id=assistant["public_id"])
    first = await sessions(alice, assistant["id"], limit="3")
    for _ in range(4):
        await start(client, public_id=assistant["public_id"])
    second = await sessions(alice, assistant["id"], limit="3", cursor=first["next_cursor"])
    third = await sessions(alice, assistant["id"], limit="3", cursor=second["next_cursor"])
    seen = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert seen == [7, 6, 5, 4, 3, 2, 1]
    assert third["next_cursor"] is None


async def test_exports_parse_back_to_the_same_data(client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    (link,) = await alice.new_links(assistant["id"], 0)
    tricky = 'Doe, "Jane"\nÉquipe B'
    await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}", json={"name": tricky})
    session = (await start(client, key=key_of(link))).json()
    await say(client, session, "Où se garer ? 駐車場")
    await chat(client, public_id=assistant["public_id"])
    listed = (await sessions(alice, assistant["id"]))["items"]

    exported = await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [r["user"] for r in rows] == [i["user"] for i in listed] == ["Anonymous", tricky]
    assert [int(r["messages"]) for r in rows] == [i["messages"] for i in listed]

    lines = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions.jsonl")).text.splitlines()
    parsed = [json.loads(line) for line in lines]
    assert [p["id"] for p in parsed] == [i["id"] for i in listed]
    assert parsed[1]["user"] == tricky
    assert parsed[1]["messages"][0]["content"] == "Où se garer ? 駐車場"
    only_link = await alice.request(
        "GET", f"/api/v1/assistants/{assistant['id']}/sessions.csv", params={"user": str(link["id"])}
    )
    assert len(list(csv.DictReader(io.StringIO(only_link.text)))) == 1


async def test_exports_stream_many_sessions_in_batches(app, client, alice: Person):
    from portico.metrics.logs import LogFilters, export_batches

    assistant = await alice.new_assistant(knowledge=FAQ)
    for _ in range(25):
        await start(client, public_id=assistant["public_id"])
    batches = [
        len(b)
        async for b in export_batches(
            app.state.sessionmaker, assistant_id=assistant["id"], filters=LogFilters(), with_messages=True, batch=10
        )
    ]
    assert batches == [10, 10, 5]


async def test_retention_purges_old_sessions_but_metrics_keep_their_counts(app, client, alice: Person):
    from portico.metrics.rollup import recompute

    assistant = await alice.new_assistant(knowledge=FAQ)
    old = await chat(client, public_id=assistant["public_id"])
    recent = await chat(client, public_id=assistant["public_id"])
    async with app.state.sessionmaker() as db:
        await db.execute(
            update(ChatSession)
            .where(ChatSession.id == old["session_id"])
            .values(started_at=utcnow() - timedelta(days=10))
        )
        await db.execute(
            update(Message)
            .where(Message.session_id == old["session_id"])
            .values(created_at=utcnow() - timedelta(days=10))
        )
        await recompute(db, start=utcnow() - timedelta(days=11), end=utcnow() + timedelta(hours=1))
        await db.commit()
    before = (
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics", params={"period": "30d"})
    ).json()
    await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"retention_days": 7})
    async with app.state.sessionmaker() as db:
        assert await purge_expired(db) == 1
        await db.commit()
    remaining = [i["id"] for i in (await sessions(alice, assistant["id"]))["items"]]
    assert remaining == [recent["session_id"]]
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(Message.id).where(Message.session_id == old["session_id"])) is None
    after = (
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics", params={"period": "30d"})
    ).json()
    assert after["totals"]["sessions"] == before["totals"]["sessions"] == 2


async def test_when_transcripts_are_off_messages_are_counted_but_not_kept(client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"store_transcripts": False})
    session = await chat(client, public_id=assistant["public_id"])
    detail = (
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions/{session['session_id']}")
    ).json()
    assert [m["content"] for m in detail["messages"]] == [None, None]
    assert (await sessions(alice, assistant["id"]))["items"][0]["messages"] == 2


async def test_public_sessions_store_nothing_that_identifies_the_guest(app, client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ)
    agent = "Mozilla/5.0 (Quirky-Test-Agent-7731)"
    headers = {"User-Agent": agent, "X-Forwarded-For": "203.0.113.77", "Referer": "https://referrer.example/page"}
    session = (
        await client.post("/api/v1/chat/sessions", json={"public_id": assistant["public_id"]}, headers=headers)
    ).json()
    await client.post(
        f"/api/v1/chat/sessions/{session['session_id']}/messages",
        json={"content": "Hello"},
        headers={**headers, **bearer(session)},
    )
    async with app.state.sessionmaker() as db:
        dump = []
        for table in Base.metadata.sorted_tables:
            dump += [str(tuple(row)) for row in (await db.execute(text(f"SELECT * FROM {table.name}"))).all()]
    everything = "\n".join(dump)
    for trace in ("Quirky-Test-Agent", "203.0.113.77", "127.0.0.1", "testclient", "referrer.example"):
        assert trace not in everything
    columns = {
        c.name for t in Base.metadata.sorted_tables if t.name in ("chat_sessions", "messages") for c in t.columns
    }
    assert not columns & {"ip", "ip_address", "user_agent", "referer", "referrer"}
