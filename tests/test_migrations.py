"""Migrations undo what they do, keep the rows they rebuild around, and hold the vocabulary's CHECKs."""

from __future__ import annotations

import pytest
from sqlalchemy import CheckConstraint, func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from portico.db import make_engine
from portico.metrics.rollup import rollup_recent
from portico.migrations.run import downgrade_connection, upgrade_connection
from portico.models import Base
from tests.chat_helpers import bearer, say
from tests.conftest import Person, key_of, start

TABLES = [table.name for table in Base.metadata.sorted_tables]
WITH_DATA = {
    "owners",
    "api_tokens",
    "assistants",
    "assistant_versions",
    "private_links",
    "chat_sessions",
    "messages",
    "usage_hourly",
    "usage_user_hourly",
    "refusals_hourly",
    "daily_usage",
    "teams",
    "memberships",
    "audit_events",
}
# Tables that migrations after 0004 create: gone on the way down to 0004, empty on the way up
# (or, for teams, made again from the owners: tests/test_team_migration.py).
SINCE_0004 = {
    "daily_usage",
    "teams",
    "memberships",
    "invitations",
    "audit_events",
    "retired_link_keys",
    "documents",
}


async def a_day_of_use(app, client, alice: Person) -> None:
    assistant = await alice.new_assistant(
        knowledge="# Parking\nParking is free behind the building.", starters=["Where can I park?"]
    )
    quotas = {"quotas": {"messages_per_session": 10, "sessions_per_day": 100, "tokens_per_day": 100_000}}
    assert (await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json=quotas)).status_code == 200
    (link,) = await alice.new_links(assistant["id"], 1)
    for body in ({"key": key_of(link)}, {"public_id": assistant["public_id"]}):
        session = (await start(client, **body)).json()
        reply = (await say(client, session, "Where can I park?")).json()
    # Rated, with its sources and starters on the version: 0009's columns hold data too.
    feedback = {"rating": "down", "reason": "unclear", "comment": "Which building?"}
    path = f"/api/v1/chat/sessions/{session['session_id']}/messages/{reply['message_id']}/feedback"
    assert (await client.post(path, json=feedback, headers=bearer(session))).status_code == 200
    await client.post(f"/api/v1/chat/sessions/{session['session_id']}/end", headers=bearer(session))
    assert (await start(client, key=key_of(link))).status_code == 403  # exhausted: a refusal counted
    await rollup_recent(app.state.sessionmaker)


