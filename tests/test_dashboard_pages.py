"""Everything the core can do, a click away in the dashboard; someone else's pages answer 404."""

from __future__ import annotations

import csv
import io
import re

import pytest
from sqlalchemy import select

from portico.access import views as access_views
from portico.assistants import views as assistants_views
from portico.identity import views as identity_views
from portico.metrics import views as metrics_views
from portico.models import ChatSession
from tests.chat_helpers import parse_events
from tests.conftest import Person, key_of, make_person, start
from tests.dashboard_helpers import Dashboard, dashboard_client

BEHAVIOR = {
    "name": "Biology tutor",
    "description": "Cells and more",
    "greeting_enabled": "1",
    "greeting": "Hi, class!",
    "instructions": "Be kind.",
    "knowledge": "# Cells\nCells are the units of life.",
    "engine_type": "builtin",
    "base_url": "",
    "model": "",
    "temperature": "0.7",
    "max_tokens": "512",
    "timeout": "30",
    "inactivity_timeout": "600",
    "max_duration": "3600",
    "max_message_length": "4000",
}


@pytest.fixture
async def web(app, alice: Person):
    async with dashboard_client(app) as http:
        dashboard = Dashboard(http)
        await dashboard.sign_in(alice.email, "correct horse battery")
        yield dashboard


async def new_assistant(web: Dashboard) -> int:
    await web.get("/dashboard")
    response = await web.post("/dashboard/assistants", {"name": "Biology tutor"})
    return int(response.headers["location"].split("/")[3])


def field_errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]+)</p>', html))


async def test_owner_builds_publishes_and_shares_an_assistant(web, client, alice):
    assistant_id = await new_assistant(web)
    base = f"/dashboard/assistants/{assistant_id}"
    await web.get(f"{base}/behavior")
    saved = await web.post(f"{base}/behavior", BEHAVIOR)
    assert saved.headers["location"].endswith("?done=saved")
    publish_page = await web.get(f"{base}/publish")
    assert "Not published yet" in publish_page.text and "Unpublished changes" not in publish_page.text
    await web.post(f"{base}/publish")
    published = (await web.get(f"{base}/publish")).text
    assert "Unpublished changes" not in published and "Not published yet" not in published
    await web.post(f"{base}/status", {"status": "live"})
    share = await web.get(f"{base}/share")
    public_url = re.search(r'id="public-url" class="mono" type="text" readonly value="([^"]+)"', share.text).group(1)
    public_id = public_url.rsplit("/", 1)[1]
    started = (await start(client, public_id=public_id)).json()
    assert started["greeting"] == "Hi, class!"
    widget_id = (await alice.request("GET", f"/api/v1/assistants/{assistant_id}")).json()["widget_id"]
    assert 'data-assistant="' + widget_id in share.text.replace("&#34;", '"').replace("&quot;", '"')

    await web.post(f"{base}/share-mode", {"mode": "private"})
    names = "\n".join(f"Student {i}" for i in range(1, 31))
    created = await web.post(f"{base}/users/batch", {"names": names, "max_sessions": "3"})
    page = await web.get(created.headers["location"].split("#")[0])
    assert "30 new links" in page.text and "<strong>30</strong> of 50 private links" in page.text
    download = await web.get(f"{base}/users.csv")
    rows = list(csv.reader(io.StringIO(download.text)))
    assert rows[0] == ["name", "link"] and len(rows) == 31
    assert download.headers["content-disposition"].startswith("attachment")
    key = rows[1][1].split("#k=")[1]
    assert (await start(client, key=key)).status_code == 201


async def test_behavior_shows_every_problem_next_to_its_field_and_saves_nothing(web):
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    await web.get(path)
    bad = {
        **BEHAVIOR,
        "name": "",
        "engine_type": "openai",
        "base_url": "not a url",
        "temperature": "2.5",
        "max_tokens": "lots",
        "inactivity_timeout": "5",
    }
    response = await web.post(path, bad)
    assert response.status_code == 422
    errors = field_errors(response.text)
    assert set(errors) == {"name", "base_url", "temperature", "max_tokens", "inactivity_timeout"}
    assert errors["max_tokens"] == "The response length must be a whole number."
    assert "Biology tutor" in (await web.get(path)).text


