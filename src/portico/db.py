"""Database engine and the request's transaction.

The request owns the transaction: services flush, `get_session` commits once the route has
returned and before the response is sent, so a failed commit answers 500, never 200.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.util import await_only

log = logging.getLogger("portico")


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


SQLITE_POOL_SIZE = 32


def make_engine(url: str, **kwargs: object) -> AsyncEngine:
    url = async_url(url)
    # Parameters may hold digests and ciphertexts; keep them out of error messages and logs.
    kwargs.setdefault("hide_parameters", True)
    if is_sqlite(url):
        _private_sqlite_file(make_url(url).database)
        # Connections kept open for as many requests as run at once: past SQLAlchemy's default of
        # 5, each request beyond it opened a connection (a thread, the pragmas below: about six
        # hand-offs) and closed it again (bench/session_start.py at 16 clients). An idle one costs a
        # parked thread and a file handle.
        kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_reset_on_return=None, **kwargs)
        _sqlite_immediate_transactions(engine)
        return engine
    # Connections are held for a few milliseconds per request (never across an engine call), so a
    # few kept open serve many concurrent guests. The defaults (PORTICO_DB_POOL_SIZE 14, no
    # overflow, plus the cut-off listener's one) let 3 instances of 2 workers run under
    # PostgreSQL's default max_connections of 100 with room for the operator. No overflow: a
    # connection opened and closed per use costs PostgreSQL a process and this process far more
    # CPU than a short wait for a pooled one (bench/session_start.py: 1.5 against 0.9 ms per start).
    kwargs.setdefault("pool_size", 14)
    kwargs.setdefault("max_overflow", 0)
    kwargs.setdefault("pool_timeout", 3)
    return create_async_engine(url, pool_pre_ping=False, **kwargs)


def _private_sqlite_file(database: str | None) -> None:
    """Create the database file readable by Portico's user only (0600), in a folder only it can
    enter (0700) when Portico makes that folder: it holds password hashes, encrypted keys and
    transcripts. SQLite gives the -wal and -shm files beside it the database file's own mode, so
    making the empty file first (an empty file is an empty database) covers all three, with no
    process-wide umask changed under other threads. An existing file keeps the mode its operator
    gave it; a warning says when other users can read it."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        if path.stat().st_mode & 0o077:
            log.warning("%s can be read by other users of this machine: chmod 600 it and its -wal, -shm", path)


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
    # On SQLite the owner's request waits in the same writer queue as the guest store's writes
    # (every SQLAlchemy transaction there takes the write lock at BEGIN IMMEDIATE, see above).
    async with writer_lock(request.app.state.engine), request.app.state.sessionmaker() as session:
        yield session
        await session.commit()


_writers: weakref.WeakKeyDictionary[Engine, asyncio.Lock] = weakref.WeakKeyDictionary()


def writer_lock(engine: AsyncEngine) -> AbstractAsyncContextManager[object]:
    """This process's queue for SQLite's one write lock: writers wait in order (asyncio's lock
    is FIFO) rather than polling SQLite's busy handler, so the slowest waits follow the median.
    PostgreSQL locks rows, not the database: nothing to queue."""
    if engine.dialect.name != "sqlite":
        return contextlib.nullcontext()
    lock = _writers.get(engine.sync_engine)
    if lock is None:
        lock = _writers[engine.sync_engine] = asyncio.Lock()
    return lock


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]
