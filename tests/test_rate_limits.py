"""Rate limits: each one answers 429 with Retry-After past its count, resets after its window, counts
the real client behind a trusted proxy only, is shared through Redis, survives Redis going away,
and a limited request writes nothing to the database."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis.asyncio
from sqlalchemy import text

from portico.app import create_app
from portico.config import Settings, SettingsError, load_settings
from portico.models import Base
from tests.chat_helpers import bearer, say
from tests.conftest import BASE_URL, IN_CI, Person, key_of, make_person, start
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.servers import free_port

# One Redis database per pytest-xdist worker: the tests flush theirs, and must not flush another's.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
REDIS_URL = os.environ.get("PORTICO_TEST_REDIS_URL", f"redis://127.0.0.1:6379/{5 + int(_WORKER or 0) % 10}")
RATE_SETTINGS = ["session_starts", "lookups", "messages", "failed_secrets", "assistant_starts"]


class Portico:
    def __init__(self, app: object, http: httpx.AsyncClient) -> None:
        self.app = app
        self.http = http

    async def person(self, email: str = "alice@example.com") -> Person:
        return await make_person(self.app, self.http, email)


Running = Callable[..., AbstractAsyncContextManager[Portico]]


@pytest.fixture
def running(settings: Settings) -> Running:
    """An app on the test database with some settings changed (the rate limits, Redis)."""

    @asynccontextmanager
    async def run(**changes: object) -> AsyncIterator[Portico]:
        changes = {(f"rate_{k}" if k in RATE_SETTINGS else k): v for k, v in changes.items()}
        app = create_app(settings.model_copy(update=changes))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
                yield Portico(app, http)

    return run


@pytest.fixture
async def clean_redis() -> AsyncIterator[str]:
    client = redis.asyncio.Redis.from_url(REDIS_URL)
    try:
        await client.flushdb()
    except redis.RedisError as exc:
        await client.aclose()
        if IN_CI:
            pytest.fail(f"Redis is not reachable at {REDIS_URL} ({exc}); CI=true makes these tests mandatory.")
        pytest.skip(f"Redis is not reachable at {REDIS_URL} ({exc}); set PORTICO_TEST_REDIS_URL or start Redis.")
    yield REDIS_URL
    await client.flushdb()
    await client.aclose()


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert "try again in" in response.json()["error"]["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_session_starts_are_limited_per_address(running: Running):
    async with running(session_starts="3/minute") as portico:
        alice = await portico.person()
        first = await alice.new_assistant()
        second = await alice.new_assistant()
        for _ in range(3):
            assert (await start(portico.http, public_id=first["public_id"])).status_code == 201
        # The address is out of starts, whichever assistant it asks for.
        assert_rate_limited(await start(portico.http, public_id=second["public_id"]))


async def test_an_assistants_starts_are_limited_whoever_asks(running: Running):
    async with running(assistant_starts="2/minute", trusted_proxies="127.0.0.1") as portico:
        alice = await portico.person()
        busy = await alice.new_assistant()
        other = await alice.new_assistant()

        async def start_from(address: str, public_id: str) -> httpx.Response:
            headers = {"X-Forwarded-For": address}
            return await portico.http.post("/api/v1/chat/sessions", json={"public_id": public_id}, headers=headers)

        assert (await start_from("203.0.113.1", busy["public_id"])).status_code == 201
        assert (await start_from("203.0.113.2", busy["public_id"])).status_code == 201
        assert_rate_limited(await start_from("203.0.113.3", busy["public_id"]))
        assert (await start_from("203.0.113.3", other["public_id"])).status_code == 201


async def test_a_private_links_starts_are_limited_when_only_its_key_is_given(running: Running):
    async with running(assistant_starts="2/minute") as portico:
        alice = await portico.person()
        assistant = await alice.new_assistant()
        link, other = await alice.new_links(assistant["id"], 0, 0)
        for _ in range(2):
            assert (await start(portico.http, key=key_of(link))).status_code == 201
        assert_rate_limited(await start(portico.http, key=key_of(link)))
        assert (await start(portico.http, key=key_of(other))).status_code == 201


async def test_lookups_are_limited_per_address(running: Running):
    async with running(lookups="3/minute") as portico:
        assistant = await (await portico.person()).new_assistant()
        for _ in range(3):
            response = await portico.http.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]})
            assert response.status_code == 200
        assert_rate_limited(await portico.http.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]}))


async def test_messages_are_limited_per_session(running: Running):
    async with running(messages="2/minute") as portico:
        assistant = await (await portico.person()).new_assistant()
        session = (await start(portico.http, public_id=assistant["public_id"])).json()
        other = (await start(portico.http, public_id=assistant["public_id"])).json()
        for _ in range(2):
            assert (await say(portico.http, session, "When are you open?")).status_code == 200
        assert_rate_limited(await say(portico.http, session, "When are you open?"))
        assert (await say(portico.http, other, "When are you open?")).status_code == 200


async def test_the_openai_compatible_endpoint_counts_as_session_starts(running: Running):
    async with running(session_starts="2/minute") as portico:
        assistant = await (await portico.person()).new_assistant()
        body = {"model": assistant["public_id"], "messages": [{"role": "user", "content": "Hours?"}]}
        for _ in range(2):
            assert (await portico.http.post("/v1/chat/completions", json=body)).status_code == 200
        assert_rate_limited(await portico.http.post("/v1/chat/completions", json=body))


async def test_guessing_keys_locks_the_address_out_even_with_a_right_key(running: Running):
    async with running(failed_secrets="3/minute") as portico:
        assistant = await (await portico.person()).new_assistant()
        for guess in range(3):
            response = await start(portico.http, key=f"ptk_{guess:043d}")
            assert response.json()["error"]["code"] == "link_invalid"
        assert_rate_limited(await start(portico.http, public_id=assistant["public_id"]))
        assert_rate_limited(await portico.http.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]}))


async def test_guessing_public_ids_counts_as_failed_secrets(running: Running):
    async with running(failed_secrets="2/minute") as portico:
        for guess in ("nope-1", "nope-2"):
            response = await portico.http.post("/api/v1/chat/lookup", json={"public_id": guess})
            assert response.status_code == 404
        assert_rate_limited(await portico.http.post("/api/v1/chat/lookup", json={"public_id": "nope-3"}))


async def test_wrong_session_tokens_count_as_failed_secrets(running: Running):
    async with running(failed_secrets="2/minute") as portico:
        assistant = await (await portico.person()).new_assistant()
        session = (await start(portico.http, public_id=assistant["public_id"])).json()
        wrong = {**session, "token": "pts_" + "x" * 43}
        for _ in range(2):
            assert (await say(portico.http, wrong, "hello")).status_code == 401
        assert_rate_limited(await say(portico.http, session, "hello"))
        path = f"/api/v1/chat/sessions/{session['session_id']}"
        assert_rate_limited(await portico.http.get(path, headers=bearer(session)))


async def test_wrong_owner_tokens_count_as_failed_secrets_but_never_lock_out_a_right_one(running: Running):
    async with running(failed_secrets="2/minute") as portico:
        alice = await portico.person()
        stranger = Person(email="", token="pto_" + "x" * 43, http=portico.http)
        for _ in range(2):
            assert (await stranger.request("GET", "/api/v1/assistants")).status_code == 401
        assert_rate_limited(await stranger.request("GET", "/api/v1/assistants"))
        assert_rate_limited(await start(portico.http, key="ptk_" + "0" * 43))
        # Alice shares the stranger's address (one NAT, one proxy): her token and her dashboard work.
        assert (await alice.request("GET", "/api/v1/assistants")).status_code == 200
        async with dashboard_client(portico.app) as http:
            web = Dashboard(http)
            assert (await web.sign_in(alice.email, "correct horse battery")).status_code == 303
            assert (await web.get("/dashboard")).status_code == 200


async def test_x_forwarded_for_from_a_proxy_not_trusted_is_warned_about_once(
    running: Running, caplog: pytest.LogCaptureFixture
):
    async with running(session_starts="100/minute") as portico:
        assistant = await (await portico.person()).new_assistant()
        await forwarded_starts(portico, assistant["public_id"], "203.0.113.1", "203.0.113.2")
        warnings = [r.getMessage() for r in caplog.records if "X-Forwarded-For" in r.getMessage()]
        assert len(warnings) == 1 and "PORTICO_TRUSTED_PROXIES" in warnings[0]
        assert "203.0.113" not in warnings[0] and "127.0.0.1" not in warnings[0]
    caplog.clear()
    async with running(trusted_proxies="127.0.0.1") as portico:
        assistant = await (await portico.person("bob@example.com")).new_assistant()
        await forwarded_starts(portico, assistant["public_id"], "203.0.113.1")
        assert not [r for r in caplog.records if "X-Forwarded-For" in r.getMessage()]


async def test_right_secrets_do_not_count_as_failed(running: Running):
    async with running(failed_secrets="2/minute") as portico:
        alice = await portico.person()
        assistant = await alice.new_assistant()
        for _ in range(5):
            assert (await alice.request("GET", "/api/v1/assistants")).status_code == 200
            assert (await start(portico.http, public_id=assistant["public_id"])).status_code == 201


async def test_a_limit_resets_after_its_window(running: Running):
    async with running(session_starts="2/second") as portico:
        assistant = await (await portico.person()).new_assistant()
        for _ in range(2):
            assert (await start(portico.http, public_id=assistant["public_id"])).status_code == 201
        refused = await start(portico.http, public_id=assistant["public_id"])
        assert_rate_limited(refused)
        assert refused.headers["Retry-After"] == "1"
        await asyncio.sleep(1.1)
        assert (await start(portico.http, public_id=assistant["public_id"])).status_code == 201


async def forwarded_starts(portico: Portico, public_id: str, *chains: str) -> list[int]:
    codes = []
    for chain in chains:
        response = await portico.http.post(
            "/api/v1/chat/sessions", json={"public_id": public_id}, headers={"X-Forwarded-For": chain}
        )
        codes.append(response.status_code)
    return codes


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(running: Running):
    async with running(session_starts="1/minute") as portico:
        assistant = await (await portico.person()).new_assistant()
        codes = await forwarded_starts(portico, assistant["public_id"], "203.0.113.1", "203.0.113.2")
        assert codes == [201, 429]


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client(running: Running):
    async with running(session_starts="1/minute", trusted_proxies="10.0.0.0/8, 127.0.0.1") as portico:
        assistant = await (await portico.person()).new_assistant()
        codes = await forwarded_starts(portico, assistant["public_id"], "203.0.113.1", "203.0.113.2, 10.1.2.3")
        assert codes == [201, 201]
        # Whatever a client writes left of the address our proxy saw is not believed.
        codes = await forwarded_starts(portico, assistant["public_id"], "198.51.100.1, 203.0.113.1")
        assert codes == [429]


async def test_bad_rate_settings_refuse_to_start_naming_the_variable(monkeypatch):
    for name in RATE_SETTINGS:
        variable = f"PORTICO_RATE_{name.upper()}"
        for value in ("lots", "30/fortnight", "0/minute", "5/second;10/minute"):
            monkeypatch.setenv(variable, value)
            with pytest.raises(SettingsError, match=variable):
                load_settings()
        monkeypatch.delenv(variable)
    for variable, value in (("PORTICO_REDIS_URL", "localhost:6379"), ("PORTICO_TRUSTED_PROXIES", "10.0.0.0/8, me")):
        monkeypatch.setenv(variable, value)
        with pytest.raises(SettingsError, match=variable):
            load_settings()
        monkeypatch.delenv(variable)


def test_the_defaults_are_the_documented_ones(monkeypatch):
    for name in RATE_SETTINGS + ["redis_url", "trusted_proxies"]:
        monkeypatch.delenv(f"PORTICO_{name.upper()}", raising=False)
    settings = Settings()
    assert (
        settings.rate_session_starts,
        settings.rate_lookups,
        settings.rate_messages,
        settings.rate_failed_secrets,
        settings.rate_assistant_starts,
    ) == ("30/minute", "120/minute", "20/minute", "20/10minutes", "600/minute")
    assert (settings.redis_url, settings.trusted_proxy_networks) == ("", ())


async def everything(app: object) -> dict[str, list[tuple]]:
    async with app.state.engine.connect() as conn:  # type: ignore[attr-defined]
        return {
            table.name: sorted(map(tuple, (await conn.execute(text(f"SELECT * FROM {table.name}"))).all()), key=repr)
            for table in Base.metadata.sorted_tables
        }


async def test_a_limited_request_writes_nothing_to_the_database(running: Running):
    async with running(failed_secrets="1/minute", lookups="1/minute") as portico:
        alice = await portico.person()
        assistant = await alice.new_assistant()
        (link,) = await alice.new_links(assistant["id"], 5)
        await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
        # One lookup of the offline assistant is counted in Metrics (a write); the next is limited.
        lookup = {"key": key_of(link), "count": True}
        assert (await portico.http.post("/api/v1/chat/lookup", json=lookup)).status_code == 403
        before = await everything(portico.app)
        assert_rate_limited(await portico.http.post("/api/v1/chat/lookup", json=lookup))
        assert await everything(portico.app) == before
        # A wrong key uses up the failed secrets; then even the right key takes no use.
        await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "live"})
        assert (await start(portico.http, key="ptk_" + "0" * 43)).status_code == 403
        before = await everything(portico.app)
        assert_rate_limited(await start(portico.http, key=key_of(link)))
        assert await everything(portico.app) == before


async def test_two_instances_on_one_redis_share_a_limit(running: Running, clean_redis: str):
    async with (
        running(session_starts="3/minute", redis_url=clean_redis) as one,
        running(session_starts="3/minute", redis_url=clean_redis) as two,
    ):
        assistant = await (await one.person()).new_assistant()
        codes = [(await start(instance.http, public_id=assistant["public_id"])).status_code for instance in (one, two)]
        codes += [(await start(instance.http, public_id=assistant["public_id"])).status_code for instance in (one, two)]
        assert codes == [201, 201, 201, 429]


async def test_guesses_on_two_instances_are_counted_together(running: Running, clean_redis: str):
    async with (
        running(failed_secrets="2/minute", redis_url=clean_redis) as one,
        running(failed_secrets="2/minute", redis_url=clean_redis) as two,
    ):
        guesses = [f"ptk_{guess:043d}" for guess in range(4)]
        assert (await start(one.http, key=guesses[0])).status_code == 403
        assert (await start(two.http, key=guesses[1])).status_code == 403
        assert_rate_limited(await start(one.http, key=guesses[2]))
        assert_rate_limited(await start(two.http, key=guesses[3]))


async def test_redis_holds_no_client_address(running: Running, clean_redis: str):
    async with running(trusted_proxies="127.0.0.1", redis_url=clean_redis) as portico:
        assistant = await (await portico.person()).new_assistant()
        headers = {"X-Forwarded-For": "203.0.113.77"}
        response = await portico.http.post(
            "/api/v1/chat/sessions", json={"public_id": assistant["public_id"]}, headers=headers
        )
        assert response.status_code == 201
    client = redis.asyncio.Redis.from_url(clean_redis)
    keys = [key.decode() for key in await client.keys("*")]
    await client.aclose()
    assert any("session-starts" in key for key in keys)
    assert not any("203.0.113" in key or "127.0.0.1" in key for key in keys)


def redis_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "Redis" in r.getMessage()]


async def test_an_unreachable_redis_falls_back_to_memory_and_says_so_once(
    running: Running, caplog: pytest.LogCaptureFixture
):
    caplog.set_level(logging.INFO, logger="portico")
    closed = f"redis://127.0.0.1:{free_port()}/0"
    async with running(session_starts="3/minute", redis_url=closed) as portico:
        assistant = await (await portico.person()).new_assistant()
        codes = [(await start(portico.http, public_id=assistant["public_id"])).status_code for _ in range(4)]
        assert codes == [201, 201, 201, 429]
    assert len(redis_warnings(caplog)) == 1


@asynccontextmanager
async def own_redis(tmp_path: Path, port: int) -> AsyncIterator[asyncio.subprocess.Process]:
    """A redis-server of this test's own, on `port`; the test may stop it early."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    process = await asyncio.create_subprocess_exec(
        *(
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(tmp_path),
        ),
        stdout=asyncio.subprocess.DEVNULL,
    )
    try:
        client = redis.asyncio.Redis(port=port)
        deadline = time.monotonic() + 10
        while True:
            try:
                await client.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                await asyncio.sleep(0.05)
        await client.aclose()
        yield process
    finally:
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), 10)


