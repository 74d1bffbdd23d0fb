"""A stored secret is only ever sent to the host it was saved with (issue 21, item 2): an Editor who
points the engine at a server of theirs without the key gets no key sent there, and every draft
edit is in the audit log with who and which fields, never a value."""

from __future__ import annotations

import json

from tests.chat_helpers import parse_events
from tests.team_helpers import make_team
from tests.upstream import upstream_server

OWNER_KEY = "sk-the-teams-own-key"


async def test_an_editor_moving_the_engine_to_another_host_drops_the_key_and_never_sends_it(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    with upstream_server() as (owners_url, owners_seen), upstream_server() as (editors_url, editors_seen):
        engine = {"type": "openai", "base_url": owners_url, "model": "quick", "api_key": OWNER_KEY}
        assistant = await alice.new_assistant(engine=engine, publish=False, live=False)
        path = f"/api/v1/assistants/{assistant['id']}"
        assert assistant["draft"]["engine"]["has_api_key"] is True

        moved = await ed.request("PATCH", path, json={"engine": {"type": "openai", "base_url": editors_url}})
        assert moved.status_code == 200, moved.text
        assert moved.json()["draft"]["engine"]["has_api_key"] is False

        # The Editor previews the draft: the request reaches the Editor's server without the key.
        web = await team.browser("ed")
        base = f"/dashboard/assistants/{assistant['id']}/preview/sessions"
        started = await web.post(base, {"use": "draft"})
        assert started.status_code == 201, started.text
        reply = await web.post(f"{base}/{started.json()['session_id']}/messages", {"content": "Hello?"})
        assert [name for name, _ in parse_events(reply.text)][-1] == "done", reply.text
        await web.http.aclose()
    assert len(editors_seen) == 1
    assert OWNER_KEY not in (editors_seen[0]["authorization"] or "")
    assert owners_seen == []


async def test_the_key_stays_while_the_host_stays_and_comes_back_only_when_given_again(client, alice):
    with upstream_server() as (url, seen):
        engine = {"type": "openai", "base_url": url, "model": "quick", "api_key": OWNER_KEY}
        assistant = await alice.new_assistant(engine=engine)
        path = f"/api/v1/assistants/{assistant['id']}"

        async def patch(engine: dict) -> dict:
            response = await alice.request("PATCH", path, json={"engine": {"type": "openai", **engine}})
            assert response.status_code == 200, response.text
            return response.json()["draft"]["engine"]

        # Another path, or the host in capitals, is the same server.
        assert (await patch({"base_url": url + "/", "model": "quick"}))["has_api_key"] is True
        assert (await patch({"base_url": url.replace("http://", "HTTP://")}))["has_api_key"] is True
        assert (await patch({"base_url": url.replace("127.0.0.1", "localhost")}))["has_api_key"] is False
        assert (await patch({"base_url": url, "api_key": OWNER_KEY}))["has_api_key"] is True
        assert (await patch({"base_url": url.replace("http://", "https://")}))["has_api_key"] is False


async def test_every_draft_edit_is_audited_with_who_and_which_fields_never_a_value(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    engine = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": OWNER_KEY}
    assistant = await alice.new_assistant(engine=engine, publish=False, live=False)
    path = f"/api/v1/assistants/{assistant['id']}"
    edits = [
        {"engine": {"type": "openai", "base_url": "http://127.0.0.1:10/v1"}},
        {"instructions": "Be brief.", "settings": {"language": "de"}},
        {"instructions": "Be brief."},  # changes nothing: no entry
    ]
    for body in edits:
        assert (await ed.request("PATCH", path, json=body)).status_code == 200

    # In the dashboard too, as the same service records it.
    web = await team.browser("ed")
    form = {
        "csrf": web.csrf,
        "name": "Helper 2",
        "description": "",
        "greeting": "",
        "greeting_enabled": "1",
        "instructions": "Be brief.",
        "knowledge": "Opening hours are 9 to 5.",
        "engine_type": "openai",
        "base_url": "http://127.0.0.1:10/v1",
        "model": "m",
        "temperature": "0.7",
        "max_tokens": "512",
        "timeout": "30",
        "inactivity_timeout": "600",
        "max_duration": "3600",
        "max_message_length": "4000",
        "language": "de",
        "api_key": "sk-typed-in-the-form",
    }
    saved = await web.post(f"/dashboard/assistants/{assistant['id']}/behavior", form)
    assert saved.status_code == 303, saved.text
    await web.http.aclose()

    page = (await alice.request("GET", "/api/v1/team/audit?action=assistant.draft_edited")).json()
    seen = [(e["actor"], e["assistant_id"], e["detail"]) for e in reversed(page["items"])]
    assert seen == [
        ("ed@example.com", assistant["id"], {"fields": "engine.api_key, engine.base_url"}),
        ("ed@example.com", assistant["id"], {"fields": "instructions, settings.language"}),
        ("ed@example.com", assistant["id"], {"fields": "engine.api_key, name"}),
    ]
    assert all(entry["at"] for entry in page["items"])
    text = json.dumps(page)
    assert OWNER_KEY not in text and "sk-typed-in-the-form" not in text
