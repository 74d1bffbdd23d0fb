"""The `portico` command, run as a real process against the test database."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
from dataclasses import dataclass

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, select
from typer.testing import CliRunner

from portico import cli
from portico.chat.sessions import start_session
from portico.chat.store import GuestStore
from portico.db import make_engine, make_sessionmaker
from portico.migrations.run import alembic_config, downgrade_connection
from portico.models import Assistant
from portico.vocabulary import Channel
from tests.servers import PORTICO, portico_env

HEAD = ScriptDirectory.from_config(alembic_config()).get_current_head()


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def portico(settings):
    """Run `portico ARGS...` in this process (a process per call would cost a second each)."""
    runner = CliRunner()

    def run(*args: str, stdin: str | None = None) -> Ran:
        result = runner.invoke(cli.app, list(args), input=stdin, env=portico_env(settings))
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


def ok(result: Ran) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def error(result: Ran) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stderr.startswith("Error: ")
    assert "Traceback" not in result.stderr
    return result.stderr


def usage_error(result: Ran) -> str:
    """A value outside a command's choices (the vocabulary's enums) is a usage error, as click has it."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return " ".join(result.stderr.replace("│", " ").split())


def test_owner_builds_shares_and_manages_links_from_the_cli(portico, tmp_path):
    ok(portico("owners", "create", "Teacher@School.example", "--password-stdin", stdin="long enough password\n"))
    token = ok(portico("tokens", "create", "--owner", "teacher@school.example", "--name", "laptop")).strip()
    assert token.startswith("pto_") and len(token) == 47

    knowledge = tmp_path / "faq.md"
    knowledge.write_text("Homework is due on Fridays.")
    assistant_id, public_id = (
        ok(portico("assistants", "create", "--name", "Class helper", "--knowledge-file", str(knowledge)))
        .strip()
        .split(",")
    )
    assert ok(portico("assistants", "publish", public_id)).strip() == "Published version 1."
    ok(portico("status", assistant_id, "live"))
    ok(portico("share", assistant_id, "private"))
    listed = list(csv.DictReader(io.StringIO(ok(portico("assistants", "list")))))
    assert listed == [
        {
            "id": assistant_id,
            "public_id": public_id,
            "status": "live",
            "share_mode": "private",
            "published_version": "1",
            "name": "Class helper",
        }
    ]

    one = list(
        csv.reader(
            io.StringIO(
                ok(portico("links", "create", assistant_id, "--name", "Student Group A", "--max-sessions", "30"))
            )
        )
    )
    assert one[0] == ["name", "url"]
    assert one[1][0] == "Student Group A" and one[1][1].startswith("http://portico.test/c#k=ptk_")

    names = tmp_path / "class.csv"
    names.write_text('name,max_sessions\n"Doe, Jane",5\nÉmile,0\n')
    many = list(csv.reader(io.StringIO(ok(portico("links", "create", assistant_id, "--from-file", str(names))))))
    assert [row[0] for row in many[1:]] == ["Doe, Jane", "Émile"]
    plain = tmp_path / "names.txt"
    plain.write_text("Group B\nGroup C\n\n")
    ok(portico("links", "create", assistant_id, "--from-file", str(plain)))

    rows = list(csv.DictReader(io.StringIO(ok(portico("links", "list", assistant_id)))))
    assert [(r["name"], r["max_sessions"]) for r in rows] == [
        ("Student Group A", "30"),
        ("Doe, Jane", "5"),
        ("Émile", "0"),
        ("Group B", "0"),
        ("Group C", "0"),
    ]
    new_url = ok(portico("links", "reissue", assistant_id, rows[0]["id"])).strip()
    assert new_url != rows[0]["url"] and new_url.startswith("http://portico.test/c#k=ptk_")
    ok(portico("links", "delete", assistant_id, rows[0]["id"]))
    assert len(list(csv.DictReader(io.StringIO(ok(portico("links", "list", assistant_id)))))) == 4
    assert "have been deleted" in error(portico("links", "delete", assistant_id, rows[0]["id"]))


def test_cli_refuses_bad_input_with_one_sentence(portico, tmp_path):
    assert "not an email" in error(
        portico("owners", "create", "nobody", "--password-stdin", stdin="long enough password\n")
    )
    assert "at least 8" in error(portico("owners", "create", "a@b.example", "--password-stdin", stdin="short\n"))
    ok(portico("owners", "create", "a@b.example", "--password-stdin", stdin="long enough password\n"))
    assert "already exists" in error(
        portico("owners", "create", "A@b.example", "--password-stdin", stdin="long enough password\n")
    )
    assert "No owner" in error(portico("tokens", "create", "--owner", "who@b.example"))
    assert "No assistant" in error(portico("status", "nope", "live"))
    assert "not one of 'live', 'offline'" in usage_error(portico("status", "1", "paused"))
    assert "not one of 'public', 'private'" in usage_error(portico("share", "1", "secret"))
    assert "name" in error(portico("assistants", "create", "--name", ""))
    assistant_id = ok(portico("assistants", "create", "--name", "Empty")).split(",")[0]
    assert "knowledge" in error(portico("assistants", "publish", assistant_id))
    assert "max_sessions: The maximum sessions must be at least 0." in error(
        portico("links", "create", assistant_id, "--name", "X", "--max-sessions", "-1")
    )
    assert "either --name or --from-file" in error(portico("links", "create", assistant_id))
    bad = tmp_path / "bad.csv"
    bad.write_text("Alice,-3\n")
    assert "line 1" in error(portico("links", "create", assistant_id, "--from-file", str(bad)))
    big = tmp_path / "big.txt"
    big.write_text("\n".join(f"User {i}" for i in range(51)))
    assert "50 more can be created, not 51" in error(portico("links", "create", assistant_id, "--from-file", str(big)))
    assert "is not a file" in error(
        portico("links", "create", assistant_id, "--from-file", str(tmp_path / "missing.csv"))
    )


