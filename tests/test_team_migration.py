"""Migration 0010 gives each existing owner a team holding their assistants: nothing is lost, and
their tokens, dashboard sessions, links and guest sessions go on working."""

from __future__ import annotations

from sqlalchemy import text

from portico.db import make_engine
from portico.migrations.run import downgrade_connection, upgrade_connection
from tests.conftest import key_of, make_person, start
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.test_migrations import a_day_of_use, migrate, row_counts

# What turn one did not have: the teams' own tables are made by 0010, the others later.
TURN_ONE = {"teams", "memberships", "invitations", "audit_events", "retired_link_keys", "documents"}


async def test_owners_with_assistants_links_and_sessions_become_teams_without_loss(app, client, alice, database_url):
    await a_day_of_use(app, client, alice)
    bob = await make_person(app, client, "bob@example.com")
    bobs = await bob.new_assistant(name="Bob's")
    (bobs_link,) = await bob.new_links(bobs["id"], 2)
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in("bob@example.com", "correct horse battery")
        engine = make_engine(database_url)
        try:
            await migrate(engine, downgrade_connection, "0009")
            async with engine.begin() as conn:
                # Turn one's data as turn one wrote it: the audit trail and extra teams did not exist.
                owned = dict((await conn.execute(text("SELECT id, owner_id FROM assistants"))).all())
                emails = dict((await conn.execute(text("SELECT id, email FROM owners"))).all())
            before = await row_counts(engine, leave_out=TURN_ONE)

            await migrate(engine, upgrade_connection, "head")
            assert await row_counts(engine, leave_out=TURN_ONE) == before
            async with engine.connect() as conn:
                teams = dict((await conn.execute(text("SELECT id, name FROM teams"))).all())
                members = (await conn.execute(text("SELECT team_id, owner_id, role FROM memberships"))).all()
                now_owned = dict((await conn.execute(text("SELECT id, team_id FROM assistants"))).all())
        finally:
            # Whatever failed, the worker's database goes back to head for the tests after this one.
            await migrate(engine, upgrade_connection, "head")
            await engine.dispose()
        assert teams == emails
        assert sorted(members) == sorted((owner, owner, "owner") for owner in emails)
        assert now_owned == owned

        # The same tokens and the same signed-in browser see the same assistants.
        mine = (await alice.request("GET", "/api/v1/assistants")).json()["items"]
        assert [a["name"] for a in mine] == ["Helper"]
        assert [a["name"] for a in (await bob.request("GET", "/api/v1/assistants")).json()["items"]] == ["Bob's"]
        assert "Bob&#39;s" in (await web.get("/dashboard")).text
        # Links and the gate are untouched.
        assert (await start(client, key=key_of(bobs_link))).status_code == 201
        # New teams and tokens after the migration get fresh ids (PostgreSQL's sequence moved on).
        carol = await make_person(app, client, "carol@example.com")
        assert (await carol.request("GET", "/api/v1/team")).json()["role"] == "owner"
