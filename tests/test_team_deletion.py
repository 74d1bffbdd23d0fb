"""Deleting a team: the Owner only; its guests are cut off at once, its members are out and keep
their other teams, an account left with no team gets one, and the purge erases what it held."""

from __future__ import annotations

import asyncio
import html
from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portico.metrics.retention import DELETED_GRACE, purge_all_expired
from portico.models import (
    Assistant,
    AuditEvent,
    ChatSession,
    Membership,
    Message,
    PrivateLink,
    Team,
    utcnow,
)
from tests.chat_helpers import say
from tests.conftest import key_of, make_person, start
from tests.team_helpers import Team as HelperTeam
from tests.team_helpers import cli_with_accounts, make_team
from tests.test_dashboard_pages import field_errors


async def _count(app, model, *where) -> int:
    async with app.state.sessionmaker() as db:
        return await db.scalar(select(func.count()).select_from(model).where(*where)) or 0


async def test_the_owner_deletes_the_team_and_every_guest_is_cut_off_at_once(app, client):
    team = await make_team(app)
    alice, ada, ed = [await team.person(client, name) for name in ("alice", "ada", "ed")]
    public = await alice.new_assistant(name="Open helper")
    private = await alice.new_assistant(name="Closed helper", share="private")
    (link,) = await alice.new_links(private["id"], 0)
    guest = (await start(client, public_id=public["public_id"])).json()
    student = (await start(client, key=key_of(link))).json()
    assert (await say(client, guest, "When do you open?")).status_code == 200

    for refused_member in (ada, ed):
        refused = await refused_member.request("DELETE", "/api/v1/team")
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert error["code"] == "forbidden_role"
        assert error["message"].startswith(
            "Transferring ownership, renaming or deleting the team needs the Owner role."
        )
    assert (await alice.request("GET", f"/api/v1/assistants/{public['id']}")).status_code == 200

    assert (await alice.request("DELETE", "/api/v1/team")).status_code == 204

    # Guests: the public link, the widget, the private link and both running sessions stop.
    assert (await start(client, public_id=public["public_id"])).status_code == 404
    assert (await start(client, widget_id=public["widget_id"])).status_code == 404
    assert (await client.post("/api/v1/chat/lookup", json={"public_id": public["public_id"]})).status_code == 404
    assert (await start(client, key=key_of(link))).status_code in (403, 404)
    for session in (guest, student):
        assert (await say(client, session, "Still there?")).status_code == 404
    assert (await client.get(f"/c/{public['public_id']}")).status_code == 404
    async with app.state.sessionmaker() as db:
        reasons = set(
            await db.scalars(
                select(ChatSession.end_reason).where(ChatSession.id.in_([guest["session_id"], student["session_id"]]))
            )
        )
    assert reasons == {"assistant_deleted"}

    # Members: every token for the team stops, the Owner's included.
    for person in (alice, ada, ed):
        response = await person.request("GET", "/api/v1/assistants")
        assert response.status_code == 401, response.text
    assert await _count(app, Membership, Membership.team_id == team.id) == 0
    # Twice: the team is gone for everyone, the Owner's next token included.
    again = await team.person(client, "alice")
    assert (await again.request("DELETE", "/api/v1/team")).status_code == 401


