"""The built-in engine answers the demo assistant's own FAQ from its knowledge, offline."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portico.demo import KNOWLEDGE, seed_demo
from portico.engines import EngineRequest
from portico.engines.builtin import NO_ANSWER, BuiltinEngine, KnowledgeIndex, split_passages
from portico.models import Assistant
from tests.chat_helpers import say
from tests.conftest import start

FAQ = [
    ("What is Portico?", "self-hosted platform that publishes AI assistants"),
    ("What happens when I switch the assistant offline?", "stops every link, the widget and the API"),
    ("How many private links can I create?", "up to 50 active private links"),
    ("Can I limit the number of sessions per user?", "cap on sessions"),
    ("What if I delete a user's link?", "revokes it immediately"),
    ("Does opening a link use up a session?", "Opening a link consumes nothing"),
    ("How long does a session last?", "10 minutes without a message"),
    ("Which engines can answer?", "built-in engine answers offline"),
    ("Can I embed the chat widget on my website?", "one-line embed script"),
    ("Where can I read what people asked?", "Open Logs to read every session"),
    ("Do you store IP addresses?", "store no IP address"),
    ("How do I change what the assistant says?", "Edit the draft"),
    (
        "What's the difference between public and private sharing?",
        "Private mode only admits people who open a private link",
    ),
]


@pytest.fixture
async def demo(app, settings) -> str:
    """The demo assistant's public id, seeded as `make run` seeds it."""
    async with app.state.sessionmaker() as db:
        await seed_demo(db, settings)
        await db.commit()
        return await db.scalar(select(Assistant.public_id).limit(1))


async def test_the_demo_assistant_answers_its_own_faq(client, demo):
    session = (await start(client, public_id=demo)).json()
    for question, passage in FAQ:
        reply = (await say(client, session, question)).json()["content"]
        assert passage in reply.split("Also relevant:")[0], f"{question!r} got {reply!r}"


async def test_it_says_plainly_when_nothing_matches(client, demo):
    session = (await start(client, public_id=demo)).json()
    for question in ("What is the capital of Peru?", "How do I bake sourdough bread?", "???"):
        assert (await say(client, session, question)).json()["content"] == NO_ANSWER


def test_sections_become_passages_and_long_sections_split_by_paragraph():
    text = "Intro line.\n# A\nShort.\n## B\n" + ("x " * 300 + "\n\n") * 3
    passages = split_passages(text)
    assert [(p.title, len(p.text) > 0) for p in passages] == [
        ("", True),
        ("A", True),
        ("B", True),
        ("B", True),
        ("B", True),
    ]
    assert len(split_passages(KNOWLEDGE)) == 13


async def test_the_index_is_built_once_per_version():
    engine = BuiltinEngine()
    request = EngineRequest(
        version_key="v1", instructions="", knowledge=KNOWLEDGE, engine={"type": "builtin"}, prompt="x"
    )
    first = await engine.index_for(request)
    assert await engine.index_for(request) is first
    changed = EngineRequest(
        version_key="v2", instructions="", knowledge="# New\nText.", engine={"type": "builtin"}, prompt="x"
    )
    assert await engine.index_for(changed) is not first


def test_empty_knowledge_answers_nothing():
    assert KnowledgeIndex("").search("anything") == []