async def limit_keys(port: int) -> list[bytes]:
    client = redis.asyncio.Redis(port=port)
    keys = await client.keys("*session-starts*")
    await client.aclose()
    return keys


async def test_redis_stopped_mid_run_then_back_refuses_no_guest(
    running: Running, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch
):
    from portico.access import ratelimit

    monkeypatch.setattr(ratelimit, "REDIS_RETRY_SECONDS", 0.2)
    caplog.set_level(logging.INFO, logger="portico")
    port = free_port()
    async with (
        own_redis(tmp_path, port) as server,
        running(session_starts="100/minute", redis_url=f"redis://127.0.0.1:{port}/0") as portico,
    ):
        assistant = await (await portico.person()).new_assistant()
        public_id = assistant["public_id"]
        assert (await start(portico.http, public_id=public_id)).status_code == 201
        assert await limit_keys(port)
        assert redis_warnings(caplog) == []

        server.terminate()
        await asyncio.wait_for(server.wait(), 10)
        for _ in range(3):
            assert (await start(portico.http, public_id=public_id)).status_code == 201
            await asyncio.sleep(0.1)
        assert len(redis_warnings(caplog)) == 1

        async with own_redis(tmp_path, port):
            await asyncio.sleep(0.3)
            assert (await start(portico.http, public_id=public_id)).status_code == 201
            assert any("Redis answers again" in r.getMessage() for r in caplog.records)
            assert await limit_keys(port)
