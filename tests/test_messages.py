"""Guests send messages and get replies, as JSON or as a stream of events; bad messages are refused."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portico.models import ChatSession, Message
from tests.chat_helpers import bearer, parse_events, say
from tests.conftest import Person, key_of, start
from tests.upstream import upstream_server


async def count_messages(app) -> int:
    async with app.state.sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(Message))


async def test_guest_gets_a_reply_as_json_and_both_messages_are_saved(app, client, alice: Person):
    assistant = await alice.new_assistant(knowledge="# Opening hours\nWe are open from 9 to 5 on weekdays.")
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await say(client, session, "When are you open?")
    assert response.status_code == 200
    reply = response.json()
    assert "open from 9 to 5" in reply["content"]
    assert reply["tokens_in"] > 0 and reply["tokens_out"] > 0
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert [(m["role"], m["content"]) for m in state["messages"]] == [
        ("guest", "When are you open?"),
        ("assistant", reply["content"]),
    ]
    async with app.state.sessionmaker() as db:
        row = await db.get(ChatSession, session["session_id"])
        assert (row.message_count, row.tokens_out) == (2, reply["tokens_out"])
        saved = (await db.scalars(select(Message).where(Message.role == "assistant"))).one()
        assert saved.first_token_ms is not None and saved.duration_ms is not None


async def test_guest_gets_a_reply_as_events(client, alice: Person):
    assistant = await alice.new_assistant(knowledge="# Parking\nParking is free behind the building.")
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await say(client, session, "Where can I park?", stream=True)
    assert response.headers["content-type"].startswith("text/event-stream")
    events = parse_events(response.text)
    tokens = [data["text"] for name, data in events if name == "token"]
    assert len(tokens) > 3
    assert "Parking is free behind the building." in "".join(tokens)
    name, done = events[-1]
    assert name == "done"
    assert set(done) == {"message_id", "tokens_in", "tokens_out", "sources", "answered"}


async def test_the_builtin_engine_says_plainly_when_nothing_matches(client, alice: Person):
    assistant = await alice.new_assistant(knowledge="# Parking\nParking is free behind the building.")
    session = (await start(client, public_id=assistant["public_id"])).json()
    reply = (await say(client, session, "What is the capital of Peru?")).json()
    assert reply["content"].startswith("I'm sorry, I don't have an answer to that")


@pytest.mark.parametrize("content", ["", "   ", "\n\t "])
async def test_empty_messages_are_refused(app, client, alice: Person, content):
    assistant = await alice.new_assistant()
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await say(client, session, content)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert await count_messages(app) == 0


async def test_a_message_over_the_limit_is_refused_and_not_saved(app, client, alice: Person):
    assistant = await alice.new_assistant(settings={"max_message_length": 20})
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await say(client, session, "x" * 21)
    assert response.status_code == 413
    assert response.json()["error"] == {
        "code": "message_too_long",
        "message": "This message is too long: at most 20 characters, please.",
    }
    assert await count_messages(app) == 0
    assert (await say(client, session, "x" * 20)).status_code == 200


async def test_a_message_to_an_ended_session_is_refused(app, client, alice: Person):
    assistant = await alice.new_assistant()
    session = (await start(client, public_id=assistant["public_id"])).json()
    await client.post(f"/api/v1/chat/sessions/{session['session_id']}/end", headers=bearer(session))
    response = await say(client, session, "Hello?")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_ended")
    assert await count_messages(app) == 0


async def test_messages_recheck_the_gate(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    session = (await start(client, key=key_of(link))).json()
    assert (await say(client, session, "Hi")).status_code == 200
    await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
    response = await say(client, session, "Still there?")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "link_revoked")

    other = await alice.new_assistant()
    session = (await start(client, public_id=other["public_id"])).json()
    await alice.request("PUT", f"/api/v1/assistants/{other['id']}/status", json={"status": "offline"})
    response = await say(client, session, "Hello?")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "assistant_offline")


async def test_a_wrong_session_token_is_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    first = (await start(client, public_id=assistant["public_id"])).json()
    second = (await start(client, public_id=assistant["public_id"])).json()
    response = await say(client, {**first, "token": second["token"]}, "Hi")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_session_token")


async def test_an_engine_failure_is_a_clear_error_and_an_entry_in_the_transcript(app, client, alice: Person):
    with upstream_server() as (base_url, _seen):
        assistant = await alice.new_assistant(engine={"type": "openai", "base_url": base_url, "model": "fail"})
        session = (await start(client, public_id=assistant["public_id"])).json()
        response = await say(client, session, "Hello?")
        assert response.status_code == 502
        assert response.json()["error"] == {
            "code": "engine_error",
            "message": "The assistant could not answer just now. Please try again in a moment.",
        }
        events = parse_events((await say(client, session, "Again?", stream=True)).text)
        assert events == [
            ("error", {"code": "engine_error", "message": response.json()["error"]["message"], "message_id": 4})
        ]
    async with app.state.sessionmaker() as db:
        replies = list(await db.scalars(select(Message).where(Message.role == "assistant")))
    assert [r.error_code for r in replies] == ["engine_error", "engine_error"]
    # The session goes on: the guest may try again.
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert state["state"] == "active"


async def test_lookup_session_start_and_resume_tell_the_page_the_published_maximum_length(client, alice: Person):
    # The chat page refuses an over-long message before sending it, so it must know the limit the
    # server applies: the published version's, not a draft's.
    assistant = await alice.new_assistant(settings={"max_message_length": 120})
    path = f"/api/v1/assistants/{assistant['id']}"
    assert (await alice.request("PATCH", path, json={"settings": {"max_message_length": 50}})).status_code == 200
    found = (await client.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]})).json()
    session = (await start(client, public_id=assistant["public_id"])).json()
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert (found["max_message_length"], session["max_message_length"], state["max_message_length"]) == (120, 120, 120)
    assert (await say(client, session, "x" * 120)).status_code == 200
    too_long = await say(client, session, "x" * 121)
    assert (too_long.status_code, too_long.json()["error"]["code"]) == (413, "message_too_long")


async def test_the_page_learns_the_assistant_from_a_key_without_taking_a_use(client, alice: Person):
    assistant = await alice.new_assistant(share="private", greeting="Welcome, class!")
    (link,) = await alice.new_links(assistant["id"], 2)
    for _ in range(3):
        found = (await client.post("/api/v1/chat/lookup", json={"key": key_of(link)})).json()
    assert found == {
        "assistant": {"public_id": assistant["public_id"], "name": "Helper", "description": ""},
        "link": {"name": "User 1", "sessions_left": 2, "uses_message": "Your link has 2 sessions left."},
        "greeting": "Welcome, class!",
        "starters": [],
        "max_message_length": 4_000,
    }
    refused = await client.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "key_required")
