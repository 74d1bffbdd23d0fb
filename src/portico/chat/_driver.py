"""Statements compiled once and run on the driver connection: private to the guest store.

Why (measured in docs/benchmarks.md, "Session starts" and "Chat"): SQLAlchemy's work around each
execution (execution context, result processing, greenlet hops) costs several times the query
itself on a local database, and on SQLite a statement through its cursor takes three or four
hand-offs to aiosqlite's thread where `execute_fetchall` takes one. A `Statement` keeps
SQLAlchemy's own type conversions (aware UTC datetimes, JSON, booleans), so rows read the same.
Nothing outside chat/store.py and chat/statements.py imports this module.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import ClauseElement, Executable

T = TypeVar("T")


class Tx:
    """Statements on a driver connection, inside the store only."""

    def __init__(self, driver: Any, dialect: Dialect) -> None:
        self._driver = driver
        self._dialect = dialect
        self._postgres = dialect.name == "postgresql"

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """Every statement in the block saved together or none: committed when the block ends,
        rolled back if it raises. SQLite takes its write lock at BEGIN (IMMEDIATE), so a writer
        never finds it taken halfway through."""
        if self._postgres:
            async with self._driver.transaction():
                yield
            return
        await self._driver.execute_fetchall("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            await self._driver.execute_fetchall("ROLLBACK")
            raise
        await self._driver.execute_fetchall("COMMIT")

    async def at_once(self, plan: Callable[[ThreadTx], T]) -> T:
        """SQLite: `plan`'s statements in one transaction (BEGIN IMMEDIATE ... COMMIT, rolled back
        if it raises), run in one hand-off to aiosqlite's thread where `transaction()` takes one per
        statement, BEGIN and COMMIT included (a hand-off costs this process more than a statement
        on a local file: docs/benchmarks.md, issue 22). aiosqlite has no public way to run a
        function on its thread: `_execute` is the one its own methods use (pinned in pyproject.toml)."""
        assert not self._postgres
        return await self._driver._execute(_run_at_once, self._driver._conn, self._dialect, plan)  # type: ignore[no-any-return]

    async def all(self, statement: Statement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        compiled = statement.compiled(self._dialect)
        args = compiled.arguments(params)
        if self._postgres:
            rows = await self._driver.fetch(compiled.sql, *args)
        else:
            rows = await self._driver.execute_fetchall(compiled.sql, args)
        return compiled.records(rows)

    async def one(self, statement: Statement, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = await self.all(statement, params)
        assert len(rows) <= 1
        return rows[0] if rows else None


class ThreadTx:
    """Statements on SQLite's own connection, inside `Tx.at_once`'s plan, on aiosqlite's thread."""

    def __init__(self, connection: sqlite3.Connection, dialect: Dialect) -> None:
        self._connection = connection
        self._dialect = dialect

    def all(self, statement: Statement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        compiled = statement.compiled(self._dialect)
        return compiled.records(self._connection.execute(compiled.sql, compiled.arguments(params)).fetchall())

    def one(self, statement: Statement, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = self.all(statement, params)
        assert len(rows) <= 1
        return rows[0] if rows else None


def _run_at_once(connection: sqlite3.Connection, dialect: Dialect, plan: Callable[[ThreadTx], T]) -> T:
    connection.execute("BEGIN IMMEDIATE")
    try:
        result = plan(ThreadTx(connection, dialect))
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")
    return result


class SessionTx:
    """The same statements through SQLAlchemy, on an ORM session's connection and inside the
    transaction that session holds (the owner's request, which commits it): for the few
    statements the owner's preview shares with guests, where speed does not matter."""

    def __init__(self, db: AsyncSession) -> None:
        self._db = db

    async def all(self, statement: Statement, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        # Core execution on the session's connection: the ORM's bulk and synchronising paths stay out.
        assert isinstance(statement.statement, Executable)
        result = await (await self._db.connection()).execute(statement.statement, dict(params))
        return [dict(row) for row in result.mappings()] if result.returns_rows else []

    async def one(self, statement: Statement, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows = await self.all(statement, params)
        assert len(rows) <= 1
        return rows[0] if rows else None


class Statement:
    """A Core statement compiled once per dialect, run with its own type conversions."""

    def __init__(self, statement: ClauseElement, *, literal: bool = False) -> None:
        self.statement = statement
        # Values written into the SQL itself: only for integers, and statements made per call.
        self.literal = literal
        self._by_dialect: dict[str, _Compiled] = {}

    def compiled(self, dialect: Dialect) -> _Compiled:
        compiled = self._by_dialect.get(dialect.name)
        if compiled is None:
            compiled = self._by_dialect[dialect.name] = _Compiled.of(self.statement, dialect, self.literal)
        return compiled


_GIVEN = object()
_Convert = Callable[[Any], Any]


@dataclass(frozen=True)
class _Compiled:
    sql: str
    # Each positional parameter: its name, the value SQLAlchemy fixed (or _GIVEN), its converter.
    binds: tuple[tuple[str, Any, _Convert | None], ...]
    keys: tuple[str, ...]
    results: tuple[_Convert | None, ...] | None

    @staticmethod
    def of(statement: ClauseElement, dialect: Dialect, literal: bool) -> _Compiled:
        compiled = statement.compile(dialect=dialect, compile_kwargs={"literal_binds": literal})
        assert isinstance(compiled, SQLCompiler)
        binds = []
        for name in compiled.positiontup or ():
            bind = compiled.binds[name]
            # Values SQLAlchemy rendered as parameters itself (the 1 in `message_count + 1`).
            fixed = bind.value if bind.value is not None else _GIVEN
            binds.append((name, fixed, bind.type.dialect_impl(dialect).bind_processor(dialect)))
        # What the statement returns (none for an UPDATE without RETURNING).
        exported = getattr(statement, "exported_columns", None)
        columns = list(exported.items()) if exported is not None else []
        keys = tuple(key for key, _ in columns)
        assert len(set(keys)) == len(keys), "store statements name each result column once"
        results = tuple(column.type.dialect_impl(dialect).result_processor(dialect, None) for _, column in columns)
        return _Compiled(str(compiled), tuple(binds), keys, results if any(results) else None)

    def arguments(self, params: Mapping[str, Any]) -> list[Any]:
        args = []
        for name, fixed, process in self.binds:
            value = params[name] if fixed is _GIVEN else params.get(name, fixed)
            args.append(process(value) if process is not None else value)
        return args

    def records(self, rows: Iterable[Any]) -> list[dict[str, Any]]:
        if self.results is None:
            return [dict(zip(self.keys, row, strict=True)) for row in rows]
        return [
            {
                key: process(value) if process is not None else value
                for key, value, process in zip(self.keys, row, self.results, strict=True)
            }
            for row in rows
        ]
