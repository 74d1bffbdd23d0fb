"""A reply being streamed is saved as it grows, so an instance that dies loses at most a second of
it; the sweep marks such a reply `interrupted` with what the guest had seen, and the session goes on."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from portico.chat.sweep import STALE_REPLY_SECONDS, sweep_once
from portico.models import ChatSession, Message
from tests.chat_helpers import bearer, parse_events, say
from tests.conftest import Person, start
from tests.servers import PORTICO, free_port, portico_env
from tests.test_streaming import read_stream
from tests.upstream import SLOW_CHUNKS, upstream_server


@pytest.fixture
def slow_engine():
    with upstream_server() as (base_url, _seen):
        yield {"type": "openai", "base_url": base_url, "model": "slow"}


async def replies(app: object) -> list[Message]:
    async with app.state.sessionmaker() as db:  # type: ignore[attr-defined]
        return list(await db.scalars(select(Message).where(Message.role == "assistant").order_by(Message.id)))


async def first_save(app: object) -> None:
    """Waits (30 s at most) for the reply's first save while it streams: on a loaded machine a fixed
    sleep could end before it, or after the whole reply."""
    deadline = time.monotonic() + 30
    while not any((reply.content or "").strip() for reply in await replies(app)):
        assert time.monotonic() < deadline, "no part of the reply was saved within 30 s"
        await asyncio.sleep(0.05)


async def test_a_long_reply_is_saved_while_it_streams_and_once_in_the_end(app, client, alice: Person, slow_engine):
    assistant = await alice.new_assistant(engine=slow_engine)
    session = (await start(client, public_id=assistant["public_id"])).json()
    streaming = asyncio.create_task(say(client, session, "Talk to me", stream=True))
    await first_save(app)  # the slow model takes 5 s; a save comes at least every second
    (growing,) = await replies(app)
    assert growing.duration_ms is None and growing.saved_at is not None
    assert 0 < len((growing.content or "").split()) < SLOW_CHUNKS
    events = parse_events((await streaming).text)
    assert events[-1][0] == "done"
    (whole,) = await replies(app)
    assert whole.id == growing.id and whole.duration_ms is not None and whole.error_code is None
    assert len((whole.content or "").split()) == SLOW_CHUNKS
    async with app.state.sessionmaker() as db:
        assert (await db.get(ChatSession, session["session_id"])).message_count == 2


async def test_a_killed_instance_leaves_an_interrupted_reply_and_the_session_goes_on(
    app, settings, tmp_path, client, alice: Person, slow_engine
):
    assistant = await alice.new_assistant(engine=slow_engine)
    port = free_port()
    with (tmp_path / "server.log").open("wb") as log:
        server = subprocess.Popen(  # noqa: ASYNC220 - started here so that the test can kill it
            [PORTICO, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=portico_env(settings),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
                deadline = time.monotonic() + 90
                while True:
                    try:
                        await http.get("/healthz")
                        break
                    except httpx.TransportError:
                        assert time.monotonic() < deadline, "portico serve did not start"
                        await asyncio.sleep(0.1)
                session = (await start(http, public_id=assistant["public_id"])).json()
                arrivals: list[tuple[float, str, str]] = []
                reading = asyncio.create_task(read_stream(http, session, "Talk to me", arrivals))
                await first_save(app)
                seen = sum(1 for a in arrivals if a[1] == "token")
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=10)
                with pytest.raises(httpx.HTTPError):
                    await reading
        finally:
            if server.poll() is None:
                server.kill()
                server.wait(timeout=10)
    (orphan,) = await replies(app)
    assert orphan.duration_ms is None and orphan.error_code is None
    saved_words = len((orphan.content or "").split())
    # At most a second behind what the guest saw (the slow model sends 20 words a second).
    assert seen - 25 <= saved_words <= seen
    await sweep_once(app.state.sessionmaker)
    (still,) = await replies(app)
    assert still.error_code is None, "a reply saved less than 30 s ago is not an orphan yet"
    async with app.state.sessionmaker() as db, db.begin():
        await db.execute(
            update(Message)
            .where(Message.id == orphan.id)
            .values(saved_at=orphan.saved_at - timedelta(seconds=STALE_REPLY_SECONDS + 1))
        )
    await sweep_once(app.state.sessionmaker)
    (marked,) = await replies(app)
    assert marked.error_code == "interrupted" and marked.content == orphan.content
    assert marked.duration_ms is not None
    # Another instance (this process) carries the session on.
    state = await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))
    assert state.json()["state"] == "active"
    reply = await say(client, session, "Are you there?")
    assert reply.status_code == 200, reply.text
