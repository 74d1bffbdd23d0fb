"""The owner's preview is its own path: it is never cut when the assistant goes Offline (a new
assistant is Offline, and its owner previews it all the same), only when it is deleted."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.chat_helpers import parse_events, say
from tests.conftest import Person, start
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.upstream import SLOW_CHUNKS, upstream_server


@pytest.fixture
def slow_upstream():
    """The slow engine's settings, and the requests it has been sent (one per reply begun)."""
    with upstream_server() as (base_url, seen):
        yield {"type": "openai", "base_url": base_url, "model": "slow"}, seen


@pytest.fixture
def slow_engine(slow_upstream):
    return slow_upstream[0]


async def replying(seen: list, count: int) -> None:
    """Waits until `count` replies have reached the engine (a fixed sleep is too short on a busy machine)."""
    for _ in range(200):
        if len(seen) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{len(seen)} of {count} replies reached the engine in 10 s")


@pytest.fixture
async def web(app, alice: Person):
    async with dashboard_client(app) as http:
        dashboard = Dashboard(http)
        await dashboard.sign_in(alice.email, "correct horse battery")
        yield dashboard


async def preview_reply(web: Dashboard, assistant_id: int, content: str) -> list[tuple[str, dict]]:
    base = f"/dashboard/assistants/{assistant_id}"
    await web.get(f"{base}/preview")
    started = await web.post(f"{base}/preview/sessions", {"use": "draft"})
    assert started.status_code == 201, started.text
    reply = await web.post(f"{base}/preview/sessions/{started.json()['session_id']}/messages", {"content": content})
    assert reply.status_code == 200, reply.text
    return parse_events(reply.text)


def tokens(events: list[tuple[str, dict]]) -> int:
    return sum(1 for name, _ in events if name == "token")


async def test_the_owner_previews_an_offline_assistant_to_the_end_of_a_slow_reply(web, alice, slow_engine):
    assistant = await alice.new_assistant(publish=False, live=False, engine=slow_engine)
    events = await preview_reply(web, assistant["id"], "Talk to me")
    assert events[-1][0] == "done" and tokens(events) == SLOW_CHUNKS


async def test_going_offline_cuts_the_guest_and_not_the_preview(web, client: httpx.AsyncClient, alice, slow_upstream):
    slow_engine, seen = slow_upstream
    assistant = await alice.new_assistant(engine=slow_engine)
    session = (await start(client, public_id=assistant["public_id"])).json()
    guest = asyncio.create_task(say(client, session, "Talk to me", stream=True))
    preview = asyncio.create_task(preview_reply(web, assistant["id"], "Talk to me"))
    await replying(seen, 2)
    status = f"/api/v1/assistants/{assistant['id']}/status"
    assert (await alice.request("PUT", status, json={"status": "offline"})).status_code == 200
    guest_events = parse_events((await guest).text)
    assert guest_events[-1][0] == "error" and guest_events[-1][1]["code"] == "assistant_offline"
    assert tokens(guest_events) < SLOW_CHUNKS
    preview_events = await preview
    assert preview_events[-1][0] == "done" and tokens(preview_events) == SLOW_CHUNKS
    # And back Live: a new guest session starts and is answered.
    assert (await alice.request("PUT", status, json={"status": "live"})).status_code == 200
    assert (await start(client, public_id=assistant["public_id"])).status_code == 201


async def test_deleting_the_assistant_cuts_its_preview(web, alice, slow_upstream):
    slow_engine, seen = slow_upstream
    assistant = await alice.new_assistant(publish=False, live=False, engine=slow_engine)
    preview = asyncio.create_task(preview_reply(web, assistant["id"], "Talk to me"))
    await replying(seen, 1)
    assert (await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}")).status_code == 204
    events = await asyncio.wait_for(preview, timeout=10)
    assert events[-1][0] == "error" and events[-1][1]["code"] == "assistant_deleted"
    assert tokens(events) < SLOW_CHUNKS
