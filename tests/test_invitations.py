"""Invitations without email: the secret in the fragment, single use, 7 days, revocable."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from portico.models import Invitation, Owner, utcnow
from tests.conftest import make_person
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.team_helpers import PASSWORD, make_team


def secret_of(created: dict) -> str:
    return created["invitation_url"].split("#i=", 1)[1]


async def invite(person, role: str = "editor") -> dict:
    response = await person.request("POST", "/api/v1/team/invitations", json={"role": role})
    assert response.status_code == 201, response.text
    return response.json()


async def join(app, email: str, secret: str, mode: str = "sign-in", password: str = PASSWORD):
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.get("/dashboard/join")
        return await web.post(
            "/dashboard/join", {"invitation": secret, "mode": mode, "email": email, "password": password}
        )


async def roles(person) -> dict[str, str]:
    return {m["email"]: m["role"] for m in (await person.request("GET", "/api/v1/team")).json()["members"]}


async def test_an_invitation_is_a_link_whose_secret_only_the_fragment_holds(app, client, alice):
    created = await invite(alice)
    assert created["invitation_url"].startswith("http://portico.test/dashboard/join#i=pti_")
    assert created["role"] == "editor"
    assert created["expires_at"].startswith(str((utcnow() + timedelta(days=7)).date()))
    async with app.state.sessionmaker() as db:
        row = await db.scalar(select(Invitation))
    assert secret_of(created) not in (row.digest, str(row.id))
    listed = (await alice.request("GET", "/api/v1/team/invitations")).json()["items"]
    assert [i["id"] for i in listed] == [created["id"]] and "invitation_url" not in listed[0]


async def test_an_existing_account_joins_once_and_a_second_use_is_refused(app, client, alice):
    bob = await make_person(app, client, "bob@example.com")
    carol = await make_person(app, client, "carol@example.com")
    secret = secret_of(await invite(alice))
    joined = await join(app, "bob@example.com", secret)
    assert joined.status_code == 303 and joined.headers["location"] == "/dashboard/team?done=joined"
    assert (await roles(alice))["bob@example.com"] == "editor"
    again = await join(app, "carol@example.com", secret)
    assert again.status_code == 409 and "already been used" in again.text
    assert "carol@example.com" not in await roles(alice)
    assert (await bob.request("GET", "/api/v1/team")).json()["role"] == "owner"  # bob's token: his own team
    assert carol


async def test_an_expired_or_withdrawn_invitation_is_refused_and_joins_no_one(app, client, alice):
    await make_person(app, client, "bob@example.com")
    expired, withdrawn = await invite(alice), await invite(alice, "admin")
    async with app.state.sessionmaker() as db:
        await db.execute(
            update(Invitation).where(Invitation.id == expired["id"]).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await db.commit()
    assert (await alice.request("DELETE", f"/api/v1/team/invitations/{withdrawn['id']}")).status_code == 204
    assert (await alice.request("DELETE", f"/api/v1/team/invitations/{withdrawn['id']}")).status_code == 404
    response = await join(app, "bob@example.com", secret_of(expired))
    assert response.status_code == 410 and "expired" in response.text
    response = await join(app, "bob@example.com", secret_of(withdrawn))
    assert response.status_code == 410 and "withdrawn" in response.text
    for garbage in ("", "pti_short", "ptk_" + "a" * 43, secret_of(expired)[:-1] + "!"):
        response = await join(app, "bob@example.com", garbage)
        assert response.status_code == 404 and "not valid" in response.text, garbage
    assert list(await roles(alice)) == ["alice@example.com"]
    assert (await alice.request("GET", "/api/v1/team/invitations")).json()["items"] == []


async def test_a_member_already_in_the_team_is_told_so_and_the_invitation_stays_unused(app, client, alice):
    secret = secret_of(await invite(alice))
    response = await join(app, "alice@example.com", secret, password="correct horse battery")
    assert response.status_code == 409 and "already a member" in response.text
    await make_person(app, client, "bob@example.com")
    assert (await join(app, "bob@example.com", secret)).status_code == 303


async def test_opening_an_invitation_can_create_the_account_even_with_sign_up_closed(app, client, alice):
    assert not app.state.settings.open_signup
    secret = secret_of(await invite(alice, "admin"))
    response = await join(app, "new@example.com", secret, mode="sign-up", password="a new password")
    assert response.status_code == 303
    assert (await roles(alice))["new@example.com"] == "admin"
    # A bad invitation creates no account, so it is no way around closed sign-up.
    response = await join(app, "sneaky@example.com", secret, mode="sign-up", password="a new password")
    assert response.status_code == 409
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).where(Owner.email == "sneaky@example.com")) == 0


async def test_a_wrong_password_keeps_the_invitation_in_the_form_and_unused(app, client, alice):
    await make_person(app, client, "bob@example.com")
    secret = secret_of(await invite(alice))
    response = await join(app, "bob@example.com", secret, password="not the password")
    assert response.status_code == 401
    assert f'value="{secret}"' in response.text and response.headers["cache-control"] == "no-store"
    assert (await join(app, "bob@example.com", secret)).status_code == 303


async def test_a_signed_in_account_joins_and_works_in_the_new_team(app, client, alice):
    assistant = await alice.new_assistant()
    await make_person(app, client, "bob@example.com")
    secret = secret_of(await invite(alice))
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in("bob@example.com", PASSWORD)
        page = await web.get("/dashboard/join")
        assert "signed in as bob@example.com" in page.text
        assert (await web.post("/dashboard/join", {"invitation": secret})).status_code == 303
        home = await web.get("/dashboard")
        assert assistant["name"] in home.text and "Alice&#39;s team (Editor)" in home.text


async def test_an_editor_cannot_invite_and_no_one_can_invite_an_owner(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    refused = await ed.request("POST", "/api/v1/team/invitations", json={"role": "editor"})
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden_role"
    assert "Inviting, changing roles and removing members needs the Admin or Owner role" in refused.text
    assert (await alice.request("POST", "/api/v1/team/invitations", json={"role": "owner"})).status_code == 422
    assert (await alice.request("GET", "/api/v1/team/invitations")).json()["items"] == []


async def test_signing_up_with_an_email_that_has_an_account_does_not_say_so(app, client, alice):
    await make_person(app, client, "bob@example.com")
    secret = secret_of(await invite(alice))
    # A stranger with the invitation learns nothing about bob's account, and it is unchanged.
    taken = await join(app, "Bob@Example.com", secret, mode="sign-up", password="another password")
    assert taken.status_code == 401
    assert "already exists" not in taken.text and "An owner with the email" not in taken.text
    assert "If this email already has an account, sign in with its password to join." in taken.text
    assert "bob@example.com" not in await roles(alice)
    # Bob himself, with his own password, is signed in and joins as if he had chosen "Sign in".
    joined = await join(app, "bob@example.com", secret, mode="sign-up")
    assert joined.status_code == 303 and joined.headers["location"] == "/dashboard/team?done=joined"
    assert (await roles(alice))["bob@example.com"] == "editor"
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).select_from(Owner).where(Owner.email == "bob@example.com")) == 1
