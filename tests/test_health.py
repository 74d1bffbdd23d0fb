"""Operators' view of an instance: /healthz, /readyz, a pool that says `busy` instead of failing, and a
cut-off that survives a dropped listener connection."""

from __future__ import annotations

import asyncio
import sqlite3
import time

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url, text

from portico.app import create_app
from tests.conftest import BASE_URL, Person, make_person, start
from tests.servers import portico_server
from tests.test_streaming import read_stream
from tests.upstream import upstream_server


async def ready(http: httpx.AsyncClient, within: float = 10) -> httpx.Response:
    deadline = time.monotonic() + within
    while True:
        response = await http.get("/readyz")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        await asyncio.sleep(0.05)


async def test_a_live_instance_is_healthy_and_ready(client: httpx.AsyncClient):
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    response = await ready(client)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "migrations": "ok", "cutoff_listener": "ok"},
    }


async def test_an_instance_behind_on_migrations_is_not_ready(app, client: httpx.AsyncClient):
    await ready(client)
    async with app.state.engine.begin() as conn:
        head = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
        await conn.execute(text("UPDATE alembic_version SET version_num = '0001'"))
    try:
        response = await client.get("/readyz")
    finally:
        # The PostgreSQL database outlives this test (its tables are emptied, not rebuilt).
        async with app.state.engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["migrations"].startswith("not current")
    assert body["checks"]["database"] == "ok"


@pytest.fixture
def pg_settings(settings):
    if not settings.resolved_database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL only: SQLite has no connection pool to exhaust and no listener")
    return settings


async def test_an_exhausted_pool_answers_busy_never_500(pg_settings):
    app = create_app(pg_settings.model_copy(update={"db_pool_size": 1, "db_max_overflow": 0, "db_pool_timeout": 0.01}))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            owner = await make_person(app, http, "carol@example.com")
            assistant = await owner.new_assistant()
            answers = await asyncio.gather(*(start(http, public_id=assistant["public_id"]) for _ in range(64)))
    statuses = {response.status_code for response in answers}
    assert statuses <= {201, 503} and 503 in statuses, statuses
    busy = next(response for response in answers if response.status_code == 503)
    assert busy.json()["error"]["code"] == "busy" and busy.headers["Retry-After"] == "1"


async def test_a_stream_is_cut_within_a_second_across_a_dropped_listener(pg_settings, tmp_path, alice: Person):
    with upstream_server() as (base_url, _seen):
        assistant = await alice.new_assistant(engine={"type": "openai", "base_url": base_url, "model": "slow"})
        with portico_server(pg_settings, tmp_path / "server.log") as url:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                readiness = await ready(http)
                assert readiness.status_code == 200, readiness.text
                session = (await start(http, public_id=assistant["public_id"])).json()
                arrivals: list[tuple[float, str, str]] = []
                reading = asyncio.create_task(read_stream(http, session, "Talk to me", arrivals))
                while not any(a[1] == "token" for a in arrivals):
                    await asyncio.sleep(0.02)
                conn = await asyncpg.connect(pg_settings.resolved_database_url)
                try:
                    dropped = await conn.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE query = 'LISTEN \"portico_cutoff\"' AND pid <> pg_backend_pid()"
                    )
                finally:
                    await conn.close()
                assert dropped >= 1
                # Within the next 200 ms the owner switches Offline through another instance (this process).
                await asyncio.sleep(0.1)
                await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
                acted = time.monotonic()
                await asyncio.wait_for(reading, timeout=10)
    last_time, last_event, last_data = arrivals[-1]
    assert last_event == "error" and "assistant_offline" in last_data
    assert last_time - acted < 1.0, f"cut after {last_time - acted:.2f} s"


@pytest.mark.sqlite_only
async def test_readyz_on_sqlite_answers_while_a_write_transaction_is_held(settings, client: httpx.AsyncClient):
    """Another process (the CLI, a chore, a second server) holding SQLite's write lock does not make
    this instance look unready: /readyz reads without taking the lock."""
    await ready(client)
    path = make_url(settings.resolved_database_url).database
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE alembic_version SET version_num = version_num")
        began = time.monotonic()
        response = await client.get("/readyz")
        assert response.status_code == 200, response.text
        assert time.monotonic() - began < 1.5
    finally:
        writer.execute("ROLLBACK")
        writer.close()
