"""The audit log: who changed what, on which assistant, page by page; never a key or a code."""

from __future__ import annotations

import json

from tests.conftest import key_of, make_person
from tests.team_helpers import make_team


async def all_pages(person, query: str = "", limit: int = 2) -> list[dict]:
    items, cursor = [], None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        page = (await person.request("GET", f"/api/v1/team/audit?limit={limit}{query}{suffix}")).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_the_log_says_who_did_what_on_which_assistant_never_a_secret(app, client):
    team = await make_team(app)
    alice, ada = await team.person(client, "alice"), await team.person(client, "ada")
    assistant = await ada.new_assistant(publish=False, live=False)
    a = f"/api/v1/assistants/{assistant['id']}"
    await ada.request("POST", f"{a}/publish")
    await alice.request("PUT", f"{a}/status", json={"status": "live"})
    await alice.request("PUT", f"{a}/share", json={"mode": "public", "access_code": "open sesame"})
    (link,) = await ada.new_links(assistant["id"], 5)
    await ada.request("POST", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}/reissue")
    await alice.request("PATCH", f"/api/v1/team/members/{team.accounts['tim']}", json={"role": "admin"})

    entries = await all_pages(alice)
    seen = [(e["actor"], e["action"], e["assistant"], e["detail"]) for e in reversed(entries)]
    assert seen == [
        ("ada@example.com", "assistant.created", "Helper", {"name": "Helper"}),
        ("ada@example.com", "assistant.published", "Helper", {"version": 1}),
        ("alice@example.com", "assistant.status", "Helper", {"status": "live"}),
        ("alice@example.com", "assistant.access_code_set", "Helper", {}),
        ("ada@example.com", "link.created", "Helper", {"link": "User 1", "cap": 5}),
        ("ada@example.com", "link.reissued", "Helper", {"link": "User 1"}),
        ("alice@example.com", "member.role_changed", None, {"email": "tim@example.com", "role": "admin"}),
    ]
    text = json.dumps(entries)
    assert "open sesame" not in text and key_of(link) not in text and "ptk_" not in text


async def test_pages_follow_the_cursor_without_repeats_even_as_entries_are_added(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    assistant = await alice.new_assistant()
    for day in range(5):
        await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"retention_days": day + 1})
    first = (await alice.request("GET", "/api/v1/team/audit?limit=3")).json()
    await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/public-link/rotate")  # newer: not in later pages
    rest = await all_pages(alice, limit=3)
    ids = [e["id"] for e in first["items"]] + [
        e["id"]
        for e in (await alice.request("GET", f"/api/v1/team/audit?cursor={first['next_cursor']}")).json()["items"]
    ]
    assert ids == sorted(ids, reverse=True) and len(ids) == len(set(ids)) == 8
    assert len(rest) == 9
    for bad in ("abc", "-1", "1" * 40):
        response = await alice.request("GET", f"/api/v1/team/audit?cursor={bad}")
        assert response.status_code == 422, bad


async def test_filters_narrow_by_action_member_and_assistant(app, client):
    team = await make_team(app)
    alice, ada = await team.person(client, "alice"), await team.person(client, "ada")
    one, two = await alice.new_assistant(), await ada.new_assistant()
    by_ada = await all_pages(alice, f"&member={team.accounts['ada']}")
    assert {e["actor"] for e in by_ada} == {"ada@example.com"} and len(by_ada) == 3
    on_one = await all_pages(alice, f"&assistant={one['id']}")
    assert {e["assistant_id"] for e in on_one} == {one["id"]} and len(on_one) == 3
    published = await all_pages(alice, "&action=assistant.published")
    assert sorted(e["assistant_id"] for e in published) == sorted([one["id"], two["id"]])
    assert (await alice.request("GET", "/api/v1/team/audit?action=nonsense")).status_code == 422


async def test_another_teams_log_is_not_visible(app, client):
    team = await make_team(app)
    await (await team.person(client, "alice")).new_assistant()
    bob = await make_person(app, client, "bob@example.com")
    assert (await bob.request("GET", "/api/v1/team/audit")).json() == {"items": [], "next_cursor": None}


