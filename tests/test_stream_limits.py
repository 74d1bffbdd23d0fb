"""Every reply ends: at its time limit, and when the guest who asked for it has gone."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from portico.app import create_app
from tests.chat_helpers import bearer, parse_events, say
from tests.conftest import BASE_URL, Person, make_person, start
from tests.upstream import SLOW_CHUNKS, upstream_server


@pytest.fixture
def slow_engine():
    with upstream_server() as (base_url, _seen):
        yield {"type": "openai", "base_url": base_url, "model": "slow"}


async def transcript(owner: Person, assistant_id: int, session_id: int) -> list[dict]:
    response = await owner.request("GET", f"/api/v1/assistants/{assistant_id}/sessions/{session_id}")
    assert response.status_code == 200, response.text
    return response.json()["messages"]


async def test_a_json_reply_stops_and_is_saved_as_disconnected_when_the_guest_leaves(
    shared_server, client, alice: Person, slow_engine
):
    assistant = await alice.new_assistant(engine=slow_engine)
    async with httpx.AsyncClient(base_url=shared_server().url, timeout=30) as http:
        session = (await start(http, public_id=assistant["public_id"])).json()
        left = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            # The guest gives up after a second and a half; the slow model would take five. (Half
            # a second was too short for the first word on a loaded machine: nothing to save.)
            await http.post(
                f"/api/v1/chat/sessions/{session['session_id']}/messages",
                json={"content": "Talk to me"},
                headers=bearer(session),
                timeout=1.5,
            )
        reply = None
        while time.monotonic() - left < 10 and reply is None:
            await asyncio.sleep(0.1)
            messages = await transcript(alice, assistant["id"], session["session_id"])
            reply = next((m for m in messages if m["role"] == "assistant"), None)
    assert reply is not None, "the reply was not saved within 10 s"
    assert reply["error_code"] == "disconnected"
    assert 0 < len(reply["content"].split()) < SLOW_CHUNKS


async def test_a_reply_is_cut_at_its_time_limit(settings, slow_engine):
    app = create_app(settings.model_copy(update={"reply_timeout": 1.0}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            owner = await make_person(app, http, "carol@example.com")
            assistant = await owner.new_assistant(engine=slow_engine)
            session = (await start(http, public_id=assistant["public_id"])).json()
            began = time.monotonic()
            events = parse_events((await say(http, session, "Talk to me", stream=True)).text)
            took = time.monotonic() - began
    assert events[-1][0] == "error" and events[-1][1]["code"] == "engine_timeout"
    assert "took too long" in events[-1][1]["message"]
    assert 0 < sum(1 for name, _ in events if name == "token") < SLOW_CHUNKS
    assert took < 3, f"the reply ran {took:.1f} s past a 1 s limit"