async def test_knowledge_can_be_uploaded_as_text_up_to_one_mebibyte(web, alice):
    assistant_id = await new_assistant(web)
    path = f"/dashboard/assistants/{assistant_id}/behavior"
    await web.get(path)
    upload = {"knowledge_file": ("faq.md", b"# Uploaded\nFrom a file.", "text/markdown")}
    assert (await web.post(path, BEHAVIOR, files=upload)).status_code == 303
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant_id}")).json()
    assert stored["draft"]["knowledge"] == "# Uploaded\nFrom a file."
    for name, data, message in [
        ("faq.pdf", b"%PDF", "Upload a .txt or .md file."),
        ("big.txt", b"x" * (1024 * 1024 + 1), "larger than 1 MiB"),
        ("latin1.txt", "caf\xe9".encode("latin-1"), "not UTF-8 text"),
    ]:
        response = await web.post(path, BEHAVIOR, files={"knowledge_file": (name, data, "text/plain")})
        assert response.status_code == 422 and message in field_errors(response.text)["knowledge_file"]


async def test_publishing_an_empty_draft_explains_why_not(web):
    assistant_id = await new_assistant(web)
    await web.get(f"/dashboard/assistants/{assistant_id}/publish")
    response = await web.post(f"/dashboard/assistants/{assistant_id}/publish")
    assert response.status_code == 422 and "the built-in engine answers only from the knowledge text" in response.text


async def test_a_version_can_be_restored_into_the_draft(web, alice):
    assistant_id = await new_assistant(web)
    base = f"/dashboard/assistants/{assistant_id}"
    await web.get(f"{base}/behavior")
    await web.post(f"{base}/behavior", BEHAVIOR)
    await web.post(f"{base}/publish")
    await web.post(f"{base}/behavior", {**BEHAVIOR, "greeting": "Changed"})
    await web.post(f"{base}/versions/1/restore")
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant_id}")).json()
    assert stored["draft"]["greeting"] == "Hi, class!" and stored["has_unpublished_changes"] is False
    assert (await web.post(f"{base}/versions/9/restore")).status_code == 404


async def test_preview_talks_to_the_draft_and_counts_as_no_guest_session(app, web, alice):
    assistant_id = await new_assistant(web)
    base = f"/dashboard/assistants/{assistant_id}"
    await web.get(f"{base}/behavior")
    await web.post(f"{base}/behavior", BEHAVIOR)
    await web.get(f"{base}/preview")
    started = await web.post(f"{base}/preview/sessions", {"use": "draft"})
    assert started.json()["greeting"] == "Hi, class!"
    session_id = started.json()["session_id"]
    reply = await web.post(f"{base}/preview/sessions/{session_id}/messages", {"content": "What are cells?"})
    text = "".join(data["text"] for name, data in parse_events(reply.text) if name == "token")
    assert "units of life" in text
    refused = await web.post(f"{base}/preview/sessions", {"use": "published"})
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "invalid_request"
    async with app.state.sessionmaker() as db:
        channels = list(await db.scalars(select(ChatSession.channel)))
    assert channels == ["preview"]
    assert ">0</td>" in (await web.get("/dashboard")).text.replace(" ", "").replace("\n", "")


async def test_users_are_capped_reissued_and_deleted(web, client, alice):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    await web.post(f"{base}/users/{link['id']}/cap", {"max_sessions": "1"})
    assert (await start(client, key=key_of(link))).status_code == 201
    assert (await start(client, key=key_of(link))).json()["error"]["code"] == "link_exhausted"
    assert (await web.post(f"{base}/users/{link['id']}/cap", {"max_sessions": "-3"})).status_code == 422
    await web.post(f"{base}/users/{link['id']}/cap", {"max_sessions": "0"})
    reissued = await web.post(f"{base}/users/{link['id']}/reissue")
    assert "reissued" in reissued.headers["location"]
    assert (await start(client, key=key_of(link))).json()["error"]["code"] == "link_reissued"
    await web.post(f"{base}/users/{link['id']}/delete")
    assert "No users yet" in (await web.get(f"{base}/share")).text


async def test_creation_stops_at_the_limit_with_an_explanation(web, alice):
    assistant = await alice.new_assistant()
    await alice.new_links(assistant["id"], *[0] * 49)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    refused = await web.post(f"{base}/users/batch", {"names": "One\nTwo", "max_sessions": "0"})
    assert refused.status_code == 409 and "1 more can be created, not 2" in refused.text
    await web.post(f"{base}/users", {"name": "Last one", "max_sessions": "0"})
    full = await web.get(f"{base}/share")
    assert "reached the limit of 50 private links" in full.text and "Create users" not in full.text


async def test_bad_user_input_is_explained(web, alice):
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    assert "name of 1 to 200" in (await web.post(f"{base}/users", {"name": "", "max_sessions": "0"})).text
    assert "whole number" in (await web.post(f"{base}/users", {"name": "A", "max_sessions": "lots"})).text
    assert "no names in it" in (await web.post(f"{base}/users/batch", {"names": "\n\n", "max_sessions": "0"})).text
    assert "Line 2" in (await web.post(f"{base}/users/batch", {"names": "A\nB,-2", "max_sessions": "0"})).text


