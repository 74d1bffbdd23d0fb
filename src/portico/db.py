"""Database engine and the request's transaction.

The request owns the transaction: services flush, `get_session` commits once the route has
returned and before the response is sent, so a failed commit answers 500, never 200.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable


def async_url(url: str) -> str:
    """Turn the plain forms operators write into the async driver Portico uses."""
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+asyncpg://" + url.removeprefix(plain)
    return url


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def make_engine(url: str, **kwargs: object) -> AsyncEngine:
    url = async_url(url)
    # Parameters may hold digests and ciphertexts; keep them out of error messages and logs.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        engine = create_async_engine(url, connect_args={"timeout": 30}, **kwargs)
        _sqlite_immediate_transactions(engine)
        return engine
    # Connections are held for a few milliseconds per request (never across an engine call), so
    # 40 kept open serve many concurrent guests; connections beyond the kept ones are opened and
    # closed per use, which costs PostgreSQL a process each time (bench/session_start.py at 64
    # clients opened 150 in 5 s with 20 kept). 50 per process leaves room for two workers under
    # PostgreSQL's default max_connections of 100.
    kwargs.setdefault("pool_size", 40)
    kwargs.setdefault("max_overflow", 10)
    return create_async_engine(url, pool_pre_ping=False, **kwargs)


def _sqlite_immediate_transactions(engine: AsyncEngine) -> None:
    # SQLite's default deferred transactions fail with "database is locked" when two readers
    # both try to upgrade to writers (the busy handler is not called for that case). Taking the
    # write lock at BEGIN makes concurrent writers queue instead, which is what the gate needs
    # for "exactly N admissions".
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn) -> None:  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class HotStatement:
    """A Core statement for the busiest paths (session starts), compiled once per dialect.

    On PostgreSQL it runs on the asyncpg connection beneath SQLAlchemy's pooled one: SQLAlchemy's
    work around each execution (execution context, result processing, greenlet hops) costs
    several times the query itself (docs/benchmarks.md, "Session starts"). On SQLite it runs
    through SQLAlchemy as usual. Either way the row comes back as a mapping. Parameters must be
    what the driver takes (aware UTC datetimes); statements without SQLAlchemy-side type
    processing only (JSON results are decoded by the driver on both).

    Use it for reads, or on a connection of its own: on PostgreSQL it runs outside whatever
    transaction SQLAlchemy would begin on that connection, so each statement commits by itself.
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._asyncpg: tuple[str, tuple[str, ...], dict[str, Any]] | None = None

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        if self._asyncpg is None:
            compiled = self.statement.compile(dialect=dialect)
            assert compiled.positiontup is not None
            # Values SQLAlchemy rendered as parameters itself (the 1 in `sessions_used + 1`).
            fixed = {name: bind.value for name, bind in compiled.binds.items() if bind.value is not None}
            self._asyncpg = (str(compiled), tuple(compiled.positiontup), fixed)
        return self._asyncpg

    async def one_or_none(self, conn: AsyncConnection, params: Mapping[str, Any]) -> Mapping[str, Any] | None:
        if conn.dialect.name != "postgresql":
            return (await conn.execute(self.statement, dict(params))).mappings().one_or_none()
        sql, names, fixed = self._compiled(conn.dialect)
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        return await driver.fetchrow(sql, *[params[n] if n in params else fixed[n] for n in names])
