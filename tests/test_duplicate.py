"""Duplicating an assistant (issue 21, item 15): a new unpublished, Offline assistant with the same
draft, knowledge, starters and settings; nothing guests could reach, no links, no Logs."""

from __future__ import annotations

from tests.conftest import Person, key_of, start
from tests.team_helpers import make_team

KNOWLEDGE = "## Opening hours\nWe are open 9 to 5.\n\n## Parking\nParking is free behind the building."


async def test_a_duplicate_copies_the_draft_and_settings_but_nothing_guests_can_reach(client, alice: Person):
    original = await alice.new_assistant(
        name="Front desk",
        description="Answers visitors.",
        instructions="Be brief.",
        knowledge=KNOWLEDGE,
        starters=["When are you open?", "Where can I park?"],
        settings={"language": "de", "inactivity_timeout": 300},
    )
    base = f"/api/v1/assistants/{original['id']}"
    await alice.request("PATCH", base, json={"quotas": {"sessions_per_day": 40}, "allowed_domains": ["school.example"]})
    await alice.request("PUT", f"{base}/share", json={"mode": "public", "access_code": "open sesame"})
    [link] = await alice.new_links(original["id"], 5)
    assert (await start(client, key=key_of(link))).status_code == 201
    original = (await alice.request("GET", base)).json()

    response = await alice.request("POST", f"{base}/duplicate")
    assert response.status_code == 201, response.text
    copy = response.json()
    assert copy["id"] != original["id"]
    assert copy["name"] == "Copy of Front desk"
    assert copy["description"] == "Answers visitors."
    assert (copy["status"], copy["share_mode"], copy["published_version"]) == ("offline", "public", None)
    assert copy["has_unpublished_changes"] is True
    assert copy["has_access_code"] is False
    assert copy["public_id"] != original["public_id"] and copy["widget_id"] != original["widget_id"]
    assert copy["draft"] == original["draft"]
    assert copy["draft"]["starters"] == ["When are you open?", "Where can I park?"]
    assert copy["draft"]["settings"]["language"] == "de"
    assert copy["quotas"] == original["quotas"] and copy["allowed_domains"] == ["school.example"]

    copy_base = f"/api/v1/assistants/{copy['id']}"
    assert (await alice.request("GET", f"{copy_base}/links?include_revoked=true")).json()["items"] == []
    assert (await alice.request("GET", f"{copy_base}/sessions")).json()["items"] == []
    assert (await alice.request("GET", f"{copy_base}/versions")).json()["items"] == []
    # The copy reaches no guest: its public link answers "not published".
    refused = await start(client, public_id=copy["public_id"])
    assert refused.json()["error"]["code"] == "not_published"

    # The two are independent: editing the copy leaves the original as it was.
    edited = await alice.request("PATCH", copy_base, json={"knowledge": "Closed.", "starters": ["Open?"]})
    assert edited.status_code == 200
    again = (await alice.request("GET", base)).json()
    assert again["draft"] == original["draft"] and again["has_unpublished_changes"] is False
    assert len((await alice.request("GET", "/api/v1/assistants")).json()["items"]) == 2

    audit = (await alice.request("GET", f"/api/v1/team/audit?assistant={copy['id']}")).json()["items"]
    assert [(e["action"], e["actor"], e["detail"]) for e in audit][-1] == (
        "assistant.created",
        "alice@example.com",
        {"name": "Copy of Front desk", "copy_of": f"Front desk (#{original['id']})"},
    )


async def test_a_long_name_is_cut_to_fit_and_the_stored_engine_key_is_kept(client, alice: Person):
    engine = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "quick", "api_key": "sk-team-key"}
    original = await alice.new_assistant(name="N" * 200, engine=engine, publish=False, live=False)
    copy = (await alice.request("POST", f"/api/v1/assistants/{original['id']}/duplicate")).json()
    assert copy["name"] == "Copy of " + "N" * 192
    assert copy["draft"]["engine"]["has_api_key"] is True
    assert copy["draft"]["engine"]["base_url"] == "http://127.0.0.1:9/v1"
    assert "sk-team-key" not in str(copy)


async def test_another_teams_or_a_deleted_assistant_cannot_be_duplicated(client, alice: Person, bob: Person):
    original = await alice.new_assistant()
    path = f"/api/v1/assistants/{original['id']}/duplicate"
    response = await bob.request("POST", path)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")
    assert (await bob.request("GET", "/api/v1/assistants")).json()["items"] == []
    assert (await alice.request("DELETE", f"/api/v1/assistants/{original['id']}")).status_code == 204
    assert (await alice.request("POST", path)).status_code == 404
    assert (await alice.request("GET", "/api/v1/assistants")).json()["items"] == []


async def test_an_editor_duplicates_as_they_create_and_the_dashboard_lands_on_the_copy(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    original = await alice.new_assistant(name="Help desk")
    response = await ed.request("POST", f"/api/v1/assistants/{original['id']}/duplicate")
    assert response.status_code == 201, response.text

    web = await team.browser("ed")
    settings = await web.get(f"/dashboard/assistants/{original['id']}/settings")
    # The Editor's Settings page greys out deleting, not duplicating.
    duplicate_form = settings.text.split('aria-labelledby="duplicate-title"')[1].split("</section>")[0]
    locked = settings.text.split('class="role-locked"')[1]
    assert "Duplicate assistant" in duplicate_form and "Duplicate assistant" not in locked
    landed = await web.post(f"/dashboard/assistants/{original['id']}/duplicate")
    assert landed.status_code == 303
    items = (await alice.request("GET", "/api/v1/assistants")).json()["items"]
    newest = max(items, key=lambda a: a["id"])
    assert landed.headers["location"] == f"/dashboard/assistants/{newest['id']}/behavior?done=duplicated"
    assert [a["name"] for a in items] == ["Help desk", "Copy of Help desk", "Copy of Help desk"]
    page = await web.get(landed.headers["location"])
    assert "This is the copy" in page.text
    await web.http.aclose()
