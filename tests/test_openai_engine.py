"""The `openai` engine, tested for real against a second Portico process's OpenAI-compatible endpoint."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from portico.models import ChatSession, Message
from tests.chat_helpers import parse_events, say
from tests.conftest import Person, key_of, start
from tests.servers import free_port
from tests.upstream import upstream_server

FAQ = "# Parking\nParking is free behind the building.\n# Hours\nWe are open from 9 to 5."


@pytest.fixture
def second_portico(shared_server, app):
    """Another Portico process on loopback, sharing the test database."""
    return shared_server().url


async def test_a_reply_comes_from_the_other_server_streamed(app, client, alice: Person, second_portico):
    upstream = await alice.new_assistant(name="Upstream", knowledge=FAQ)
    assistant = await alice.new_assistant(
        instructions="Be helpful.",
        engine={
            "type": "openai",
            "base_url": f"{second_portico}/v1",
            "model": upstream["public_id"],
            "temperature": 0.2,
        },
    )
    session = (await start(client, public_id=assistant["public_id"])).json()
    events = parse_events((await say(client, session, "Where can I park?", stream=True)).text)
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) > 3
    assert "Parking is free behind the building." in "".join(tokens)
    assert events[-1][0] == "done" and events[-1][1]["tokens_out"] > 0
    # The other side saw one session of channel api with the question in it.
    async with app.state.sessionmaker() as db:
        sessions = list(await db.scalars(select(ChatSession).where(ChatSession.channel == "api")))
        assert len(sessions) == 1 and sessions[0].end_reason == "completed"
        guest = await db.scalar(
            select(Message.content).where(Message.session_id == sessions[0].id, Message.role == "guest")
        )
    assert guest == "Where can I park?"


async def test_the_stored_api_key_opens_a_private_assistant_on_the_other_server(
    app, client, alice: Person, second_portico
):
    upstream = await alice.new_assistant(name="Private upstream", knowledge=FAQ, share="private")
    (link,) = await alice.new_links(upstream["id"], 0)
    engine = {"type": "openai", "base_url": f"{second_portico}/v1", "model": upstream["public_id"]}
    without_key = await alice.new_assistant(engine=engine)
    session = (await start(client, public_id=without_key["public_id"])).json()
    refused = await say(client, session, "When are you open?")
    assert (refused.status_code, refused.json()["error"]["code"]) == (502, "engine_error")

    with_key = await alice.new_assistant(engine={**engine, "api_key": key_of(link)})
    session = (await start(client, public_id=with_key["public_id"])).json()
    reply = await say(client, session, "When are you open?")
    assert "open from 9 to 5" in reply.json()["content"]
    links = (await alice.request("GET", f"/api/v1/assistants/{upstream['id']}/links")).json()
    assert links["items"][0]["sessions_used"] == 1


async def test_upstream_refusals_become_a_guest_sentence(client, alice: Person, second_portico):
    assistant = await alice.new_assistant(
        engine={"type": "openai", "base_url": f"{second_portico}/v1", "model": "no-such-model"}
    )
    session = (await start(client, public_id=assistant["public_id"])).json()
    events = parse_events((await say(client, session, "Hello?", stream=True)).text)
    assert events[-1][0] == "error"
    assert events[-1][1]["code"] == "engine_error"
    assert events[-1][1]["message"] == "The assistant could not answer just now. Please try again in a moment."


async def test_a_slow_upstream_times_out_with_a_clear_error(client, alice: Person, second_portico):
    with upstream_server() as (hanging, _seen):
        stuck = await alice.new_assistant(name="Stuck", engine={"type": "openai", "base_url": hanging, "model": "hang"})
        assistant = await alice.new_assistant(
            engine={"type": "openai", "base_url": f"{second_portico}/v1", "model": stuck["public_id"], "timeout": 1}
        )
        session = (await start(client, public_id=assistant["public_id"])).json()
        began = time.monotonic()
        response = await say(client, session, "Hello?")
        assert (response.status_code, response.json()["error"]["code"]) == (502, "engine_timeout")
        assert time.monotonic() - began < 5


async def test_an_unreachable_server_is_a_clear_error(client, alice: Person):
    closed = f"http://127.0.0.1:{free_port()}/v1"
    assistant = await alice.new_assistant(engine={"type": "openai", "base_url": closed, "model": "m"})
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await say(client, session, "Hello?")
    assert (response.status_code, response.json()["error"]["code"]) == (502, "engine_unreachable")


async def test_instructions_history_and_settings_reach_the_model(client, alice: Person):
    with upstream_server() as (base_url, seen):
        assistant = await alice.new_assistant(
            instructions="Answer like a pirate.",
            knowledge=FAQ,
            engine={
                "type": "openai",
                "base_url": base_url,
                "model": "quick",
                "temperature": 1.5,
                "max_tokens": 64,
                "api_key": "sk-test-123",
            },
        )
        session = (await start(client, public_id=assistant["public_id"])).json()
        await say(client, session, "Where can I park?")
        await say(client, session, "And when are you open?")
    body = seen[-1]["body"]
    assert seen[-1]["authorization"] == "Bearer sk-test-123"
    assert (body["temperature"], body["max_tokens"], body["stream"]) == (1.5, 64, True)
    system, *turns = body["messages"]
    assert system["role"] == "system" and system["content"].startswith("Answer like a pirate.")
    assert "We are open from 9 to 5." in system["content"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    assert turns[0]["content"] == "Where can I park?" and turns[-1]["content"] == "And when are you open?"


async def test_the_model_gets_the_best_passages_under_their_titles_and_the_reply_names_them(client, alice: Person):
    knowledge = (
        "# Parking\nCars park free behind the building.\n# Hours\nWe are open from 9 to 5.\n"
        "# Menu\nWe serve soup and bread.\n# Pets\nDogs are welcome on a lead.\n# Wi-Fi\nThe password is on the menu.\n"
    )
    with upstream_server() as (base_url, seen):
        assistant = await alice.new_assistant(
            knowledge=knowledge, engine={"type": "openai", "base_url": base_url, "model": "quick"}
        )
        session = (await start(client, public_id=assistant["public_id"])).json()
        events = parse_events((await say(client, session, "Where can I leave my car?", stream=True)).text)
    system = seen[-1]["body"]["messages"][0]
    assert system["role"] == "system"
    assert (
        "Knowledge (answer from it when it is relevant):\n### Parking\nCars park free behind the building."
        in system["content"]
    )
    assert "Dogs are welcome" not in system["content"]
    done = next(data for name, data in events if name == "done")
    assert done["sources"][0] == "Parking"
    assert "Pets" not in done["sources"]
    assert all(f"### {title}\n" in system["content"] for title in done["sources"])
