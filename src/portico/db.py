"""Database engine and the request's transaction.

The request owns the transaction: services flush, `get_session` commits once the route has
returned and before the response is sent, so a failed commit answers 500, never 200.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.sql import Executable
from sqlalchemy.util import await_only


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
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None, **kwargs)
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
        # On aiosqlite's connection itself: one hand-off to its thread, where SQLAlchemy's cursor
        # takes three (every transaction begins here).
        await_only(conn.connection.driver_connection.execute_fetchall("BEGIN IMMEDIATE"))

    # The pool's own reset (reset_on_return) rolls back each connection it gets back, a hand-off
    # even after a commit; this one rolls back only a transaction still open.
    @event.listens_for(engine.sync_engine, "reset")
    def _reset(dbapi_connection, record, state) -> None:  # type: ignore[no-untyped-def]
        if state.asyncio_safe and not state.transaction_was_reset and record.driver_connection.in_transaction:
            dbapi_connection.rollback()


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session
        await session.commit()


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]

Db = AsyncSession | AsyncConnection


async def connection_of(db: Db) -> AsyncConnection:
    # Core statements on the connection: the ORM session's execution path costs more than the query.
    return db if isinstance(db, AsyncConnection) else await db.connection()


class HotStatement:
    """A Core statement for the busiest paths (session starts, messages), compiled once per dialect.

    It runs on the driver connection beneath SQLAlchemy's pooled one, with the compiled
    statement's own type conversions (aware UTC datetimes, JSON, booleans) applied as SQLAlchemy
    would: SQLAlchemy's work around each execution (execution context, result processing,
    greenlet hops) costs several times the query itself (docs/benchmarks.md, "Session starts"),
    and on SQLite a statement through its cursor takes three or four hand-offs to aiosqlite's
    thread, where `execute_fetchall` takes one. Rows come back as dicts.

    It runs in the transaction open on the driver connection, if any. Run it on a connection
    from `hot_connection`: on SQLite one transaction, on PostgreSQL none, each statement
    committing by itself (SQLAlchemy's asyncpg adapter begins its transaction only at its own
    first statement, which a hot statement is not).
    """

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[str, _Compiled] = {}

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = self.statement.compile(dialect=dialect)
        assert compiled.positiontup is not None
        binds = []
        for name in compiled.positiontup:
            bind = compiled.binds[name]
            # Values SQLAlchemy rendered as parameters itself (the 1 in `message_count + 1`).
            fixed = bind.value if bind.value is not None else _GIVEN
            binds.append((name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        columns = list(self.statement.exported_columns.items())  # type: ignore[attr-defined]
        keys = tuple(key for key, _ in columns)
        assert len(set(keys)) == len(keys), "hot statements name each result column once"
        results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for _, column in columns)
        return _Compiled(str(compiled), tuple(binds), keys, results if any(results) else None)

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    async def all(self, conn: AsyncConnection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        compiled = self._for(conn.dialect)
        args = []
        for name, fixed, process in compiled.binds:
            value = params[name] if fixed is _GIVEN else params.get(name, fixed)
            args.append(process(value) if process is not None else value)
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        if conn.dialect.name == "postgresql":
            rows = await driver.fetch(compiled.sql, *args)
        else:
            rows = await driver.execute_fetchall(compiled.sql, args)
        if compiled.results is None:
            return [dict(zip(compiled.keys, row, strict=True)) for row in rows]
        return [
            {
                key: process(value) if process is not None else value
                for key, value, process in zip(compiled.keys, row, compiled.results, strict=True)
            }
            for row in rows
        ]

    async def one_or_none(self, conn: AsyncConnection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = await self.all(conn, params)
        assert len(rows) <= 1
        return rows[0] if rows else None


_GIVEN = object()


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Each positional parameter: its name, the value SQLAlchemy fixed (or _GIVEN), its converter.
    binds: tuple[tuple[str, Any, Callable[[Any], Any] | None], ...]
    keys: tuple[str, ...]
    results: tuple[Callable[[Any], Any] | None, ...] | None


@asynccontextmanager
async def hot_connection(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection of its own for hot statements, committed on leaving, rolled back on an error.

    On SQLite one transaction (BEGIN IMMEDIATE), which holds SQLite's one write lock anyway. On
    PostgreSQL none for hot statements: each commits by itself, so what must be saved together
    is written in one statement (a data-modifying WITH), and no round trip goes to BEGIN and
    COMMIT. A statement through SQLAlchemy begins a transaction there as usual (later hot
    statements run in it), committed on leaving.
    """
    if engine.dialect.name == "postgresql":
        async with engine.connect() as conn:
            yield conn
            if conn.in_transaction():
                await conn.commit()
    else:
        async with engine.begin() as conn:
            yield conn
