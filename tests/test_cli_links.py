"""`portico links`: rename, cap, pause, resume, expire, reset, delete and qr, for one link or several,
and an assistant whose public id starts with '-' (after `--`), on both databases."""

from __future__ import annotations

import asyncio
import csv
import io

from sqlalchemy import update

from portico.db import make_engine, make_sessionmaker
from portico.models import Assistant
from tests.test_cli import error, ok, portico  # noqa: F401 (portico: fixture)

DASHED = "-dashed0public0id"


def links(portico, assistant: str) -> dict[str, dict[str, str]]:  # type: ignore[no-untyped-def]
    return {row["id"]: row for row in csv.DictReader(io.StringIO(ok(portico("links", "list", "--", assistant))))}


def dashed_assistant(portico, settings, tmp_path) -> str:  # type: ignore[no-untyped-def]
    """An assistant made before public ids stopped starting with '-': its id is such a one."""
    ok(portico("owners", "create", "t@school.example", "--password-stdin", stdin="long enough password\n"))
    knowledge = tmp_path / "k.md"
    knowledge.write_text("Open 9 to 5.")
    assistant_id = ok(portico("assistants", "create", "--name", "Desk", "--knowledge-file", str(knowledge))).split(",")[
        0
    ]

    async def rename() -> None:
        engine = make_engine(settings.resolved_database_url)
        async with make_sessionmaker(engine)() as db:
            await db.execute(update(Assistant).where(Assistant.id == int(assistant_id)).values(public_id=DASHED))
            await db.commit()
        await engine.dispose()

    asyncio.run(rename())
    return DASHED


def test_every_link_action_works_for_one_link_or_several(portico, settings, tmp_path):
    assistant = dashed_assistant(portico, settings, tmp_path)
    for name in ("Ann", "Bo", "Cy"):
        ok(portico("links", "create", "--name", name, "--", assistant))
    a, b, c = links(portico, assistant)

    assert "Paused 2 links." in ok(portico("links", "pause", "--", assistant, a, b))
    assert ok(portico("links", "resume", "--", assistant, a)).strip() == "Resumed 1 link."
    assert "Cap set on 2 links." in ok(portico("links", "cap", "--", assistant, "3", b, c))
    assert "Renamed to Smith, John." in ok(portico("links", "rename", "--", assistant, a, "  Smith, John "))
    assert "Sessions used set back to 0 on 3 links." in ok(portico("links", "reset", "--", assistant, a, b, c))
    ok(portico("links", "expire", "--at", "2030-01-31T12:00:00+01:00", "--", assistant, c))
    rows = links(portico, assistant)
    assert [(rows[i]["name"], rows[i]["max_sessions"]) for i in (a, b, c)] == [
        ("Smith, John", "0"),
        ("Bo", "3"),
        ("Cy", "3"),
    ]

    svg = ok(portico("links", "qr", "--", assistant, a))
    assert svg.startswith("<svg") and "<path" in svg
    one = tmp_path / "one.svg"
    ok(portico("links", "qr", "--output", str(one), "--", assistant, b))
    assert one.read_text().startswith("<svg")
    folder = tmp_path / "codes"
    folder.mkdir()
    ok(portico("links", "qr", "--output", str(folder), "--", assistant, a, b))
    assert sorted(p.name for p in folder.iterdir()) == [f"link-{a}.svg", f"link-{b}.svg"]
    assert "give --output with a folder" in error(portico("links", "qr", "--", assistant, a, b))

    assert "Deleted 2 links" in ok(portico("links", "delete", "--", assistant, a, b))
    assert list(links(portico, assistant)) == [c]
    for args in (("resume", a), ("reset", a), ("pause", a, c), ("rename", a, "X"), ("cap", "1", a), ("qr", a)):
        assert "deleted" in error(portico("links", args[0], "--", assistant, *args[1:])), args
    assert rows[c]["name"] == "Cy" and links(portico, assistant)[c]["max_sessions"] == "3"


def test_link_commands_refuse_bad_input_with_one_sentence(portico, settings, tmp_path):
    assistant = dashed_assistant(portico, settings, tmp_path)
    ok(portico("links", "create", "--name", "Ann", "--", assistant))
    (a,) = links(portico, assistant)
    assert "offset" in error(portico("links", "expire", "--at", "2030-01-31T12:00:00", "--", assistant, a))
    assert "9999" in error(portico("links", "expire", "--at", "9999-12-31T23:00:00-05:00", "--", assistant, a))
    assert "ISO 8601" in error(portico("links", "expire", "--at", "soon", "--", assistant, a))
    assert "either --at or --never" in error(
        portico("links", "expire", "--never", "--at", "2030-01-01T00:00:00Z", "--", assistant, a)
    )
    assert "whole number from 0" in error(portico("links", "cap", "--", assistant, "-1", a))
    assert "name: The name cannot be empty." in error(portico("links", "rename", "--", assistant, a, "   "))
    assert "no private link with these ids: 999" in error(portico("links", "pause", "--", assistant, a, "999"))
    assert links(portico, assistant)[a]["name"] == "Ann"
    ok(portico("links", "expire", "--at", "2020-01-01T00:00:00Z", "--", assistant, a))
    assert "without an end date" in ok(portico("links", "expire", "--never", "--", assistant, a))


def test_qr_files_are_owner_only_and_a_trailing_slash_means_a_folder(portico, settings, tmp_path):
    assistant = dashed_assistant(portico, settings, tmp_path)
    ok(portico("links", "create", "--name", "Ann", "--", assistant))
    ok(portico("links", "create", "--name", "Bo", "--", assistant))
    a, b = links(portico, assistant)
    missing = tmp_path / "new" / "codes"
    ok(portico("links", "qr", "--output", f"{missing}/", "--", assistant, a))
    assert missing.is_dir() and [p.name for p in missing.iterdir()] == [f"link-{a}.svg"]
    assert (missing / f"link-{a}.svg").stat().st_mode & 0o777 == 0o600
    ok(portico("links", "qr", "--output", f"{missing}/", "--", assistant, a, b))
    assert sorted(p.name for p in missing.iterdir()) == [f"link-{a}.svg", f"link-{b}.svg"]
    # An existing file, readable by others, is rewritten owner-only.
    one = tmp_path / "one.svg"
    one.write_text("old")
    one.chmod(0o644)
    ok(portico("links", "qr", "--output", str(one), "--", assistant, b))
    assert one.read_text().startswith("<svg") and one.stat().st_mode & 0o777 == 0o600

    assert "does not exist (end --output with / to create a folder)" in error(
        portico("links", "qr", "--output", str(tmp_path / "nowhere" / "x.svg"), "--", assistant, a)
    )
    assert "is a file, not a folder" in error(portico("links", "qr", "--output", f"{one}/", "--", assistant, a))
    assert "give --output with a folder" in error(
        portico("links", "qr", "--output", str(tmp_path / "plain.svg"), "--", assistant, a, b)
    )
    assert "cannot be empty" in error(portico("links", "qr", "--output", " ", "--", assistant, a))
    assert not (tmp_path / "nowhere").exists() and not (tmp_path / "plain.svg").exists()
