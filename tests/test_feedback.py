"""Guests rate replies up or down, with a reason and a comment; bad ratings are refused clearly."""

from __future__ import annotations

import httpx
import pytest

from portico.chat.growing import StartedReply
from portico.models import utcnow
from tests.chat_helpers import bearer, say
from tests.conftest import Person, start
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.test_preview import preview_reply
from tests.test_rate_limits import Running, assert_rate_limited, running  # noqa: F401 - a fixture

KNOWLEDGE = "# Opening hours\nWe are open from 9 to 5 on weekdays."


async def a_reply(client: httpx.AsyncClient, alice: Person, **changes: object) -> tuple[dict, int]:
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    if changes:
        assert (await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json=changes)).status_code == 200
    session = (await start(client, public_id=assistant["public_id"])).json()
    reply = (await say(client, session, "When are you open?")).json()
    return session, reply["message_id"]


async def rate(client: httpx.AsyncClient, session: dict, message_id: int, **body: object) -> httpx.Response:
    path = f"/api/v1/chat/sessions/{session['session_id']}/messages/{message_id}/feedback"
    return await client.post(path, json=body, headers=bearer(session))


async def transcript(client: httpx.AsyncClient, session: dict) -> list[dict]:
    state = await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))
    return state.json()["messages"]


def refused(response: httpx.Response) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_a_guest_rates_a_reply_up_and_the_transcript_shows_it(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    response = await rate(client, session, message_id, rating="up")
    assert response.status_code == 200
    assert response.json() == {"message_id": message_id, "rating": "up", "reason": None, "comment": None}
    guest, reply = await transcript(client, session)
    assert (guest["rating"], guest["answered"], guest["sources"]) == (None, None, [])
    assert (reply["rating"], reply["reason"], reply["comment"], reply["answered"]) == ("up", None, None, True)
    assert reply["sources"] == ["Opening hours"]


async def test_a_guest_rates_down_with_a_reason_and_a_comment_then_changes_their_mind(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    down = await rate(client, session, message_id, rating="down", reason="not_answered", comment="  Not on Sundays?  ")
    assert down.json() == {
        "message_id": message_id,
        "rating": "down",
        "reason": "not_answered",
        "comment": "Not on Sundays?",
    }
    assert (await transcript(client, session))[1]["comment"] == "Not on Sundays?"
    up = await rate(client, session, message_id, rating="up")
    assert up.status_code == 200
    reply = (await transcript(client, session))[1]
    assert (reply["rating"], reply["reason"], reply["comment"]) == ("up", None, None)


async def test_a_session_that_has_ended_may_still_be_rated(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    await client.post(f"/api/v1/chat/sessions/{session['session_id']}/end", headers=bearer(session))
    assert (await rate(client, session, message_id, rating="down", reason="wrong")).status_code == 200


async def test_another_sessions_reply_is_not_found(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    other, _ = await a_reply(client, alice)
    assert refused(await rate(client, other, message_id, rating="up")) == (404, "not_found")
    assert refused(await rate(client, session, message_id + 1000, rating="up")) == (404, "not_found")
    assert (await transcript(client, session))[1]["rating"] is None


async def test_a_guests_own_message_cannot_be_rated(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    response = await rate(client, session, message_id - 1, rating="down")
    assert refused(response) == (422, "not_a_reply")
    assert "Only the assistant's replies" in response.json()["error"]["message"]


async def test_a_reply_still_being_written_cannot_be_rated_yet(app, client, alice: Person):
    session, _ = await a_reply(client, alice)
    (streaming,) = await app.state.store.save_growing(
        [StartedReply(session["session_id"], "We are open", utcnow(), 3)], []
    )
    response = await rate(client, session, streaming, rating="up")
    assert refused(response) == (409, "reply_in_progress")


@pytest.mark.parametrize(
    "body",
    [
        {"rating": "up", "comment": "x" * 501},
        {"rating": "down", "comment": "bad\x00byte"},
        {"rating": "down", "reason": "rude"},
        {"rating": "meh"},
        {"rating": None},
        {},
        {"rating": "up", "stars": 5},
        {"rating": "up", "comment": 5},
    ],
)
async def test_a_bad_rating_is_refused_and_nothing_is_saved(client, alice: Person, body):
    session, message_id = await a_reply(client, alice)
    assert refused(await rate(client, session, message_id, **body)) == (422, "invalid_request")
    assert (await transcript(client, session))[1]["rating"] is None


async def test_a_comment_of_500_characters_is_kept_whole(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    response = await rate(client, session, message_id, rating="down", reason="other", comment="é" * 500)
    assert response.json()["comment"] == "é" * 500


async def test_a_wrong_token_or_none_is_refused(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    path = f"/api/v1/chat/sessions/{session['session_id']}/messages/{message_id}/feedback"
    wrong = await client.post(path, json={"rating": "up"}, headers={"Authorization": "Bearer pts_wrong"})
    assert refused(wrong) == (401, "invalid_session_token")
    assert (await client.post(path, json={"rating": "up"})).status_code == 401
    assert (await transcript(client, session))[1]["rating"] is None


async def test_without_transcripts_the_rating_is_kept_but_not_the_comment(client, alice: Person):
    session, message_id = await a_reply(client, alice, store_transcripts=False)
    response = await rate(client, session, message_id, rating="down", reason="unclear", comment="My name is Ann")
    assert response.json() == {"message_id": message_id, "rating": "down", "reason": "unclear", "comment": None}
    assert (await transcript(client, session))[1]["rating"] == "down"


async def test_an_offline_assistant_refuses_ratings_as_it_refuses_messages(client, alice: Person):
    session, message_id = await a_reply(client, alice)
    assistant_id = (await alice.request("GET", "/api/v1/assistants")).json()["items"][0]["id"]
    await alice.request("PUT", f"/api/v1/assistants/{assistant_id}/status", json={"status": "offline"})
    assert refused(await rate(client, session, message_id, rating="up")) == (403, "assistant_offline")


async def test_ratings_are_limited_per_session_apart_from_messages(running: Running):
    async with running(messages="2/minute") as portico:
        alice = await portico.person()
        session, message_id = await a_reply(portico.http, alice)
        assert (await rate(portico.http, session, message_id, rating="up")).status_code == 200
        assert (await rate(portico.http, session, message_id, rating="down")).status_code == 200
        assert_rate_limited(await rate(portico.http, session, message_id, rating="up"))
        # One message was sent: the session has one left, whatever its ratings.
        assert (await say(portico.http, session, "When are you open?")).status_code == 200


async def test_the_owner_tries_the_thumbs_in_the_preview_and_it_is_not_counted(app, alice: Person):
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in(alice.email, "correct horse battery")
        base = f"/dashboard/assistants/{assistant['id']}/preview/sessions"
        events = await preview_reply(web, assistant["id"], "What is the capital of Peru?")
        done = events[-1][1]
        sessions = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions")).json()["items"]
        session_id = sessions[0]["id"]
        feedback = f"{base}/{session_id}/messages/{done['message_id']}/feedback"
        rated = await web.post(feedback, {"rating": "down", "reason": "not_answered", "comment": "Needs Peru"})
        assert rated.json() == {
            "message_id": done["message_id"],
            "rating": "down",
            "reason": "not_answered",
            "comment": "Needs Peru",
        }
        guest = await web.post(f"{base}/{session_id}/messages/{done['message_id'] - 1}/feedback", {"rating": "up"})
        assert (guest.status_code, guest.json()["error"]["code"]) == (422, "not_a_reply")
        bad = await web.post(feedback, {"rating": "sideways"})
        assert (bad.status_code, bad.json()["error"]["code"]) == (422, "invalid_request")
    metrics = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics?period=today")).json()
    assert metrics["totals"]["rated_down"] == 0
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/unanswered")).json()["items"] == []