async def test_members_keep_their_other_teams_and_an_account_left_with_none_gets_one(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    bob = await make_person(app, client, "bob@example.com")
    bobs_own = await bob.new_assistant(name="Bob's own")
    bob_team = (await bob.request("GET", "/api/v1/team")).json()
    async with app.state.sessionmaker() as db:
        db.add(Membership(team_id=team.id, owner_id=bob_team["members"][0]["id"], role="admin"))
        await db.commit()
    # Alice's own team is the one she deletes: she has no other. Bob's browser works in her team.
    bob_web = await HelperTeam(
        app=app, id=team.id, name=team.name, accounts={"bob": bob_team["members"][0]["id"]}
    ).browser("bob")
    assert "Bob&#39;s own" not in (await bob_web.get("/dashboard")).text

    assert (await alice.request("DELETE", "/api/v1/team")).status_code == 204

    # Bob is back in his own team, in the browser and through his token for it.
    home = await bob_web.get("/dashboard")
    assert home.status_code == 200 and "Bob&#39;s own" in home.text
    assert (await bob.request("GET", f"/api/v1/assistants/{bobs_own['id']}")).status_code == 200
    await bob_web.http.aclose()
    # Alice had no other team: she has a new, empty one of her own, where she is the Owner.
    async with app.state.sessionmaker() as db:
        teams = list(
            await db.execute(
                select(Team.id, Team.name, Membership.role)
                .join(Membership, Membership.team_id == Team.id)
                .where(Membership.owner_id == team.accounts["alice"])
            )
        )
    assert [(name, role) for _id, name, role in teams] == [
        ("My team", "owner")
    ]  # a new own team: no name kept to name it after
    assert teams[0][0] != team.id
    # Ada, Ed and Tim had their own teams from sign-up: they were given none.
    assert await _count(app, Team, Team.name == "Ada's team") == 1


async def test_the_dashboard_asks_for_the_teams_name_and_deletes_only_the_team_it_showed(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    await alice.new_assistant(name="Riverside Library")
    web = await team.browser("alice")
    page = await web.get("/dashboard/team")
    assert "Delete this team" in page.text
    assert "deletes its\n    1 assistant:" in page.text and "Its 4\n    members lose access" in page.text

    for typed, said in [
        ("", "Type the team's name to confirm."),
        (team.name.upper(), "Type the team's name exactly as shown above to delete it."),
    ]:
        refused = await web.post("/dashboard/team/delete", {"team_id": str(team.id), "confirm_name": typed})
        assert refused.status_code == 422
        assert html.unescape(field_errors(refused.text)["confirm_name"]) == said
        assert f'value="{typed}"' in html.unescape(refused.text)
    # A page shown for another team (or a second click) deletes nothing.
    for other in ("", "abc", str(team.id + 1000)):
        refused = await web.post("/dashboard/team/delete", {"team_id": other, "confirm_name": team.name})
        assert refused.status_code == 404, other
    assert (await alice.request("GET", "/api/v1/team")).status_code == 200

    # An Admin sees the reason and is refused.
    ada_web = await team.browser("ada")
    ada_page = await ada_web.get("/dashboard/team")
    assert "Transferring ownership, renaming or deleting the team needs the Owner role." in ada_page.text
    refused = await ada_web.post("/dashboard/team/delete", {"team_id": str(team.id), "confirm_name": team.name})
    assert refused.status_code == 403
    await ada_web.http.aclose()

    deleted = await web.post("/dashboard/team/delete", {"team_id": str(team.id), "confirm_name": f" {team.name} "})
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/dashboard?done=team_deleted")
    home = await web.get("/dashboard?done=team_deleted")
    assert "The team was deleted: its assistants stopped answering at once" in home.text
    assert "You are now working in the team My team." in home.text
    assert "Riverside Library" not in home.text
    # The second click: this browser works in her new team now, which the form did not show.
    again = await web.post("/dashboard/team/delete", {"team_id": str(team.id), "confirm_name": team.name})
    assert again.status_code == 404
    await web.http.aclose()


async def test_an_invitation_to_a_deleted_team_no_longer_works(app, client):
    from portico.identity import invitations
    from portico.vocabulary import TeamRole

    team = await make_team(app)
    alice = await team.person(client, "alice")
    async with app.state.sessionmaker() as db:
        _invitation, secret = await invitations.create(db, member=team.member("alice"), role=TeamRole.EDITOR)
        await db.commit()
    assert (await alice.request("DELETE", "/api/v1/team")).status_code == 204
    async with app.state.sessionmaker() as db:
        with pytest.raises(invitations.InvitationRevoked):
            await invitations.check(db, secret=secret)


async def test_two_deletions_at_once_delete_it_once(app, client):
    team = await make_team(app)
    first, second = await team.person(client, "alice"), await team.person(client, "alice")
    await first.new_assistant()
    answers = await asyncio.gather(first.request("DELETE", "/api/v1/team"), second.request("DELETE", "/api/v1/team"))
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses[0] == 204 and statuses[1] in (401, 404), [a.text for a in answers]
    # Alice was given exactly one new team.
    assert await _count(app, Membership, Membership.owner_id == team.accounts["alice"]) == 1


async def test_the_purge_erases_a_deleted_team_after_the_grace_and_nothing_else(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    bob = await make_person(app, client, "bob@example.com")
    doomed = await alice.new_assistant()
    await alice.new_links(doomed["id"], 0, 3)
    kept = await bob.new_assistant()
    for assistant in (doomed, kept):
        session = (await start(client, public_id=assistant["public_id"])).json()
        assert (await say(client, session, "When do you open?")).status_code == 200
    assert (await alice.request("DELETE", "/api/v1/team")).status_code == 204

    # Within the grace nothing is erased: a reply finishing elsewhere still finds its rows.
    await purge_all_expired(app.state.sessionmaker)
    assert await _count(app, Team, Team.id == team.id) == 1
    assert await _count(app, ChatSession, ChatSession.assistant_id == doomed["id"]) == 1

    async with app.state.sessionmaker() as db:
        long_ago = utcnow() - DELETED_GRACE - timedelta(minutes=1)
        await db.execute(update(Team).where(Team.id == team.id).values(deleted_at=long_ago))
        await db.execute(update(Assistant).where(Assistant.team_id == team.id).values(deleted_at=long_ago))
        await db.commit()
    assert await purge_all_expired(app.state.sessionmaker) >= 3  # a session, an assistant, a team

    assert await _count(app, Team, Team.id == team.id) == 0
    assert await _count(app, Assistant, Assistant.id == doomed["id"]) == 0
    assert await _count(app, ChatSession, ChatSession.assistant_id == doomed["id"]) == 0
    assert await _count(app, PrivateLink, PrivateLink.assistant_id == doomed["id"]) == 0
    assert await _count(app, AuditEvent, AuditEvent.team_id == team.id) == 0
    # Bob's assistant, its session and its transcript are untouched.
    assert (await bob.request("GET", f"/api/v1/assistants/{kept['id']}")).status_code == 200
    assert await _count(app, ChatSession, ChatSession.assistant_id == kept["id"]) == 1
    assert await _count(app, Message) >= 2
    assert (await start(client, public_id=kept["public_id"])).status_code == 201


async def test_a_deleted_assistant_is_erased_by_the_purge_too(app, client, alice):
    assistant = await alice.new_assistant()
    session = (await start(client, public_id=assistant["public_id"])).json()
    assert (await say(client, session, "When do you open?")).status_code == 200
    assert (await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}")).status_code == 204
    async with app.state.sessionmaker() as db:
        long_ago = utcnow() - DELETED_GRACE - timedelta(minutes=1)
        await db.execute(update(Assistant).where(Assistant.id == assistant["id"]).values(deleted_at=long_ago))
        await db.commit()
    await purge_all_expired(app.state.sessionmaker)
    assert await _count(app, Assistant, Assistant.id == assistant["id"]) == 0
    assert await _count(app, Message) == 0
    # The audit log keeps its entries, by name.
    async with app.state.sessionmaker() as db:
        entry = await db.scalar(select(AuditEvent).where(AuditEvent.action == "assistant.deleted"))
    assert entry is not None and entry.assistant_id is None and entry.detail["name"] == "Helper"


def test_the_cli_lists_teams_and_deletes_one(settings):
    run = cli_with_accounts(settings, "alice@example.com", "=bob@example.com")
    listed = run("teams", "list").stdout.splitlines()
    assert listed == [
        "id,name,owner,members,assistants",
        "1,Alice's team,alice@example.com,1,0",
        "2,'=bob's team,'=bob@example.com,1,0",
    ]
    kept = run("teams", "delete", "Alice's team", given="n\n")
    assert kept.exit_code == 1 and "Delete the team Alice's team: 0 assistants" in kept.output
    assert len(run("teams", "list").stdout.splitlines()) == 3
    deleted = run("teams", "delete", "1", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert "Deleted the team Alice's team: 0 assistants cut off, 1 members out" in deleted.output
    # Alice got a new team of her own; the old one is gone for the CLI too.
    listed = run("teams", "list").stdout.splitlines()
    assert [line.split(",")[1] for line in listed[1:]] == ["'=bob's team", "My team"]
    gone = run("teams", "delete", "1", "--yes")
    assert gone.exit_code != 0 and "No team with the id or name '1'" in gone.output
