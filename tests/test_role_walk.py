"""Every owner route, API and dashboard, walked as each role: the routes come from the app's own
route table, so a new route without a line here fails the walk and names itself."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from fastapi.routing import APIRoute
from sqlalchemy import delete, insert, select

from portico.db import writer_lock
from portico.identity import invitations
from portico.identity.deps import current_member, dashboard_member
from portico.models import Base
from portico.vocabulary import TeamRole
from tests.chat_helpers import parse_events
from tests.conftest import make_person, start
from tests.team_helpers import PASSWORD, make_team

RANK = {"editor": 1, "admin": 2, "owner": 3}
STRANGER = "another team's owner"
# Least role first: a refused call changes nothing, so the next role may use the same world.
WHO = {"editor": "ed", "admin": "ada", "owner": "alice"}
A = "/api/v1/assistants/{assistant_id}"
D = "/dashboard/assistants/{assistant_id}"


@dataclass(frozen=True)
class Call:
    least: str  # the least role that may make this call
    body: dict | None = None
    ok: int | None = None  # the status when allowed; the route's own by default
    owner_status: int | None = None  # what the Owner gets instead (the Owner cannot leave)


API: dict[tuple[str, str], Call] = {
    ("POST", "/api/v1/assistants"): Call("editor", {"name": "New"}),
    ("GET", "/api/v1/assistants"): Call("editor"),
    ("GET", A): Call("editor"),
    ("PATCH", A): Call("editor", {"name": "Renamed", "knowledge": "New hours."}),
    ("DELETE", A): Call("admin"),
    ("POST", f"{A}/publish"): Call("admin"),
    ("POST", f"{A}/duplicate"): Call("editor", ok=201),
    # Documents (uploading and replacing are multipart: tests/test_documents.py walks their roles).
    ("GET", f"{A}/documents"): Call("editor"),
    ("GET", f"{A}/documents/{{document_id}}"): Call("editor"),
    ("DELETE", f"{A}/documents/{{document_id}}"): Call("editor"),
    # Allowed, but the file itself is not kept by default: 404 for every role that may ask.
    ("GET", f"{A}/documents/{{document_id}}/original"): Call("editor", ok=404),
    ("GET", f"{A}/versions"): Call("editor"),
    ("GET", f"{A}/draft/diff"): Call("editor"),
    ("PUT", f"{A}/status"): Call("admin", {"status": "offline"}),
    ("PUT", f"{A}/share"): Call("admin", {"mode": "private"}),
    ("POST", f"{A}/public-link/rotate"): Call("admin"),
    ("POST", f"{A}/widget-id/rotate"): Call("admin"),
    ("POST", f"{A}/links"): Call("admin", {"links": [{"name": "Group B", "max_sessions": 0}]}),
    ("GET", f"{A}/links"): Call("editor"),
    ("PATCH", f"{A}/links/{{link_id}}"): Call("admin", {"name": "Group C"}),
    ("POST", f"{A}/links/bulk"): Call("admin", {"ids": ["{link_id}"], "action": "pause"}),
    ("POST", f"{A}/links/{{link_id}}/reset"): Call("admin"),
    ("DELETE", f"{A}/links/{{link_id}}"): Call("admin"),
    ("POST", f"{A}/links/{{link_id}}/reissue"): Call("admin"),
    ("GET", f"{A}/sessions"): Call("editor"),
    ("GET", f"{A}/sessions.csv"): Call("editor"),
    ("GET", f"{A}/sessions.jsonl"): Call("editor"),
    ("GET", f"{A}/sessions/{{session_id}}"): Call("editor"),
    ("GET", f"{A}/metrics"): Call("editor"),
    ("GET", f"{A}/links/{{link_id}}/qr"): Call("editor"),
    ("GET", f"{A}/public-link/qr"): Call("editor"),
    ("GET", f"{A}/unanswered"): Call("editor"),
    ("GET", "/api/v1/team"): Call("editor"),
    ("PATCH", "/api/v1/team"): Call("owner", {"name": "Renamed team"}),
    ("DELETE", "/api/v1/team"): Call("owner"),
    ("PATCH", "/api/v1/team/members/{member_id}"): Call("admin", {"role": "admin"}),
    ("DELETE", "/api/v1/team/members/{member_id}"): Call("admin"),
    ("POST", "/api/v1/team/leave"): Call("editor", owner_status=409),
    ("POST", "/api/v1/team/transfer"): Call("owner", {"member_id": "{member_id}"}),
    ("POST", "/api/v1/team/invitations"): Call("admin", {"role": "editor"}),
    ("GET", "/api/v1/team/invitations"): Call("editor"),
    ("DELETE", "/api/v1/team/invitations/{invitation_id}"): Call("admin"),
    ("GET", "/api/v1/team/audit"): Call("editor"),
}

BEHAVIOR = {
    "name": "Helper",
    "knowledge": "Opening hours are 9 to 6.",
    "greeting_enabled": "1",
    "engine_type": "builtin",
    "inactivity_timeout": "600",
    "max_duration": "3600",
    "max_message_length": "4000",
}
DASHBOARD: dict[tuple[str, str], Call] = {
    ("GET", "/dashboard/account"): Call("editor"),
    ("POST", "/dashboard/account/password"): Call("editor", {"current": PASSWORD, "new": PASSWORD}, 303),
    ("GET", "/dashboard/tokens"): Call("editor"),
    ("POST", "/dashboard/tokens"): Call("editor", {"name": "script"}, 303),
    ("POST", "/dashboard/tokens/{token_id}/revoke"): Call("editor", ok=303),
    ("GET", "/dashboard"): Call("editor"),
    ("POST", "/dashboard/assistants"): Call("editor", {"name": "New"}, 303),
    ("GET", D): Call("editor", ok=303),
    ("GET", f"{D}/behavior"): Call("editor"),
    ("POST", f"{D}/limits"): Call(
        "admin", {"messages_per_session": "5", "sessions_per_day": "0", "tokens_per_day": "0"}, 303
    ),
    ("POST", f"{D}/behavior"): Call("editor", BEHAVIOR, 303),
    ("GET", f"{D}/publish"): Call("editor"),
    ("POST", f"{D}/publish"): Call("admin", ok=303),
    ("POST", f"{D}/versions/{{number}}/restore"): Call("admin", ok=303),
    ("GET", f"{D}/preview"): Call("editor"),
    ("POST", f"{D}/preview/sessions"): Call("editor", ok=201),
    ("POST", f"{D}/preview/sessions/{{session_id}}/messages"): Call("editor", {"content": "When do you open?"}),
    ("GET", f"{D}/share"): Call("editor"),
    ("POST", f"{D}/status"): Call("admin", {"status": "offline"}, 303),
    ("POST", f"{D}/share-mode"): Call("admin", {"mode": "private"}, 303),
    ("POST", f"{D}/domains"): Call("admin", {"allowed_domains": "example.com"}, 303),
    ("POST", f"{D}/rotate"): Call("admin", ok=303),
    ("POST", f"{D}/widget-id/rotate"): Call("admin", ok=303),
    ("POST", f"{D}/access-code"): Call("admin", {"access_code": "open sesame"}, 303),
    ("POST", f"{D}/public-link/expiry"): Call("admin", {"expires_on": "2099-12-31"}, 303),
    ("POST", f"{D}/users"): Call("admin", {"name": "Group B", "max_sessions": "3"}, 303),
    ("POST", f"{D}/users/batch"): Call("admin", {"names": "Group B\nGroup C", "max_sessions": "3"}, 303),
    ("GET", f"{D}/users.csv"): Call("editor"),
    ("POST", f"{D}/users/{{link_id}}/cap"): Call("admin", {"max_sessions": "9"}, 303),
    ("POST", f"{D}/users/{{link_id}}/pause"): Call("admin", ok=303),
    ("POST", f"{D}/users/{{link_id}}/resume"): Call("admin", ok=303),
    ("POST", f"{D}/users/{{link_id}}/reset"): Call("admin", ok=303),
    ("POST", f"{D}/users/{{link_id}}/expiry"): Call("admin", {"expires_on": "2099-12-31"}, 303),
    ("POST", f"{D}/users/bulk"): Call("admin", {"ids": "{link_id}", "action": "pause"}, 303),
    ("POST", f"{D}/users/{{link_id}}/reissue"): Call("admin", ok=303),
    ("POST", f"{D}/users/{{link_id}}/delete"): Call("admin", ok=303),
    ("GET", f"{D}/logs"): Call("editor"),
    ("POST", f"{D}/logs/settings"): Call("admin", {"retention_days": "30", "store_transcripts": "1"}, 303),
    ("GET", f"{D}/logs.csv"): Call("editor"),
    ("GET", f"{D}/logs.jsonl"): Call("editor"),
    ("GET", f"{D}/logs/{{session_id}}"): Call("editor"),
    ("GET", f"{D}/metrics"): Call("editor"),
    ("GET", f"{D}/public-link/qr.svg"): Call("editor"),
    ("GET", f"{D}/users/{{link_id}}/qr.svg"): Call("editor"),
    ("GET", f"{D}/settings"): Call("editor"),
    ("GET", f"{D}/unanswered"): Call("editor"),
    ("POST", f"{D}/delete"): Call("admin", {"confirm_name": "Helper"}, 303),
    ("POST", f"{D}/duplicate"): Call("editor", ok=303),
    ("POST", f"{D}/users/{{link_id}}/rename"): Call("admin", {"name": "Group C"}, 303),
    ("POST", f"{D}/preview/sessions/{{session_id}}/messages/{{message_id}}/feedback"): Call("editor", {"rating": "up"}),
    ("GET", "/dashboard/team"): Call("editor"),
    ("POST", "/dashboard/team/switch"): Call("editor", {"team_id": "{team_id}"}, 303),
    ("POST", "/dashboard/teams"): Call("editor", {"name": "Another team"}, 303),
    ("POST", "/dashboard/team/name"): Call("owner", {"name": "Renamed team"}, 303),
    ("POST", "/dashboard/team/delete"): Call("owner", {"team_id": "{team_id}", "confirm_name": "{team_name}"}, 303),
    ("POST", "/dashboard/team/members/{member_id}/role"): Call("admin", {"role": "admin"}, 303),
    ("POST", "/dashboard/team/members/{member_id}/remove"): Call("admin", ok=303),
    ("POST", "/dashboard/team/transfer"): Call("owner", {"member_id": "{member_id}"}, 303),
    ("POST", "/dashboard/team/leave"): Call("editor", ok=303, owner_status=409),
    ("POST", "/dashboard/team/invitations"): Call("admin", {"role": "editor"}),
    ("POST", "/dashboard/team/invitations/{invitation_id}/revoke"): Call("admin", ok=303),
    ("GET", "/dashboard/team/audit"): Call("editor"),
}


def owner_routes(app, dependency) -> dict[tuple[str, str], APIRoute]:
    """Every route of the app that needs `dependency` (the API's member or the dashboard's)."""

    def needs(dependant) -> bool:
        return any(sub.call is dependency or needs(sub) for sub in dependant.dependencies)

    found = {}
    for route in app.router.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for context in contexts:
            if isinstance(context, APIRoute) or hasattr(context, "dependant"):
                if needs(context.dependant):
                    for method in context.methods - {"HEAD"}:
                        found[(method, context.path)] = context
    return found


def test_every_owner_route_has_its_least_role_in_the_walk():
    from portico.app import create_app
    from portico.config import load_settings

    app = create_app(load_settings(secret_key="x" * 40, database_url="sqlite:////nonexistent/never-opened.db"))
    api, dashboard = owner_routes(app, current_member), owner_routes(app, dashboard_member)
    assert len(api) >= 30 and len(dashboard) >= 50
    assert not set(api) - set(API), f"API routes with no role in the walk: {sorted(set(api) - set(API))}"
    assert not set(dashboard) - set(DASHBOARD), (
        f"dashboard routes with no role: {sorted(set(dashboard) - set(DASHBOARD))}"
    )
    assert not set(API) - set(api) and not set(DASHBOARD) - set(dashboard), "the walk names a route that is gone"
    public = {
        (method, context.path)
        for route in app.router.routes
        for context in (route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [])
        for method in getattr(context, "methods", set()) - {"HEAD"}
        if context.path.startswith("/dashboard")
    } - set(dashboard)
    # The only dashboard pages without a signed-in member: signing in, up, out, and joining (with
    # what the invitation offers, named to whoever holds it).
    assert {path for _, path in public} == {
        "/dashboard/setup",
        "/dashboard/sign-up",
        "/dashboard/sign-in",
        "/dashboard/sign-out",
        "/dashboard/join",
        "/dashboard/join/about",
    }


async def _build_world(app, client, team, alice) -> dict:
    """A fresh assistant (published, live), a private link, a guest session and an invitation."""
    await team.reset()
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    session = (await start(client, public_id=assistant["public_id"])).json()
    documents = f"/api/v1/assistants/{assistant['id']}/documents"
    uploaded = await alice.request("POST", documents, files={"files": ("Notes.md", b"# A\n\nB.")})
    async with app.state.sessionmaker() as db:
        invitation, _secret = await invitations.create(db, member=team.member("alice"), role=TeamRole.EDITOR)
        await db.commit()
    return {
        "assistant_id": assistant["id"],
        "link_id": link["id"],
        "session_id": session["session_id"],
        "invitation_id": invitation.id,
        "member_id": team.accounts["tim"],
        "team_id": team.id,
        "team_name": team.name,
        "number": 1,
        "document_id": uploaded.json()["documents"][0]["id"],
    }


class World:
    """The world every call starts from: built once through the API, then put back row for row
    (every table emptied and refilled in one transaction) after each call that may have changed
    it. Rebuilding it through the API each time was half the walk's time (338 worlds of six
    requests); putting it back is one transaction, and it also undoes what a call changed beyond
    the team and the assistant (a password, a token, a deleted team), as a new database would."""

    def __init__(self, app, client, team, alice) -> None:
        self.app, self.client, self.team, self.alice = app, client, team, alice
        self.ids: dict | None = None
        self.rows: dict[str, list[dict]] = {}

    async def fresh(self) -> dict:
        if self.ids is None:
            self.ids = await _build_world(self.app, self.client, self.team, self.alice)
            async with self.app.state.sessionmaker() as db:
                for table in Base.metadata.sorted_tables:
                    self.rows[table.name] = [dict(row._mapping) for row in await db.execute(select(table))]
        else:
            async with writer_lock(self.app.state.engine), self.app.state.sessionmaker() as db:
                for table in reversed(Base.metadata.sorted_tables):
                    await db.execute(delete(table))
                for table in Base.metadata.sorted_tables:
                    if self.rows[table.name]:
                        await db.execute(insert(table), self.rows[table.name])
                await db.commit()
        return dict(self.ids)


def _fill(value, ids: dict):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill(v, ids) for k, v in value.items()}
    return value


def _coerce_ids(value):
    """JSON bodies carry ids as numbers."""
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, list):
        return [_coerce_ids(v) for v in value]
    if isinstance(value, dict):
        return {k: _coerce_ids(v) for k, v in value.items()}
    return value


def _expected(call: Call, role: str, route_status: int | None) -> int:
    if role == STRANGER:
        return 404  # another team's assistant does not exist for bob, whatever his role in his own team
    if RANK[role] < RANK[call.least]:
        return 403
    if role == "owner" and call.owner_status:
        return call.owner_status
    return call.ok or route_status or 200


async def test_each_role_gets_its_status_on_every_api_route(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    bob = await make_person(app, client, "bob@example.com")
    routes = owner_routes(app, current_member)
    world = World(app, client, team, alice)
    refused = 0
    for (method, path), call in API.items():
        ids = None
        for role, name in [*([(STRANGER, "bob")] if "{assistant_id}" in path else []), *WHO.items()]:
            if ids is None:
                ids = await world.fresh()
            person = bob if role == STRANGER else await team.person(client, name)
            body = _coerce_ids(_fill(call.body, ids))
            response = await person.request(method, path.format(**ids), json=body)
            expected = _expected(call, role, routes[(method, path)].status_code)
            assert response.status_code == expected, (role, method, path, response.text)
            if expected == 403:
                refused += 1
                error = response.json()["error"]
                assert error["code"] == "forbidden_role"
                assert "needs the" in error["message"] and "role" in error["message"]
            elif expected != 404 and method != "GET":
                ids = None  # it may have changed the world: the next role gets a new one
    assert refused >= 20


async def test_each_role_gets_its_status_on_every_dashboard_route(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    await make_person(app, client, "bob@example.com")
    async with app.state.sessionmaker() as db:
        from portico.identity import members

        bob_member = await members.first_team(db, account_id=(await _account(db, "bob@example.com")))
    world = World(app, client, team, alice)
    refused = 0
    for (method, path), call in DASHBOARD.items():
        ids = None
        for role, name in [*([(STRANGER, "bob")] if "{assistant_id}" in path else []), *WHO.items()]:
            if ids is None:
                ids = await world.fresh()
            ids["token_id"] = (await team.token("alice" if role == STRANGER else name))[0]
            if "/preview/sessions/" in path:
                alice_web = await team.browser("alice")
                preview = f"/dashboard/assistants/{ids['assistant_id']}/preview/sessions"
                ids["session_id"] = (await alice_web.post(preview)).json()["session_id"]
                if "/feedback" in path:
                    said = await alice_web.post(f"{preview}/{ids['session_id']}/messages", {"content": "Hours?"})
                    ids["message_id"] = dict(parse_events(said.text))["done"]["message_id"]
                await alice_web.http.aclose()
            web = await (_browser_for(app, bob_member) if role == STRANGER else team.browser(name))
            url = path.format(**ids)
            data = _fill(call.body, ids)
            response = await (web.get(url) if method == "GET" else web.post(url, data))
            await web.http.aclose()
            expected = _expected(call, role, None)
            assert response.status_code == expected, (role, method, path, response.text[:3000])
            if expected == 403:
                refused += 1
                assert "needs the" in response.text and "role" in response.text, response.text
            elif expected != 404 and method != "GET":
                ids = None  # it may have changed the world: the next role gets a new one
    assert refused >= 25


async def _account(db, email: str) -> int:
    from portico.identity import accounts

    account = await accounts.get_owner_by_email(db, email)
    assert account is not None
    return account.id


async def _browser_for(app, member):
    from tests.team_helpers import Team

    other = Team(app=app, id=member.team_id, name=member.team_name, accounts={"bob": member.account_id})
    return await other.browser("bob")


@pytest.fixture(autouse=True)
def _quiet_logs(caplog):
    # The walk makes hundreds of requests; their access log lines add nothing here.
    caplog.set_level("WARNING")