async def test_the_dashboard_audit_page_filters_and_pages(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    assistant = await ed.new_assistant(publish=False, live=False)
    await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/publish")
    web = await team.browser("ed")
    page = await web.get("/dashboard/team/audit")
    assert page.status_code == 200
    assert "ed@example.com" in page.text and "alice@example.com" in page.text and "Published" in page.text
    filtered = await web.get(f"/dashboard/team/audit?who={team.accounts['alice']}")
    assert "<td>Published</td>" in filtered.text and "<td>Assistant created</td>" not in filtered.text
    assert (await web.get("/dashboard/team/audit?action=bogus")).status_code == 422
    await web.http.aclose()


async def test_changing_nothing_writes_no_entry(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    assistant = await alice.new_assistant()
    a = f"/api/v1/assistants/{assistant['id']}"
    (link,) = await alice.new_links(assistant["id"], 5)
    before = len(await all_pages(alice, limit=50))
    ends = "2030-01-02T03:04:05+00:00"
    nothing = [
        ("POST", f"{a}/links/bulk", {"ids": [link["id"]], "action": "resume"}),  # never paused
        ("PATCH", f"{a}/links/{link['id']}", {"paused": False}),
        ("POST", f"{a}/links/{link['id']}/reset", None),  # no use taken yet
        ("PUT", f"{a}/share", {"mode": "public", "access_code": None}),  # no code to remove
        ("PUT", f"{a}/share", {"mode": "public", "public_link_expires_at": None}),  # no end to remove
        ("PATCH", "/api/v1/team", {"name": (await alice.request("GET", "/api/v1/team")).json()["name"]}),
        ("PATCH", f"/api/v1/team/members/{team.accounts['tim']}", {"role": "editor"}),  # tim is an Editor
    ]
    for method, path, body in nothing:
        response = await alice.request(method, path, json=body)
        assert response.status_code in (200, 204), (path, response.text)
    assert len(await all_pages(alice, limit=50)) == before, "an entry was written for a change of nothing"

    # Paused twice and given the same end twice: one entry each.
    for _ in range(2):
        await alice.request("POST", f"{a}/links/bulk", json={"ids": [link["id"]], "action": "pause"})
        await alice.request("PATCH", f"{a}/links/{link['id']}", json={"paused": True, "expires_at": ends})
        await alice.request("PUT", f"{a}/share", json={"mode": "public", "public_link_expires_at": ends})
    actions = [e["action"] for e in (await all_pages(alice, limit=50))[: -before or None]]
    assert sorted(actions) == ["assistant.public_link_expiry", "link.expiry", "link.paused"], actions


async def test_the_dashboard_shows_details_as_a_person_reads_them(app, client):
    team = await make_team(app)
    alice = await team.person(client, "alice")
    assistant = await alice.new_assistant()
    a = f"/api/v1/assistants/{assistant['id']}"
    (link,) = await alice.new_links(assistant["id"], 0)
    await alice.request("PATCH", f"{a}/links/{link['id']}", json={"name": "Smith, John"})
    await alice.request("PATCH", f"{a}/links/{link['id']}", json={"name": "John Smith"})
    await alice.request(
        "PATCH", f"{a}/links/{link['id']}", json={"max_sessions": 3, "expires_at": "2030-01-02T03:04:05.123456+00:00"}
    )
    await alice.request("POST", "/api/v1/team/invitations", json={"role": "editor"})
    await alice.request("PATCH", f"/api/v1/team/members/{team.accounts['tim']}", json={"role": "admin"})
    await alice.request(
        "PATCH", a, json={"retention_days": 30, "quotas": {"sessions_per_day": 0, "tokens_per_day": 500}}
    )
    web = await team.browser("alice")
    page = (await web.get("/dashboard/team/audit")).text
    for shown in (
        "<td>Name: John Smith (was Smith, John)</td>",
        "<td>Link: John Smith; Cap: 3 sessions</td>",
        "<td>Link: John Smith; Ends: 2030-01-02 03:04 UTC</td>",
        "<td>Link: User 1; Cap: unlimited</td>",
        "<td>Role: Editor; Invitation: #",
        "<td>Member: tim@example.com; Role: Admin</td>",
        "<td>Kept for: 30 days; Store transcripts: yes</td>",
        "<td>Tokens per day: 500</td>",
    ):
        assert shown in page, shown
    assert ".123456" not in page and "Smith, John, John Smith" not in page
    await web.http.aclose()
