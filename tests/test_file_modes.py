"""What Portico writes on first run (the data folder, the SQLite database and its WAL and SHM, the
secret key) only Portico's own user can read, whatever the usual umask would allow."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from portico.app import create_app
from portico.config import load_settings
from portico.identity import accounts
from tests import servers


@pytest.fixture
def usual_umask() -> Iterator[None]:
    # The common default: files 0644 and folders 0755 unless Portico asks for less.
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_a_fresh_data_folder_and_its_database_are_private(tmp_path: Path, usual_umask):
    data = tmp_path / "fresh" / "var"
    app = create_app(load_settings(data_dir=data, database_url="", secret_key=""))
    async with app.router.lifespan_context(app):
        async with app.state.sessionmaker() as db:
            await accounts.create_owner(db, email="owner@example.com", password="correct horse battery")
            await db.commit()
        written = {name: mode(data / name) for name in ("portico.db", "portico.db-wal", "portico.db-shm")}
    assert mode(data) == 0o700
    assert written == {"portico.db": 0o600, "portico.db-wal": 0o600, "portico.db-shm": 0o600}
    assert mode(data / "secret_key") == 0o600


def test_portico_db_upgrade_makes_a_private_folder_too(tmp_path: Path, usual_umask):
    data = tmp_path / "var"
    env = {**servers.portico_env(load_settings(data_dir=data, database_url="")), "PORTICO_SECRET_KEY": "x" * 40}
    env.pop("PORTICO_DATABASE_URL")
    subprocess.run([servers.PORTICO, "db", "upgrade"], env=env, check=True, capture_output=True)
    assert mode(data) == 0o700 and mode(data / "portico.db") == 0o600
