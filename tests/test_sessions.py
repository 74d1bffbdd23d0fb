"""Guests start, resume and end sessions; time limits end them with the right end time."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from portico.models import ChatSession, utcnow
from tests.conftest import Person, key_of, start


def bearer(session: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {session['token']}"}


async def test_guest_resumes_a_session_without_taking_another_use(client, alice: Person):
    assistant = await alice.new_assistant(greeting="Hi there")
    (link,) = await alice.new_links(assistant["id"], 1)
    session = (await start(client, key=key_of(link))).json()
    for _ in range(3):
        state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
        assert state["state"] == "active"
        assert state["greeting"] == "Hi there"
        assert state["link"] == {
            "name": "User 1",
            "sessions_left": 0,
            "uses_message": "This is the last session on your link.",
        }
        assert state["channel"] == "link"
    listed = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()
    assert listed["items"][0]["sessions_used"] == 1


async def test_guest_ends_a_session(client, alice: Person):
    assistant = await alice.new_assistant()
    session = (await start(client, public_id=assistant["public_id"], channel="widget")).json()
    path = f"/api/v1/chat/sessions/{session['session_id']}"
    ended = (await client.post(f"{path}/end", headers=bearer(session))).json()
    assert (ended["state"], ended["end_reason"], ended["channel"]) == ("ended", "guest", "widget")
    assert ended["ended_at"] is not None
    again = (await client.post(f"{path}/end", headers=bearer(session))).json()
    assert again["ended_at"] == ended["ended_at"]


async def _age(app, session_id: int, **ages: timedelta) -> None:
    async with app.state.sessionmaker() as db:
        now = utcnow()
        values = {column: now - age for column, age in ages.items()}
        await db.execute(update(ChatSession).where(ChatSession.id == session_id).values(**values))
        await db.commit()


async def test_inactivity_ends_a_session_at_the_moment_it_timed_out(app, client, alice: Person):
    assistant = await alice.new_assistant(settings={"inactivity_timeout": 60})
    session = (await start(client, public_id=assistant["public_id"])).json()
    await _age(app, session["session_id"], last_activity_at=timedelta(seconds=300), started_at=timedelta(seconds=300))
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert (state["state"], state["end_reason"]) == ("ended", "inactivity")
    from datetime import datetime

    started = datetime.fromisoformat(state["started_at"])
    ended = datetime.fromisoformat(state["ended_at"])
    assert ended - started == timedelta(seconds=60)


async def test_maximum_duration_ends_a_busy_session(app, client, alice: Person):
    assistant = await alice.new_assistant(settings={"max_duration": 120})
    session = (await start(client, public_id=assistant["public_id"])).json()
    await _age(app, session["session_id"], started_at=timedelta(seconds=500), last_activity_at=timedelta(seconds=1))
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert (state["state"], state["end_reason"]) == ("ended", "max_duration")


async def test_sessions_use_the_settings_of_the_version_they_started_on(app, client, alice: Person):
    assistant = await alice.new_assistant(settings={"inactivity_timeout": 60})
    session = (await start(client, public_id=assistant["public_id"])).json()
    base = f"/api/v1/assistants/{assistant['id']}"
    await alice.request("PATCH", base, json={"settings": {"inactivity_timeout": 3600}})
    await alice.request("POST", f"{base}/publish")
    await _age(app, session["session_id"], last_activity_at=timedelta(seconds=120))
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert state["end_reason"] == "inactivity"


async def test_the_sweep_ends_forgotten_sessions_with_their_real_end_time(app, client, alice: Person):
    from portico.chat.sweep import end_expired_sessions

    assistant = await alice.new_assistant(settings={"inactivity_timeout": 60})
    forgotten = (await start(client, public_id=assistant["public_id"])).json()
    fresh = (await start(client, public_id=assistant["public_id"])).json()
    await _age(app, forgotten["session_id"], last_activity_at=timedelta(seconds=90))
    async with app.state.sessionmaker() as db:
        assert await end_expired_sessions(db) == 1
        await db.commit()
        ended = await db.get(ChatSession, forgotten["session_id"])
        open_one = await db.get(ChatSession, fresh["session_id"])
    assert ended.end_reason == "inactivity"
    assert ended.ended_at == ended.last_activity_at + timedelta(seconds=60)
    assert open_one.ended_at is None


async def test_a_message_after_the_timeout_is_refused_as_ended(app, client, alice: Person):
    from tests.chat_helpers import say

    assistant = await alice.new_assistant(settings={"inactivity_timeout": 60})
    session = (await start(client, public_id=assistant["public_id"])).json()
    await _age(app, session["session_id"], last_activity_at=timedelta(seconds=61))
    response = await say(client, session, "Are you there?")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_ended")
    async with app.state.sessionmaker() as db:  # ended by the refused message itself
        assert (await db.get(ChatSession, session["session_id"])).end_reason == "inactivity"
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert state["end_reason"] == "inactivity"