async def test_names_with_markup_are_shown_as_text(web, alice):
    assistant = await alice.new_assistant(name="<script>alert(1)</script>")
    await alice.new_links(assistant["id"], 0)
    await alice.request(
        "PATCH", f"/api/v1/assistants/{assistant['id']}/links/1", json={"name": "<img src=x onerror=alert(2)>"}
    )
    for path in ("/dashboard", f"/dashboard/assistants/{assistant['id']}/share"):
        html = (await web.get(path)).text
        assert "<script>alert(1)</script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert "<img src=x" not in html


async def test_dashboard_pages_carry_strict_security_headers(web):
    response = await web.get("/dashboard")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


def _dashboard_routes() -> list[tuple[str, str]]:
    routes = []
    for router in (
        identity_views.router,
        assistants_views.router,
        access_views.router,
        metrics_views.router,
    ):
        for route in router.routes:
            for method in route.methods - {"HEAD"}:
                routes.append((method, route.path))
    return routes


async def test_another_owner_gets_404_on_every_dashboard_route(app, web, alice):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    session = (await start(alice.http, key=key_of(link))).json()
    async with dashboard_client(app) as http:
        bob_web = Dashboard(http)
        bob = await make_person(app, http, "bob@example.com")
        await bob_web.sign_in(bob.email, "correct horse battery")
        walked = 0
        for method, path in _dashboard_routes():
            if "{assistant_id}" not in path:
                continue
            url = path.format(
                assistant_id=assistant["id"],
                link_id=link["id"],
                number=1,
                session_id=session["session_id"],
                message_id=1,
            )
            response = await (
                bob_web.get(url) if method == "GET" else bob_web.post(url, {"name": "x", "status": "offline"})
            )
            assert response.status_code == 404, (method, url, response.status_code)
            walked += 1
    assert walked >= 23
    unchanged = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()
    assert unchanged["status"] == "live" and unchanged["name"] == "Helper"


async def test_logs_transcript_and_metrics_pages_show_what_happened(web, client, alice):
    from tests.chat_helpers import say

    assistant = await alice.new_assistant(knowledge="# Cells\nCells are the units of life.")
    (link,) = await alice.new_links(assistant["id"], 3)
    await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}", json={"name": "Group <A>"})
    session = (await start(client, key=key_of(link))).json()
    await say(client, session, "What are cells?")
    base = f"/dashboard/assistants/{assistant['id']}"
    logs = await web.get(f"{base}/logs")
    assert logs.status_code == 200 and "Group &lt;A&gt;" in logs.text and "Export" in logs.text
    filtered = await web.get(f"{base}/logs", params={"q": "cells", "channel": "link"})
    assert f"{base}/logs/{session['session_id']}" in filtered.text
    assert "No sessions match" in (await web.get(f"{base}/logs", params={"q": "zebra"})).text
    assert field_errors((await web.get(f"{base}/logs", params={"channel": "fax"})).text) == {
        "channel": "Choose a channel from the list."
    }
    transcript = await web.get(f"{base}/logs/{session['session_id']}")
    assert "What are cells?" in transcript.text and "first token" in transcript.text
    exported = await web.get(f"{base}/logs.csv")
    assert exported.text.startswith("session_id,started_at") and "Group <A>" in exported.text
    metrics = await web.get(f"{base}/metrics", params={"period": "today"})
    assert metrics.status_code == 200 and "<svg" in metrics.text and "Sessions per hour" in metrics.text
    assert "1 / 3" in metrics.text
    assert (await web.get(f"{base}/metrics", params={"period": "forever"})).status_code == 422
    await web.get(f"{base}/logs")
    saved = await web.post(f"{base}/logs/settings", {"retention_days": "30"})
    assert saved.headers["location"].endswith("done=settings")
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()
    assert (stored["retention_days"], stored["store_transcripts"]) == (30, False)


async def test_logs_filters_name_every_channel_and_end_reason_in_the_owner_s_words(web, alice):
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}"
    page = await web.get(f"{base}/logs", params={"channel": "api", "end_reason": "made_private"})
    assert page.status_code == 200
    options = dict(re.findall(r'<option value="([a-z_]+)" (?:selected)?>([^<]+)</option>', page.text))
    assert options["api"] == "API" and options["widget"] == "Widget"
    assert options["made_private"] == "Made private" and options["interrupted"] == "Interrupted"
    assert options["open"] == "Still open" and "disconnected" not in options
    assert '<option value="api" selected>API</option>' in page.text
    metrics = await web.get(f"{base}/metrics")
    assert "No guest was refused in this period." in metrics.text