def test_the_installed_command_runs_and_fails_cleanly(settings):
    env = portico_env(settings, PORTICO_MAX_PRIVATE_LINKS="lots")
    result = subprocess.run([PORTICO, "assistants", "list"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.startswith("Error: PORTICO_MAX_PRIVATE_LINKS")
    env = portico_env(settings)
    result = subprocess.run([PORTICO, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout.strip()) == (0, f"The database is already up to date at version {HEAD}.")


@pytest.mark.sqlite_only
def test_db_upgrade_says_what_it_did(settings, tmp_path):
    runner = CliRunner()
    folder = tmp_path / "empty" / "data"
    env = {**portico_env(settings), "PORTICO_DATA_DIR": str(folder)}
    del env["PORTICO_DATABASE_URL"]

    def upgrade() -> str:
        result = runner.invoke(cli.app, ["db", "upgrade"], env=env)
        assert result.exit_code == 0, result.output
        return result.stdout.strip()

    assert upgrade() == f"Created the database at version {HEAD}."
    assert upgrade() == f"The database is already up to date at version {HEAD}."
    engine = create_engine(f"sqlite:///{folder / 'portico.db'}")
    with engine.begin() as connection:
        downgrade_connection(connection, "0011")
    engine.dispose()
    assert upgrade() == f"Upgraded the database from version 0011 to {HEAD}."


def test_logs_are_exported_from_the_cli(portico, tmp_path, settings):
    ok(portico("owners", "create", "a@b.example", "--password-stdin", stdin="long enough password\n"))
    knowledge = tmp_path / "k.md"
    knowledge.write_text("# Hours\nOpen 9 to 5.")
    assistant_id = ok(portico("assistants", "create", "--name", "Desk", "--knowledge-file", str(knowledge))).split(",")[
        0
    ]
    ok(portico("assistants", "publish", assistant_id))
    ok(portico("status", assistant_id, "live"))
    ok(portico("links", "create", assistant_id, "--name", 'Zoë, "the" tester'))

    async def two_sessions() -> None:
        engine = make_engine(settings.resolved_database_url)
        async with make_sessionmaker(engine)() as db:
            public_id = await db.scalar(select(Assistant.public_id))
        store = GuestStore(engine)
        await start_session(store, public_id=public_id, key=None, channel=Channel.LINK)
        await start_session(store, public_id=public_id, key=None, channel=Channel.API)
        await engine.dispose()

    asyncio.run(two_sessions())
    rows = list(csv.DictReader(io.StringIO(ok(portico("logs", "export", assistant_id)))))
    assert [(r["user"], r["channel"]) for r in rows] == [("Anonymous", "api"), ("Anonymous", "link")]
    out = tmp_path / "sessions.jsonl"
    ok(portico("logs", "export", assistant_id, "--format", "jsonl", "--output", str(out), "--channel", "api"))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["channel"] for line in lines] == ["api"] and lines[0]["messages"] == []
    assert "format must be" in error(portico("logs", "export", assistant_id, "--format", "xml"))
    assert "not one of 'link', 'widget', 'api', 'preview'" in usage_error(
        portico("logs", "export", assistant_id, "--channel", "fax")
    )
    assert "No assistant" in error(portico("logs", "export", "nope"))


def test_serve_refuses_to_start_without_a_database():
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTICO_")}
    env.update(PORTICO_DATABASE_URL="postgresql://postgres@127.0.0.1:9/test", PORTICO_STARTUP_WAIT="1")
    done = subprocess.run([PORTICO, "serve", "--port", "9"], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "the database does not answer after 1 s" in done.stderr and "ConnectionRefusedError" in done.stderr


def test_public_ids_never_start_with_a_dash_the_command_line_would_take_for_an_option():
    from portico.kit.crypto import new_public_id

    assert not any(new_public_id().startswith("-") for _ in range(5_000))


def test_an_assistant_is_duplicated_from_the_cli(portico, tmp_path, settings):
    ok(portico("owners", "create", "desk@example.com", "--password-stdin", stdin="long enough password\n"))
    knowledge = tmp_path / "faq.md"
    knowledge.write_text("Parking is free behind the building.")
    made = ok(portico("assistants", "create", "--name", "Desk", "--knowledge-file", str(knowledge))).strip()
    assistant_id, public_id = made.split(",")
    ok(portico("assistants", "publish", assistant_id))
    ok(portico("status", assistant_id, "live"))

    copy_id, copy_public_id = ok(portico("assistants", "duplicate", public_id)).strip().split(",")
    assert copy_id != assistant_id and copy_public_id != public_id
    listed = {row["id"]: row for row in csv.DictReader(io.StringIO(ok(portico("assistants", "list"))))}
    assert listed[copy_id] == {
        "id": copy_id,
        "public_id": copy_public_id,
        "status": "offline",
        "share_mode": "public",
        "published_version": "",
        "name": "Copy of Desk",
    }

    async def drafts() -> list[dict]:
        engine = make_engine(settings.resolved_database_url)
        async with make_sessionmaker(engine)() as db:
            found = await db.scalars(
                select(Assistant.draft)
                .where(Assistant.id.in_([int(assistant_id), int(copy_id)]))
                .order_by(Assistant.id)
            )
            result = list(found)
        await engine.dispose()
        return result

    original, copy = asyncio.run(drafts())
    assert copy == original and copy["knowledge"] == "Parking is free behind the building."
    assert "No assistant" in error(portico("assistants", "duplicate", "999999"))
