"""The request owns the transaction and commits before answering: a failed commit is a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from tests.conftest import Person


class CommitRefused(Exception):
    pass


@contextmanager
def commits_fail() -> Iterator[None]:
    def refuse(_session: Session) -> None:
        raise CommitRefused("the database refused this commit")

    event.listen(Session, "before_commit", refuse)
    try:
        yield
    finally:
        event.remove(Session, "before_commit", refuse)


async def test_a_failed_commit_answers_500_and_keeps_nothing(client, alice: Person):
    assistant = await alice.new_assistant()
    path = f"/api/v1/assistants/{assistant['id']}"
    with commits_fail():
        response = await alice.request("PATCH", path, json={"name": "Never saved"})
    assert response.status_code == 500
    assert response.json()["error"] == {
        "code": "internal_error",
        "message": "Something went wrong on our side. Please try again.",
    }
    assert (await alice.request("GET", path)).json()["name"] == "Helper"


REFUSE_SESSIONS = {
    "sqlite": [
        "CREATE TRIGGER refuse_sessions BEFORE INSERT ON chat_sessions BEGIN SELECT RAISE(ABORT, 'refused'); END",
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_sessions() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER refuse_sessions BEFORE INSERT ON chat_sessions FOR EACH ROW EXECUTE FUNCTION refuse_sessions()",
    ],
}
ALLOW_SESSIONS = {
    "sqlite": ["DROP TRIGGER refuse_sessions"],
    "postgresql": ["DROP TRIGGER refuse_sessions ON chat_sessions", "DROP FUNCTION refuse_sessions()"],
}


async def _run(app, statements: list[str]) -> None:  # type: ignore[no-untyped-def]
    async with app.state.engine.begin() as conn:
        for statement in statements:
            await conn.execute(text(statement))


@pytest.mark.parametrize("max_sessions", [1, 0])
async def test_a_failed_session_write_answers_500_and_takes_no_use(app, client, alice: Person, max_sessions: int):
    """The database refuses the session's row after the gate said yes: the link's use goes with it."""
    from tests.conftest import key_of, start

    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], max_sessions)
    dialect = app.state.engine.dialect.name
    await _run(app, REFUSE_SESSIONS[dialect])
    try:
        response = await start(client, key=key_of(link))
    finally:
        await _run(app, ALLOW_SESSIONS[dialect])
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    listed = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"]
    assert listed[0]["sessions_used"] == 0
    assert (await start(client, key=key_of(link))).status_code == 201


def _refuse_messages(role: str) -> dict[str, list[str]]:
    return {
        "sqlite": [
            f"CREATE TRIGGER refuse_messages BEFORE INSERT ON messages WHEN NEW.role = '{role}' "
            "BEGIN SELECT RAISE(ABORT, 'refused'); END",
        ],
        "postgresql": [
            "CREATE FUNCTION refuse_messages() RETURNS trigger AS $$ BEGIN "
            f"IF NEW.role = '{role}' THEN RAISE EXCEPTION 'refused'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_messages BEFORE INSERT ON messages FOR EACH ROW EXECUTE FUNCTION refuse_messages()",
        ],
    }


ALLOW_MESSAGES = {
    "sqlite": ["DROP TRIGGER refuse_messages"],
    "postgresql": ["DROP TRIGGER refuse_messages ON messages", "DROP FUNCTION refuse_messages()"],
}


async def _saved(app, session_id: int) -> tuple[int, int, list[str]]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from portico.models import ChatSession, Message

    async with app.state.sessionmaker() as db:
        session = await db.get(ChatSession, session_id)
        roles = list(await db.scalars(select(Message.role).where(Message.session_id == session_id)))
        return session.message_count, session.tokens_out, roles


@pytest.mark.parametrize("role", ["guest", "assistant"])
async def test_a_failed_message_write_keeps_neither_the_message_nor_its_count(app, client, alice: Person, role: str):
    """A guest's message, or the reply, is saved together with the session's running totals, or not at all."""
    from tests.chat_helpers import say
    from tests.conftest import start

    assistant = await alice.new_assistant(knowledge="# Parking\nParking is free behind the building.")
    session = (await start(client, public_id=assistant["public_id"])).json()
    dialect = app.state.engine.dialect.name
    await _run(app, _refuse_messages(role)[dialect])
    try:
        response = await say(client, session, "Where can I park?")
    finally:
        await _run(app, ALLOW_MESSAGES[dialect])
    assert response.status_code == 500
    message_count, tokens_out, roles = await _saved(app, session["session_id"])
    if role == "guest":
        assert (message_count, tokens_out, roles) == (0, 0, [])
    else:
        assert (message_count, tokens_out, roles) == (1, 0, ["guest"])
    assert (await say(client, session, "Where can I park?")).status_code == 200
