"""Background chores log their failures with a traceback and keep running."""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select, text

from portico.kit.chores import run_every
from portico.metrics.rollup import rollup_forever
from portico.models import UsageHourly
from tests.conftest import Person, start

REFUSE_ROLLUP = {
    "sqlite": [
        "CREATE TRIGGER refuse_rollup BEFORE INSERT ON usage_hourly "
        "BEGIN SELECT RAISE(ABORT, 'rollup refused by a test trigger'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_rollup() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'rollup refused by a test trigger'; END $$",
        "CREATE TRIGGER refuse_rollup BEFORE INSERT ON usage_hourly FOR EACH ROW EXECUTE FUNCTION refuse_rollup()",
    ],
}
ALLOW_ROLLUP = {
    "sqlite": ["DROP TRIGGER refuse_rollup"],
    "postgresql": ["DROP TRIGGER refuse_rollup ON usage_hourly", "DROP FUNCTION refuse_rollup()"],
}


async def run_sql(app, statements: list[str]) -> None:
    async with app.state.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def rollup_rows(app) -> int:
    async with app.state.sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(UsageHourly))


async def eventually(condition, seconds: float = 10) -> None:
    async with asyncio.timeout(seconds):
        while not await condition():
            await asyncio.sleep(0.02)


async def test_a_failing_rollup_is_logged_and_metrics_recover_on_the_next_run(app, client, alice: Person, caplog):
    assistant = await alice.new_assistant()
    assert (await start(client, public_id=assistant["public_id"])).status_code == 201
    dialect = app.state.engine.dialect.name
    await run_sql(app, REFUSE_ROLLUP[dialect])
    chore = asyncio.create_task(rollup_forever(app.state.sessionmaker, every=0.05))
    try:

        async def failure_logged() -> bool:
            return any(r.name == "portico.chores" for r in caplog.records)

        await eventually(failure_logged)
        record = next(r for r in caplog.records if r.name == "portico.chores")
        assert record.levelno == logging.ERROR
        assert record.getMessage() == "chore rollup failed"
        assert "Traceback (most recent call last)" in record.exc_text
        assert "rollup refused by a test trigger" in record.exc_text
        assert await rollup_rows(app) == 0
    finally:
        await run_sql(app, ALLOW_ROLLUP[dialect])

    async def recovered() -> bool:
        return await rollup_rows(app) > 0

    try:
        await eventually(recovered)
    finally:
        chore.cancel()
    async with app.state.sessionmaker() as db:
        usage = await db.scalar(select(UsageHourly).where(UsageHourly.assistant_id == assistant["id"]))
    assert usage is not None and usage.sessions == 1


async def test_a_chore_that_fails_runs_again_and_stops_when_cancelled(caplog):
    runs = 0

    async def flaky() -> None:
        nonlocal runs
        runs += 1
        if runs == 1:
            raise RuntimeError("first run fails")

    chore = asyncio.create_task(run_every("flaky", 0.01, flaky))
    async with asyncio.timeout(5):
        while runs < 3:
            await asyncio.sleep(0.01)
    chore.cancel()
    await asyncio.gather(chore, return_exceptions=True)
    assert chore.cancelled()
    [record] = caplog.records
    assert record.getMessage() == "chore flaky failed"
    assert "RuntimeError: first run fails" in (record.exc_text or "")


async def test_a_chore_runs_on_one_instance_at_a_time(app, settings):
    from portico.db import make_engine, make_sessionmaker
    from portico.kit.chores import this_instance_runs

    other = make_engine(settings.resolved_database_url)
    try:
        async with app.state.sessionmaker() as db, db.begin():
            assert await this_instance_runs(db, "sweep")
            async with make_sessionmaker(other)() as db2, db2.begin():
                # Another instance meanwhile: on PostgreSQL it leaves the chore to the first.
                expected = not settings.resolved_database_url.startswith("postgresql")
                assert await this_instance_runs(db2, "sweep") is expected
                assert await this_instance_runs(db2, "rollup")
        async with make_sessionmaker(other)() as db2, db2.begin():
            assert await this_instance_runs(db2, "sweep")  # released with the first transaction
    finally:
        await other.dispose()
