"""Voice (issue 23): a guest's spoken message is transcribed, dropped, and answered like a typed one.

Recordings are made here by espeak-ng and sox; the built-in speech-to-text (Whisper tiny.en) is the
real one, loaded once per process, and transcribes one utterance per database. The `openai`
provider is checked against a real server on loopback. Every bad recording gets a clear error in
the guest's language and leaves nothing stored.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from portico.app import create_app
from portico.engines import EngineError
from portico.engines.speech import engine as speech_engine
from portico.models import Message
from tests.chat_helpers import bearer, parse_events, say
from tests.conftest import BASE_URL, Person, make_person, start
from tests.servers import free_port

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")

SPOKEN = "Where can I park my car?"
KNOWLEDGE = "# Parking\nParking is free behind the building."
VOICE_ON = {"input": True}
# The `slow` speech server answers once this is set.
SLOW = threading.Event()


@pytest.fixture(scope="module")
def recordings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("voice")
    subprocess.run(["espeak-ng", "-w", str(folder / "park.wav"), SPOKEN], check=True)
    # 16-bit zeros: 2 s of silence, and 61 s (over the 60 s limit, under 2 MB at 8 kHz).
    for name, rate, seconds in (("silence", 16_000, 2), ("long", 8_000, 61)):
        sox = ["sox", "-n", "-r", str(rate), "-b", "16", "-c", "1", str(folder / f"{name}.wav"), "trim", "0"]
        subprocess.run([*sox, str(seconds)], check=True)
    return {path.stem: path.read_bytes() for path in Path(folder).glob("*.wav")}


def words(text: str) -> list[str]:
    return re.sub(r"[^a-z ]", "", text.lower()).split()


async def voice_assistant(owner: Person, **voice: object) -> dict:
    return await owner.new_assistant(knowledge=KNOWLEDGE, voice={**VOICE_ON, **voice})


async def speak(client, session: dict, audio: bytes, content_type: str = "audio/wav", **headers: str):
    return await client.post(
        f"/api/v1/chat/sessions/{session['session_id']}/utterances",
        content=audio,
        headers={**bearer(session), "Content-Type": content_type, **headers},
    )


async def stored(app) -> list[Message]:
    async with app.state.sessionmaker() as db:
        return list(await db.scalars(select(Message).order_by(Message.id)))


async def test_a_spoken_question_is_heard_word_for_word_and_answered_as_events(app, client, alice: Person, recordings):
    assistant = await voice_assistant(alice)
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await speak(client, session, recordings["park"], "audio/wav", Accept="text/event-stream")
    assert response.status_code == 200, response.text
    events = parse_events(response.text)
    name, heard = events[0]
    assert name == "heard"
    assert words(heard["text"]) == words(SPOKEN)
    assert 1_000 < heard["audio_ms"] < 3_000
    assert "Parking is free behind the building." in "".join(d["text"] for n, d in events if n == "token")
    assert events[-1][0] == "done"
    guest, reply = await stored(app)
    assert (guest.role, guest.content, guest.audio_ms) == ("guest", heard["text"], heard["audio_ms"])
    assert reply.audio_ms is None and "Parking is free" in (reply.content or "")
    # The transcript says which message was spoken, and how long it was.
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert [m["audio_ms"] for m in state["messages"]] == [heard["audio_ms"], None]


# -- the openai provider, against a real server on loopback -----------------------------------


async def transcriptions(request: Request):  # type: ignore[no-untyped-def]
    form = await request.form()
    upload = form["file"]
    seen = {
        "authorization": request.headers.get("authorization"),
        "model": form["model"],
        "filename": upload.filename,  # type: ignore[union-attr]
        "content_type": upload.content_type,  # type: ignore[union-attr]
        "audio": await upload.read(),  # type: ignore[union-attr]
    }
    request.app.state.seen.append(seen)
    if form["model"] == "garbage":
        return HTMLResponse("<!doctype html><p>Sign in to the Wi-Fi</p>")
    if form["model"] == "fail":
        return JSONResponse({"error": {"message": "crashed"}}, status_code=500)
    if form["model"] == "slow":
        while not SLOW.is_set():
            await asyncio.sleep(0.02)
    if form["model"] == "mute":
        return JSONResponse({"text": "  "})
    return JSONResponse({"text": SPOKEN})


@contextmanager
def speech_server() -> Iterator[tuple[str, list[dict]]]:
    app = Starlette(routes=[Route("/v1/audio/transcriptions", transcriptions, methods=["POST"])])
    app.state.seen = []
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{port}/v1", app.state.seen
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def openai_stt(base_url: str, model: str = "whisper-1", **more: object) -> dict:
    return {"speech_to_text": {"type": "openai", "base_url": base_url, "model": model, **more}}


async def test_the_openai_provider_sends_the_recording_as_multipart_with_its_key(app, client, alice, recordings):
    with speech_server() as (base_url, seen):
        assistant = await voice_assistant(alice, **openai_stt(base_url, api_key="sk-speech-123"))
        assert assistant["draft"]["voice"]["speech_to_text"] == {
            "type": "openai",
            "base_url": base_url,
            "model": "whisper-1",
            "timeout": 30.0,
            "has_api_key": True,
        }
        session = (await start(client, public_id=assistant["public_id"])).json()
        response = await speak(client, session, recordings["park"], "audio/wav")
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["heard"] == SPOKEN and "Parking is free" in reply["content"]
    assert reply["audio_ms"] > 1_000
    [request] = seen
    assert request["authorization"] == "Bearer sk-speech-123"
    assert (request["model"], request["filename"], request["content_type"]) == (
        "whisper-1",
        "utterance.wav",
        "audio/wav",
    )
    assert request["audio"] == recordings["park"]
    assert [m.audio_ms for m in await stored(app)] == [reply["audio_ms"], None]


@pytest.mark.parametrize("model", ["garbage", "fail", "down"])
async def test_a_speech_server_down_or_answering_garbage_is_a_clear_error(app, client, alice, recordings, model):
    with speech_server() as (base_url, seen):
        if model == "down":
            base_url = f"http://127.0.0.1:{free_port()}/v1"
        assistant = await voice_assistant(alice, **openai_stt(base_url, model))
        session = (await start(client, public_id=assistant["public_id"])).json()
        response = await speak(client, session, recordings["park"], Accept_Language="de")
    assert response.status_code == 502
    assert response.json()["error"]["code"] == "speech_unavailable"
    assert await stored(app) == []


async def test_a_transcription_with_no_words_is_nothing_heard(app, client, alice, recordings):
    with speech_server() as (base_url, _):
        assistant = await voice_assistant(alice, **openai_stt(base_url, "mute"))
        session = (await start(client, public_id=assistant["public_id"])).json()
        response = await speak(client, session, recordings["park"])
    assert (response.status_code, response.json()["error"]["code"]) == (422, "nothing_heard")
    assert await stored(app) == []


# -- bad recordings: refused before any transcription -----------------------------------------


@pytest.mark.parametrize(
    ("recording", "content_type", "status", "code"),
    [
        ("not audio", "audio/wav", 422, "audio_unreadable"),
        ("empty", "audio/webm;codecs=opus", 422, "audio_empty"),
        ("silence", "audio/wav", 422, "nothing_heard"),
        ("long", "audio/wav", 413, "audio_too_large"),
        ("big", "audio/ogg", 413, "audio_too_large"),
        ("truncated", "audio/wav", 422, "audio_unreadable"),
        ("park", "text/plain", 415, "audio_type"),
        ("park", "application/json", 415, "audio_type"),
    ],
)
async def test_bad_recordings_get_a_clear_error_and_nothing_is_stored(
    app, client, alice, recordings, recording, content_type, status, code
):
    made = {
        "not audio": b"This is a text file, not a recording." * 10,
        "empty": b"",
        "big": b"\0" * 2_000_001,
        "truncated": recordings["park"][:100],
    }
    audio = made[recording] if recording in made else recordings[recording]
    assistant = await voice_assistant(alice)
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await speak(client, session, audio, content_type)
    assert (response.status_code, response.json()["error"]["code"]) == (status, code), response.text
    assert await stored(app) == []


async def test_errors_are_in_the_guests_language(client, alice, recordings):
    assistant = await voice_assistant(alice)
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await speak(client, session, recordings["silence"], **{"Accept-Language": "de"})
    assert response.status_code == 422
    assert response.json()["error"]["message"].startswith("In dieser Aufnahme war nichts zu hören")


async def test_voice_off_and_an_ended_session_are_refused(app, client, alice, recordings):
    silent = await alice.new_assistant(knowledge=KNOWLEDGE)
    assert silent["draft"]["voice"]["input"] is False
    session = (await start(client, public_id=silent["public_id"])).json()
    response = await speak(client, session, recordings["park"])
    assert (response.status_code, response.json()["error"]["code"]) == (403, "voice_off")

    talking = await voice_assistant(alice)
    session = (await start(client, public_id=talking["public_id"])).json()
    assert (await client.post(f"/api/v1/chat/sessions/{session['session_id']}/end", headers=bearer(session))).is_success
    response = await speak(client, session, recordings["park"])
    assert (response.status_code, response.json()["error"]["code"]) == (409, "session_ended")
    response = await speak(client, {**session, "token": "wrong"}, b"x")
    assert response.status_code == 401
    assert await stored(app) == []


@pytest.mark.sqlite_only
async def test_a_full_speech_pool_answers_busy_with_retry_after(client, alice, recordings):
    assistant = await voice_assistant(alice)
    session = (await start(client, public_id=assistant["public_id"])).json()
    pool, speech_engine._pool = speech_engine._pool, speech_engine.SpeechPool(workers=1, queue=0)
    release = threading.Event()
    try:
        held = asyncio.ensure_future(speech_engine.speech_pool().run(release.wait, 10))
        await asyncio.sleep(0.05)
        response = await speak(client, session, recordings["silence"])
        assert (response.status_code, response.json()["error"]["code"]) == (503, "busy")
        assert response.headers["Retry-After"] == "2"
    finally:
        release.set()
        await held
        speech_engine._pool = pool


@pytest.mark.sqlite_only
async def test_the_pool_takes_workers_and_queue_and_refuses_more():
    pool = speech_engine.SpeechPool(workers=1, queue=1)
    release = threading.Event()
    jobs = [asyncio.ensure_future(pool.run(release.wait, 10)) for _ in range(2)]
    await asyncio.sleep(0.05)
    with pytest.raises(EngineError) as refused:
        await pool.run(release.wait, 10)
    assert refused.value.code == "busy"
    release.set()
    assert await asyncio.gather(*jobs) == [True, True]
    assert await pool.run(len, "abc") == 3  # its places are free again


# -- the owner's settings ---------------------------------------------------------------------


async def test_voice_settings_are_checked_with_clear_errors(alice: Person):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}"
    for bad, field in [
        ({"silence_ms": 100}, "silence_ms"),
        ({"silence_ms": 3_001}, "silence_ms"),
        ({"press_seconds": 11}, "press_seconds"),
        ({"turn_end": "shout"}, "turn_end"),
        ({"speech_to_text": {"type": "cloud"}}, "speech_to_text"),
        ({"speech_to_text": {"type": "openai", "base_url": "http://169.254.169.254/v1"}}, "base_url"),
    ]:
        response = await alice.request("PATCH", base, json={"voice": bad})
        assert response.status_code == 422, (bad, response.text)
        assert field in response.text
    patched = await alice.request(
        "PATCH", base, json={"voice": {"input": True, "turn_end": "press", "press_seconds": 4, "voice_name": "Anna"}}
    )
    voice = patched.json()["draft"]["voice"]
    assert voice == {
        "input": True,
        "turn_end": "press",
        "silence_ms": 800,
        "press_seconds": 4,
        "spoken_replies": False,
        "voice_name": "Anna",
        "speech_to_text": {"type": "builtin", "base_url": None, "model": None, "timeout": None, "has_api_key": None},
    }
    # Published with the version, like the greeting.
    changes = (await alice.request("GET", f"{base}/draft/diff")).json()["changes"]
    shown = {change["field"]: (change["before"], change["after"]) for change in changes}
    assert shown["voice.input"] == ("no", "yes")
    assert shown["voice.turn_end"] == ("silence", "press")
    assert shown["voice.voice_name"] == ("(none)", "Anna")


async def test_voice_is_published_with_the_version(client, alice: Person, recordings):
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    base = f"/api/v1/assistants/{assistant['id']}"
    assert (await alice.request("PATCH", base, json={"voice": VOICE_ON})).status_code == 200
    session = (await start(client, public_id=assistant["public_id"])).json()
    # Not yet published: the session's version has voice off.
    response = await speak(client, session, recordings["silence"])
    assert response.json()["error"]["code"] == "voice_off"
    assert (await alice.request("POST", f"{base}/publish")).status_code == 201
    session = (await start(client, public_id=assistant["public_id"])).json()
    response = await speak(client, session, recordings["silence"])
    assert response.json()["error"]["code"] == "nothing_heard"


async def test_a_draft_that_cannot_hear_its_guests_is_not_published(alice: Person):
    assistant = await alice.new_assistant(publish=False, voice={"input": True, "speech_to_text": {"type": "openai"}})
    publish = await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/publish")
    assert publish.status_code == 422
    assert "voice.speech_to_text.base_url" in publish.text
    base = f"/api/v1/assistants/{assistant['id']}"
    await alice.request("PATCH", base, json={"voice": {"speech_to_text": {"type": "builtin"}}})
    await alice.request("PATCH", base, json={"settings": {"language": "de"}})
    publish = await alice.request("POST", f"{base}/publish")
    assert publish.status_code == 422 and "hears English only" in publish.text


async def test_a_recording_sent_without_its_length_is_cut_at_the_limit(app, client, alice, recordings):
    assistant = await voice_assistant(alice)
    session = (await start(client, public_id=assistant["public_id"])).json()

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"\0" * 64_000  # 2.56 MB in all, with no Content-Length

    response = await client.post(
        f"/api/v1/chat/sessions/{session['session_id']}/utterances",
        content=chunks(),
        headers={**bearer(session), "Content-Type": "audio/ogg"},
    )
    assert (response.status_code, response.json()["error"]["code"]) == (413, "audio_too_large")
    assert "at most 60 seconds" in response.json()["error"]["message"]
    assert await stored(app) == []


async def test_the_speech_servers_key_is_never_shown_and_stays_with_its_host(alice: Person):
    assistant = await alice.new_assistant(voice=openai_stt("http://127.0.0.1:9/v1", api_key="sk-speech-secret"))
    base = f"/api/v1/assistants/{assistant['id']}"
    assert "sk-speech-secret" not in str(assistant)
    assert assistant["draft"]["voice"]["speech_to_text"]["has_api_key"] is True
    # Another path on the same server keeps the key; another host drops it.
    moved = await alice.request("PATCH", base, json={"voice": openai_stt("http://127.0.0.1:9/other/v1")})
    assert moved.json()["draft"]["voice"]["speech_to_text"]["has_api_key"] is True
    moved = await alice.request("PATCH", base, json={"voice": openai_stt("http://127.0.0.2:9/v1")})
    assert moved.json()["draft"]["voice"]["speech_to_text"]["has_api_key"] is False
    diff = (await alice.request("GET", f"{base}/draft/diff")).json()
    assert "sk-speech-secret" not in str(diff)
    [stt] = [change for change in diff["changes"] if change["field"] == "voice.speech_to_text"]
    assert stt["note"] == "Changed: api_key, base_url"  # the key dropped with its host


async def test_spoken_and_typed_messages_share_the_sessions_rate_limit(settings, recordings):
    app = create_app(settings.model_copy(update={"rate_messages": "2/minute"}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            alice = await make_person(app, http, "alice@example.com")
            assistant = await voice_assistant(alice)
            session = (await start(http, public_id=assistant["public_id"])).json()
            assert (await say(http, session, "Where can I park?")).status_code == 200
            assert (await speak(http, session, recordings["silence"])).status_code == 422
            refused = await speak(http, session, recordings["silence"])
            assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")
            assert "Retry-After" in refused.headers


async def test_an_assistant_switched_offline_mid_transcription_takes_no_message(app, client, alice, recordings):
    SLOW.clear()
    with speech_server() as (base_url, seen):
        assistant = await voice_assistant(alice, **openai_stt(base_url, "slow"))
        session = (await start(client, public_id=assistant["public_id"])).json()
        sending = asyncio.ensure_future(speak(client, session, recordings["park"]))
        while not seen:
            await asyncio.sleep(0.02)
        status = f"/api/v1/assistants/{assistant['id']}/status"
        assert (await alice.request("PUT", status, json={"status": "offline"})).status_code == 200
        SLOW.set()
        response = await sending
    assert (response.status_code, response.json()["error"]["code"]) == (403, "assistant_offline"), response.text
    assert await stored(app) == []