async def row_counts(engine, *, leave_out: set[str] = frozenset()) -> dict[str, int]:
    async with engine.connect() as conn:
        return {
            table: (await conn.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one()
            for table in TABLES
            if table not in leave_out
        }


async def schema_objects(engine) -> list[str]:
    """Every table, index, trigger and function the migrations could have left behind."""
    if engine.dialect.name == "sqlite":
        query = "SELECT type || ' ' || name FROM sqlite_master WHERE name NOT LIKE 'sqlite_autoindex_%'"
    else:
        query = (
            "SELECT 'table ' || tablename FROM pg_tables WHERE schemaname = 'public' "
            "UNION ALL SELECT 'index ' || indexname FROM pg_indexes WHERE schemaname = 'public' "
            "UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE pronamespace = 'public'::regnamespace "
            "UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typnamespace = 'public'::regnamespace "
            "AND typtype <> 'c' AND typname NOT LIKE '\\_%'"
        )
    async with engine.connect() as conn:
        return sorted((await conn.execute(text(query))).scalars())


async def migrate(engine, step, revision: str) -> None:
    async with engine.begin() as conn:
        await conn.run_sync(step, revision)


async def test_migrations_go_down_to_nothing_and_up_again_with_data_in_the_tables(app, client, alice, database_url):
    await a_day_of_use(app, client, alice)
    engine = make_engine(database_url)
    try:
        counts = await row_counts(engine)
        assert {table for table, count in counts.items() if count} >= WITH_DATA
        at_head = await schema_objects(engine)

        # 0005 and 0006 rebuild tables on SQLite: no row may be lost on the way down or up again.
        older = {table: count for table, count in counts.items() if table not in SINCE_0004}
        await migrate(engine, downgrade_connection, "0004")
        assert await row_counts(engine, leave_out=SINCE_0004) == older
        await migrate(engine, upgrade_connection, "head")
        assert await row_counts(engine, leave_out=SINCE_0004) == older
        assert await schema_objects(engine) == at_head

        await migrate(engine, downgrade_connection, "base")
        assert await schema_objects(engine) == (
            ["table alembic_version"]
            if engine.dialect.name == "sqlite"
            else ["index alembic_version_pkc", "table alembic_version"]
        )
        await migrate(engine, upgrade_connection, "head")
        assert await schema_objects(engine) == at_head
    finally:
        await engine.dispose()


async def test_full_text_search_still_follows_messages_after_a_rebuild(database_url):
    engine = make_engine(database_url)
    try:
        await migrate(engine, downgrade_connection, "0004")
        await migrate(engine, upgrade_connection, "head")
        async with engine.begin() as conn:
            # At head a team owns the assistant (migration 0010); ASSISTANT is turn one's statement.
            team = (await conn.execute(text(TEAM))).scalar_one()
            at_head = ASSISTANT.replace("(owner_id,", "(team_id,")
            assistant = (await conn.execute(text(at_head), {"owner": team})).scalar_one()
            session = (await conn.execute(text(SESSION), {"assistant": assistant})).scalar_one()
            await conn.execute(text(MESSAGE), {"session": session, "content": "the heron flies at dawn"})
        async with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                found = "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH 'heron'"
            else:
                # The session's vector in Logs search's side table (migration 0014), kept by its triggers.
                found = "SELECT count(*) FROM session_search WHERE search @@ plainto_tsquery('simple', 'heron')"
            assert (await conn.execute(text(found))).scalar_one() == 1
    finally:
        await engine.dispose()


OWNER = "INSERT INTO owners (email, password_hash, created_at) VALUES ('o@example.com', 'x', CURRENT_TIMESTAMP) RETURNING id"
TEAM = "INSERT INTO teams (name, created_at) VALUES ('o@example.com', CURRENT_TIMESTAMP) RETURNING id"
ASSISTANT = (
    "INSERT INTO assistants (owner_id, public_id, widget_id, name, description, status, share_mode, draft, "
    "draft_digest, allowed_domains, created_at, updated_at) VALUES (:owner, 'pub', 'wid', 'A', '', 'live', 'public', '{}', 'd', '[]', "
    "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
)
SESSION = (
    "INSERT INTO chat_sessions (assistant_id, version_number, channel, token_digest, started_at, last_activity_at) "
    "VALUES (:assistant, 1, 'link', 'digest', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
)
MESSAGE = (
    "INSERT INTO messages (session_id, role, content, created_at) "
    "VALUES (:session, 'guest', :content, CURRENT_TIMESTAMP) RETURNING id"
)


@pytest.mark.parametrize(
    ("table", "allowed", "refused", "constraint"),
    [
        ("assistants", "status = 'offline'", "status = 'paused'", "ck_assistants_status"),
        ("assistants", "share_mode = 'private'", "share_mode = 'secret'", "ck_assistants_share_mode"),
        ("chat_sessions", "channel = 'widget'", "channel = 'email'", "ck_chat_sessions_channel"),
        ("chat_sessions", "end_reason = NULL", "end_reason = 'bored'", "ck_chat_sessions_end_reason"),
        ("chat_sessions", "end_reason = 'inactivity'", "end_reason = ''", "ck_chat_sessions_end_reason"),
        ("chat_sessions", "end_reason = 'link_reissued'", "end_reason = 'reissued'", "ck_chat_sessions_end_reason"),
        ("refusals_hourly", "code = 'link_reissued'", "code = 'reissued'", "ck_refusals_hourly_code"),
        ("messages", "role = 'assistant'", "role = 'system'", "ck_messages_role"),
        ("refusals_hourly", "code = 'rate_limited'", "code = 'just_because'", "ck_refusals_hourly_code"),
        ("refusals_hourly", "code = 'message_limit_reached'", "code = 'just_because'", "ck_refusals_hourly_code"),
        ("assistants", "sessions_per_day = 0", "sessions_per_day = -1", "ck_assistants_sessions_per_day"),
        ("assistants", "tokens_per_day = 5", "tokens_per_day = -5", "ck_assistants_tokens_per_day"),
        ("assistants", "messages_per_session = 1", "messages_per_session = -1", "ck_assistants_messages_per_session"),
        ("messages", "rating = 'down'", "rating = 'meh'", "ck_messages_rating"),
        ("messages", "rating_reason = 'unclear'", "rating_reason = 'rude'", "ck_messages_rating_reason"),
        ("messages", "rating_comment = 'ok'", "rating_comment = '" + "x" * 501 + "'", "ck_messages_rating_comment"),
        ("memberships", "role = 'admin'", "role = 'boss'", "ck_memberships_role"),
        ("audit_events", "action = 'assistant.published'", "action = 'hacked'", "ck_audit_events_action"),
        ("teams", "name = 'x'", "name = ''", "ck_teams_name_length"),
    ],
)
async def test_the_database_refuses_a_word_outside_the_vocabulary(
    app, client, alice: Person, table, allowed, refused, constraint
):
    await a_day_of_use(app, client, alice)
    async with app.state.engine.begin() as conn:
        await conn.execute(text(f"UPDATE {table} SET {allowed}"))
    with pytest.raises(IntegrityError) as refusal:
        async with app.state.engine.begin() as conn:
            await conn.execute(text(f"UPDATE {table} SET {refused}"))
    assert constraint in str(refusal.value.orig)


async def test_the_schema_holds_every_check_the_models_declare(app):
    declared = {
        (table.name, constraint.name)
        for table in Base.metadata.sorted_tables
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    async with app.state.engine.connect() as conn:
        built = await conn.run_sync(
            lambda sync: {
                (table, check["name"]) for table in TABLES for check in inspect(sync).get_check_constraints(table)
            }
        )
    assert len(declared) == 17
    assert built == declared


async def test_a_status_outside_the_vocabulary_is_refused_through_the_orm_too(app, client, alice: Person):
    from portico.models import Assistant

    assistant = await alice.new_assistant()
    with pytest.raises(IntegrityError):
        async with app.state.sessionmaker() as db, db.begin():
            row = await db.scalar(select(Assistant).where(Assistant.id == assistant["id"]))
            row.status = "paused"
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Assistant).where(Assistant.status == "live")) == 1
