"""Replies stream token by token from a real server, and are cut within a second when the owner
switches the assistant offline or deletes the link, from another instance."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest

from tests.chat_helpers import bearer
from tests.conftest import Person, key_of, start
from tests.upstream import upstream_server


@pytest.fixture
def slow_upstream():
    with upstream_server() as (base_url, seen):
        yield base_url


@pytest.fixture
async def server(shared_server, app):
    async with httpx.AsyncClient(base_url=shared_server().url, timeout=30) as http:
        yield http


async def read_stream(
    http: httpx.AsyncClient, session: dict, content: str, arrivals: list[tuple[float, str, str]]
) -> None:
    headers = {**bearer(session), "Accept": "text/event-stream"}
    path = f"/api/v1/chat/sessions/{session['session_id']}/messages"
    async with http.stream("POST", path, json={"content": content}, headers=headers) as response:
        assert response.status_code == 200
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                arrivals.append((time.monotonic(), event or "message", line[5:].strip()))


async def test_reply_tokens_arrive_one_by_one(server, alice: Person, slow_upstream):
    assistant = await alice.new_assistant(engine={"type": "openai", "base_url": slow_upstream, "model": "slow"})
    session = (await start(server, public_id=assistant["public_id"])).json()
    arrivals: list[tuple[float, str, str]] = []
    await read_stream(server, session, "Talk to me", arrivals)
    tokens = [a for a in arrivals if a[1] == "token"]
    assert len(tokens) == 100
    assert tokens[-1][0] - tokens[0][0] > 2, "tokens were buffered, not streamed"
    assert arrivals[-1][1] == "done"


@pytest.mark.parametrize("action", ["offline", "revoke", "reissue"])
async def test_a_streamed_reply_is_cut_within_a_second(server, client, alice: Person, slow_upstream, action):
    assistant = await alice.new_assistant(engine={"type": "openai", "base_url": slow_upstream, "model": "slow"})
    (link,) = await alice.new_links(assistant["id"], 0)
    session = (await start(server, key=key_of(link))).json()
    arrivals: list[tuple[float, str, str]] = []
    reading = asyncio.create_task(read_stream(server, session, "Talk to me", arrivals))
    while not any(a[1] == "token" for a in arrivals):
        await asyncio.sleep(0.02)
    # The owner acts through another instance (this test process), not the streaming server.
    if action == "offline":
        await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
        expected = "assistant_offline"
    elif action == "revoke":
        await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
        expected = "link_revoked"
    else:
        await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}/reissue")
        expected = "link_reissued"
    acted = time.monotonic()
    await asyncio.wait_for(reading, timeout=5)
    last_time, last_event, last_data = arrivals[-1]
    assert last_event == "error" and expected in last_data
    assert last_time - acted < 1.0, f"cut after {last_time - acted:.2f} s"
    assert sum(1 for a in arrivals if a[1] == "token") < 100
    state = await server.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))
    if action == "reissue":  # the link lives on, with a new key: its old session is over
        assert (state.json()["state"], state.json()["end_reason"]) == ("ended", "link_reissued")
    else:
        assert state.status_code == 403


async def test_a_reply_still_waiting_for_its_first_token_is_cut_within_a_second(
    server, client, alice: Person, slow_upstream
):
    assistant = await alice.new_assistant(engine={"type": "openai", "base_url": slow_upstream, "model": "hang"})
    session = (await start(server, public_id=assistant["public_id"])).json()
    arrivals: list[tuple[float, str, str]] = []
    reading = asyncio.create_task(read_stream(server, session, "Hello?", arrivals))
    # The model never answers: give the request time to reach it.
    await asyncio.sleep(0.5)
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
    acted = time.monotonic()
    await asyncio.wait_for(reading, timeout=5)
    last_time, last_event, last_data = arrivals[-1]
    assert [a[1] for a in arrivals] == ["error"] and "assistant_offline" in last_data
    assert last_time - acted < 1.0, f"cut after {last_time - acted:.2f} s"


async def test_tokens_made_at_once_go_out_in_one_write_as_separate_events(app, alice: Person):
    # The built-in engine has its whole answer at once: its words are still separate `token`
    # events, but the server writes them together instead of once each (chat/http.py).
    writes: list[bytes] = []

    async def counted(scope, receive, send):  # type: ignore[no-untyped-def]
        async def sending(message):  # type: ignore[no-untyped-def]
            if scope["path"].endswith("/messages") and message["type"] == "http.response.body" and message["body"]:
                writes.append(message["body"])
            await send(message)

        await app(scope, receive, sending)

    knowledge = (
        "## Opening hours\n\nThe library is open from nine in the morning to five in the afternoon, every weekday."
    )
    assistant = await alice.new_assistant(knowledge=knowledge)
    transport = httpx.ASGITransport(app=counted)
    async with httpx.AsyncClient(transport=transport, base_url="http://portico.test") as http:
        session = (await start(http, public_id=assistant["public_id"])).json()
        headers = {**bearer(session), "Accept": "text/event-stream"}
        path = f"/api/v1/chat/sessions/{session['session_id']}/messages"
        answer = await http.post(path, json={"content": "When is the library open?"}, headers=headers)
    assert answer.status_code == 200
    events = [block for block in answer.text.split("\r\n\r\n") if block.strip()]
    tokens = [e for e in events if e.startswith("event: token")]
    assert len(tokens) >= 10, events
    assert events[-1].startswith("event: done")
    assert "".join(json.loads(e.split("data: ", 1)[1])["text"] for e in tokens).startswith("The library is open")
    assert len(writes) <= 3, f"{len(tokens)} tokens took {len(writes)} writes"
