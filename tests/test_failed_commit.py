"""The request owns the transaction and commits before answering: a failed commit is a 500."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
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


async def test_a_failed_commit_on_session_start_takes_no_use(client, alice: Person):
    from tests.conftest import key_of, start

    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 1)
    with commits_fail():
        assert (await start(client, key=key_of(link))).status_code == 500
    assert (await start(client, key=key_of(link))).status_code == 201
