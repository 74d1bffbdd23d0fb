"""Engines' lifetimes: made on first use, their openai clients closed when evicted and when the app stops."""

from __future__ import annotations

import subprocess
import sys

import openai

from portico.app import create_app
from portico.engines import EngineRequest, Usage, close_engines, get_engine
from portico.engines.builtin import BuiltinEngine
from portico.engines.openai.engine import ClientPool, OpenAIEngine
from tests.chat_helpers import say
from tests.conftest import Person, start
from tests.upstream import SLOW_CHUNKS, upstream_server


def new_client() -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-unused", max_retries=0)


async def test_an_evicted_client_is_closed_at_once_when_idle_and_after_its_last_reply_when_busy():
    pool = ClientPool(size=1)
    async with pool.lease("a", new_client) as a:
        pass
    async with pool.lease("b", new_client) as b:
        assert a.is_closed() and not b.is_closed()
        async with pool.lease("c", new_client) as c:
            # b is evicted while a reply still uses it: it stays open for that reply.
            assert not b.is_closed() and not c.is_closed()
        assert not b.is_closed()
    assert b.is_closed() and not c.is_closed()
    assert len(pool) == 1
    await pool.aclose()
    assert c.is_closed() and len(pool) == 0


def request(base_url: str, model: str, api_key: str) -> EngineRequest:
    engine = {"type": "openai", "base_url": base_url, "model": model, "timeout": 30}
    return EngineRequest(
        version_key="v1", instructions="", knowledge="", engine=engine, prompt="Hello?", secrets={"api_key": api_key}
    )


async def test_a_reply_keeps_streaming_while_its_client_is_evicted_by_another():
    engine = OpenAIEngine(retriever=BuiltinEngine(), cache_size=1)
    with upstream_server() as (base_url, _seen):
        slow = engine.stream(request(base_url, "slow", "sk-first-key"))
        first = [await anext(slow), await anext(slow)]
        quick = [piece async for piece in engine.stream(request(base_url, "quick", "sk-second-key"))]
        rest = [piece async for piece in slow]
    assert [p for p in quick if isinstance(p, str)] == ["word0 ", "word1 ", "word2 "]
    words = [p for p in first + rest if isinstance(p, str)]
    assert len(words) == SLOW_CHUNKS and isinstance(rest[-1], Usage)
    assert len(engine.clients) == 1
    await engine.aclose()


def test_importing_the_app_makes_no_engine():
    count = (
        "import gc, portico.app; from portico.engines.builtin import BuiltinEngine; "
        "from portico.engines.openai.engine import OpenAIEngine; "
        "print(sum(isinstance(o, (BuiltinEngine, OpenAIEngine)) for o in gc.get_objects()))"
    )
    made = subprocess.run([sys.executable, "-c", count], capture_output=True, text=True, check=True)
    assert made.stdout.strip() == "0"


async def test_stopping_the_app_closes_its_engines_clients(settings, alice: Person, client):
    with upstream_server() as (base_url, _seen):
        assistant = await alice.new_assistant(engine={"type": "openai", "base_url": base_url, "model": "quick"})
        session = (await start(client, public_id=assistant["public_id"])).json()
        assert (await say(client, session, "Hello?")).status_code == 200
    engine = get_engine("openai")
    assert isinstance(engine, OpenAIEngine) and len(engine.clients) == 1
    await close_engines()
    assert len(engine.clients) == 0
    assert get_engine("openai") is not engine
    assert get_engine("openai") is get_engine("openai")


async def test_an_app_that_starts_and_stops_closes_the_clients_it_used(settings):
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        engine = get_engine("openai")
        assert isinstance(engine, OpenAIEngine)
        async with engine.clients.lease("k", new_client) as used:
            pass
    assert used.is_closed()
