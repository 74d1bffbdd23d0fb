"""Teams: roles applied at once to tokens, the Owner who stays, names, switching, and the issue's bad input."""

from __future__ import annotations

import asyncio
import html

from sqlalchemy import func, select

from portico.models import AuditEvent, Membership
from tests.conftest import make_person
from tests.team_helpers import cli_with_accounts, make_team


async def test_a_new_account_owns_a_team_of_its_own(client, alice):
    team = (await alice.request("GET", "/api/v1/team")).json()
    assert team["role"] == "owner"
    assert [(m["email"], m["role"]) for m in team["members"]] == [("alice@example.com", "owner")]


async def test_a_demoted_admins_token_loses_admin_rights_at_once(app, client):
    team = await make_team(app)
    alice, ada = await team.person(client, "alice"), await team.person(client, "ada")
    assistant = await alice.new_assistant(publish=False, live=False)
    publish = f"/api/v1/assistants/{assistant['id']}/publish"
    assert (await ada.request("POST", publish)).status_code == 201

    changed = await alice.request("PATCH", f"/api/v1/team/members/{team.accounts['ada']}", json={"role": "editor"})
    assert changed.status_code == 200 and changed.json()["role"] == "editor"
    refused = await ada.request("POST", publish)
    assert refused.status_code == 403
    assert refused.json()["error"] == {
        "code": "forbidden_role",
        "message": "Publishing or restoring a version needs the Admin or Owner role. You are an Editor here.",
    }
    # Still a member: reading and editing drafts go on.
    assert (
        await ada.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"name": "Mine"})
    ).status_code == 200


