"""Running Alembic from Portico: `portico db upgrade`, start-up on SQLite, and the tests (which also
downgrade, to prove that each migration undoes what it did)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, text

HERE = Path(__file__).parent
# Two `portico db upgrade` at once (two operators, or a deploy script run on every instance) would
# both find the same revision missing and both run it: the second then fails halfway ("column
# already exists"). So on PostgreSQL an upgrade first takes this advisory lock, held until its
# transaction ends; the others wait for it and then find nothing left to do.
MIGRATIONS_LOCK = zlib.crc32(b"portico-migrations")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
    return config


def upgrade_connection(connection: Connection, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade, and say from which revision to which (None: the database had no Portico tables)."""
    config = alembic_config()
    config.attributes["connection"] = connection
    _one_at_a_time(connection)
    before = current_revision(connection)
    with _sqlite_foreign_keys_off(connection):
        command.upgrade(config, revision)
    return before, current_revision(connection)


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def downgrade_connection(connection: Connection, revision: str) -> None:
    config = alembic_config()
    config.attributes["connection"] = connection
    _one_at_a_time(connection)
    with _sqlite_foreign_keys_off(connection):
        command.downgrade(config, revision)


def _one_at_a_time(connection: Connection) -> None:
    """Wait for any other migration run on this database to end (PostgreSQL; SQLite's write lock,
    taken by BEGIN IMMEDIATE below, already lets one run at a time)."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATIONS_LOCK})


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """On SQLite, run the migrations in their own transaction with foreign keys off.

    SQLite changes a table's constraints by rebuilding it (Alembic's batch mode); dropping the old
    copy with foreign keys on would first delete, through ON DELETE CASCADE, every row that refers
    to it. The pragma is ignored inside a transaction, and callers hand over a connection in one
    (`engine.begin()`, nothing done in it yet): so it is committed on the driver's connection, the
    migrations run in a new one there, and an empty one is left for the caller to commit.
    SQLAlchemy's own transaction stays open throughout, as the caller expects.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    driver = connection.connection.dbapi_connection
    assert driver is not None

    def run(sql: str) -> list[Any]:
        cursor = driver.cursor()
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    in_transaction = bool(getattr(connection.connection.driver_connection, "in_transaction", False))
    if in_transaction:
        run("COMMIT")
    run("PRAGMA foreign_keys=OFF")
    try:
        run("BEGIN IMMEDIATE")
        try:
            yield
            broken = run("PRAGMA foreign_key_check")
            if broken:
                raise RuntimeError(f"the migrations left rows that refer to nothing: {broken[:5]}")
            run("COMMIT")
        except BaseException:
            run("ROLLBACK")
            raise
    finally:
        run("PRAGMA foreign_keys=ON")
        if in_transaction:
            run("BEGIN IMMEDIATE")