async def test_a_removed_members_tokens_stop_at_once_and_stay_stopped(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    assert (await ed.request("GET", "/api/v1/assistants")).status_code == 200
    assert (await alice.request("DELETE", f"/api/v1/team/members/{team.accounts['ed']}")).status_code == 204
    response = await ed.request("GET", "/api/v1/assistants")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_token"
    async with app.state.sessionmaker() as db:
        db.add(Membership(team_id=team.id, owner_id=team.accounts["ed"], role="editor"))
        await db.commit()
    # Invited again later: the old token stays revoked.
    assert (await ed.request("GET", "/api/v1/assistants")).status_code == 401


async def test_an_editor_is_refused_what_changes_what_guests_get_and_nothing_changes(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    a = f"/api/v1/assistants/{assistant['id']}"
    refused = [
        ("PATCH", a, {"quotas": {"sessions_per_day": 1}}),
        ("PATCH", a, {"retention_days": 1}),
        ("PATCH", a, {"store_transcripts": False}),
        ("PATCH", a, {"allowed_domains": ["evil.example"]}),
        ("PATCH", a, {"name": "Fine", "quotas": {"tokens_per_day": 5}}),
        ("PUT", f"{a}/share", {"mode": "public", "access_code": "let me in"}),
        ("PATCH", f"{a}/links/{link['id']}", {"max_sessions": 0}),
    ]
    for method, path, body in refused:
        response = await ed.request(method, path, json=body)
        assert response.status_code == 403, (method, path, body, response.text)
        assert response.json()["error"]["code"] == "forbidden_role"
    after = (await alice.request("GET", a)).json()
    assert after == assistant
    assert (await alice.request("GET", f"{a}/links")).json()["items"] == [link]


async def test_the_owner_stays_until_ownership_is_transferred(app, client):
    team = await make_team(app)
    alice, ada = await team.person(client, "alice"), await team.person(client, "ada")
    left = await alice.request("POST", "/api/v1/team/leave")
    assert left.status_code == 409 and left.json()["error"]["code"] == "owner_stays"
    demoted = await ada.request("PATCH", f"/api/v1/team/members/{team.accounts['alice']}", json={"role": "editor"})
    assert demoted.status_code == 409 and demoted.json()["error"]["code"] == "owner_stays"
    removed = await ada.request("DELETE", f"/api/v1/team/members/{team.accounts['alice']}")
    assert removed.status_code == 409
    made_owner = await alice.request("PATCH", f"/api/v1/team/members/{team.accounts['ada']}", json={"role": "owner"})
    assert made_owner.status_code == 422
    self_removed = await ada.request("DELETE", f"/api/v1/team/members/{team.accounts['ada']}")
    assert self_removed.status_code == 409 and self_removed.json()["error"]["code"] == "cannot_remove_self"
    assert (
        await ada.request("POST", "/api/v1/team/transfer", json={"member_id": team.accounts["tim"]})
    ).status_code == 403

    moved = await alice.request("POST", "/api/v1/team/transfer", json={"member_id": team.accounts["ada"]})
    assert moved.status_code == 200
    roles = {m["email"]: m["role"] for m in moved.json()["members"]}
    assert roles["ada@example.com"] == "owner" and roles["alice@example.com"] == "admin"
    assert (await alice.request("POST", "/api/v1/team/leave")).status_code == 204
    assert (await alice.request("GET", "/api/v1/team")).status_code == 401
    async with app.state.sessionmaker() as db:
        owners = await db.scalar(select(func.count()).where(Membership.team_id == team.id, Membership.role == "owner"))
    assert owners == 1


async def test_two_admins_changing_one_members_role_at_once_both_apply_in_turn(app, client):
    team = await make_team(app)
    alice, ada = await team.person(client, "alice"), await team.person(client, "ada")
    path = f"/api/v1/team/members/{team.accounts['tim']}"
    first, second = await asyncio.gather(
        alice.request("PATCH", path, json={"role": "admin"}), ada.request("PATCH", path, json={"role": "editor"})
    )
    assert (first.status_code, second.status_code) == (200, 200)
    final = {m["email"]: m["role"] for m in (await alice.request("GET", "/api/v1/team")).json()["members"]}
    assert final["tim@example.com"] in ("admin", "editor")
    async with app.state.sessionmaker() as db:
        rows = await db.scalar(
            select(func.count()).where(AuditEvent.team_id == team.id, AuditEvent.action == "member.role_changed")
        )
    # Editor to admin and back is two changes; "editor" first changed nothing, and wrote nothing.
    assert rows == (2 if final["tim@example.com"] == "editor" else 1)


async def test_a_team_name_has_1_to_200_characters(client, alice):
    for name in ("", "   ", "x" * 201):
        response = await alice.request("PATCH", "/api/v1/team", json={"name": name})
        assert response.status_code == 422, name
        assert response.json()["error"]["code"] == "invalid_request"
    assert (await alice.request("PATCH", "/api/v1/team", json={"name": "x" * 200})).json()["name"] == "x" * 200
    assert (await alice.request("PATCH", "/api/v1/team", json={"name": " Maths "})).json()["name"] == "Maths"


async def test_a_member_cannot_be_managed_from_another_team(app, client):
    team = await make_team(app)
    bob = await make_person(app, client, "bob@example.com")
    for method, path, body in [
        ("PATCH", f"/api/v1/team/members/{team.accounts['ed']}", {"role": "admin"}),
        ("DELETE", f"/api/v1/team/members/{team.accounts['ed']}", None),
        ("POST", "/api/v1/team/transfer", {"member_id": team.accounts["ed"]}),
    ]:
        response = await bob.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
    assert len((await (await team.person(client, "alice")).request("GET", "/api/v1/team")).json()["members"]) == 4


async def test_the_dashboard_switches_only_to_a_team_one_is_in(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    await alice.new_assistant(name="Team helper")
    bob = await make_person(app, client, "bob@example.com")
    await bob.new_assistant(name="Bob's own")
    own_team = (await bob.request("GET", "/api/v1/team")).json()
    bob_id = own_team["members"][0]["id"]
    async with app.state.sessionmaker() as db:
        db.add(Membership(team_id=team.id, owner_id=bob_id, role="editor"))
        await db.commit()
    from tests.team_helpers import Team

    web = await Team(app=app, id=own_team["id"], name="", accounts={"bob": bob_id}).browser("bob")
    home = await web.get("/dashboard")
    assert "Bob&#39;s own" in home.text and "Team helper" not in home.text
    switched = await web.post("/dashboard/team/switch", {"team_id": str(team.id)})
    assert switched.status_code == 303
    home = await web.get("/dashboard")
    assert "Team helper" in home.text and "Bob&#39;s own" not in home.text
    assert "Alice&#39;s team (Editor)" in home.text
    for other in ("999999", "abc", "", str(team.id + 100)):
        assert (await web.post("/dashboard/team/switch", {"team_id": other})).status_code == 404, other
    # An Editor sees why Publish is greyed out.
    assistant_id = (await alice.request("GET", "/api/v1/assistants")).json()["items"][0]["id"]
    publish = await web.get(f"/dashboard/assistants/{assistant_id}/publish")
    assert "Publishing or restoring a version needs the Admin or Owner role." in publish.text
    assert '<fieldset class="role-locked" disabled' in publish.text
    await web.http.aclose()


def test_the_cli_adds_a_member_to_a_team_with_a_role(settings):
    run = cli_with_accounts(settings, "alice@example.com", "bob@example.com")
    added = run("members", "add", "bob@example.com", "--team", "Alice's team", "--role", "admin")
    assert added.exit_code == 0, added.output
    assert "bob@example.com is now admin of the team Alice's team." in added.stdout
    listed = run("members", "list", "--team", "1").stdout.splitlines()
    assert [line.split(",")[1:3] for line in listed[1:]] == [
        ["alice@example.com", "owner"],
        ["bob@example.com", "admin"],
    ]
    for args, said in [
        (("bob@example.com", "--team", "Alice's team", "--role", "editor"), "already a member"),
        (("carol@example.com", "--team", "1", "--role", "editor"), "No owner with the email"),
        (("bob@example.com", "--team", "nobody's", "--role", "editor"), "No team with the id or name"),
        (("bob@example.com", "--team", "2", "--role", "owner"), "transfer ownership"),
    ]:
        result = run("members", "add", *args)
        assert result.exit_code != 0 and said in result.output, (args, result.output)
    assert run("members", "add", "bob@example.com", "--team", "1", "--role", "boss").exit_code == 2


async def test_a_member_starts_a_team_of_their_own_and_works_in_it(app, client):
    team = await make_team(app)
    ed = await team.person(client, "ed")
    web = await team.browser("ed")
    for name, said in [("   ", "Give the team a name of 1 to 200 characters."), ("x" * 201, "1 to 200 characters")]:
        refused = await web.post("/dashboard/teams", {"name": name})
        assert refused.status_code == 422 and said in refused.text
        assert f'value="{name}"' in refused.text  # what was typed stays in the box
    started = await web.post("/dashboard/teams", {"name": " Client 101 trial "})
    assert (started.status_code, started.headers["location"]) == (303, "/dashboard/team?done=started")
    page = await web.get("/dashboard/team?done=started")
    assert "Your new team is ready: you are its Owner." in page.text
    assert "<h1>Client 101 trial" in page.text
    assert "Client 101 trial (Owner)" in page.text and f"{team.name} (Editor)" in html.unescape(page.text)
    # Alice's team is untouched, and Ed's token still works in it, as an Editor.
    assert (await ed.request("GET", "/api/v1/team")).json()["role"] == "editor"
    async with app.state.sessionmaker() as db:
        owned = await db.scalar(
            select(func.count())
            .select_from(Membership)
            .where(Membership.owner_id == team.accounts["ed"], Membership.role == "owner")
        )
    assert owned == 2  # the team of his own from sign-up, and this one

    # At most 50 teams of one's own: the 51st is refused with the reason, and nothing is made.
    async with app.state.sessionmaker() as db:
        from portico.identity import members
        from portico.models import Owner

        account = await db.get(Owner, team.accounts["ed"])
        for number in range(48):
            await members.create_team(db, account=account, name=f"Class {number}")
        await db.commit()
    refused = await web.post("/dashboard/teams", {"name": "One too many"})
    assert refused.status_code == 409
    assert "An account can own at most 50 teams; delete one or transfer it first." in refused.text
    assert "One too many (Owner)" not in (await web.get("/dashboard/team")).text
    await web.http.aclose()
