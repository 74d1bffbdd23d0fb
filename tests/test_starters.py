"""Owners give an assistant up to 4 starter questions; guests get those of the version they talk to."""

from __future__ import annotations

import json

import pytest

from tests.chat_helpers import bearer
from tests.conftest import Person, start
from tests.dashboard_helpers import Dashboard, dashboard_client

STARTERS = ["When are you open?", "Where can I park?"]


@pytest.fixture
async def web(app, alice: Person):
    async with dashboard_client(app) as http:
        dashboard = Dashboard(http)
        await dashboard.sign_in(alice.email, "correct horse battery")
        yield dashboard


async def patch(alice: Person, assistant: dict, **body: object):
    return await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json=body)


async def test_guests_get_the_published_starters_at_lookup_start_and_resume(client, alice: Person):
    assistant = await alice.new_assistant(starters=STARTERS)
    assert assistant["draft"]["starters"] == STARTERS
    found = (await client.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]})).json()
    assert found["starters"] == STARTERS
    session = (await start(client, public_id=assistant["public_id"])).json()
    assert session["starters"] == STARTERS
    # The draft changes nothing for guests until the next Publish; a session keeps its version's.
    assert (await patch(alice, assistant, starters=["Do you deliver?"])).status_code == 200
    found = (await client.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]})).json()
    assert found["starters"] == STARTERS
    await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/publish")
    found = (await client.post("/api/v1/chat/lookup", json={"public_id": assistant["public_id"]})).json()
    assert found["starters"] == ["Do you deliver?"]
    state = (await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=bearer(session))).json()
    assert state["starters"] == STARTERS


async def test_no_starters_are_an_empty_list_and_leave_the_draft_as_it_was(client, alice: Person):
    assistant = await alice.new_assistant()
    assert assistant["draft"]["starters"] == []
    assert not assistant["has_unpublished_changes"]
    updated = (await patch(alice, assistant, starters=[])).json()
    assert (updated["draft"]["starters"], updated["has_unpublished_changes"]) == ([], False)
    updated = (await patch(alice, assistant, starters=[" Trimmed?  "])).json()
    assert (updated["draft"]["starters"], updated["has_unpublished_changes"]) == (["Trimmed?"], True)
    updated = (await patch(alice, assistant, starters=[])).json()
    assert (updated["draft"]["starters"], updated["has_unpublished_changes"]) == ([], False)


@pytest.mark.sqlite_only  # words and validation; storing starters is checked on both
@pytest.mark.parametrize(
    ("starters", "sentence"),
    [
        (["a", "b", "c", "d", "e"], "at most 4"),
        (["Fine", "   "], "cannot be blank"),
        ([""], "cannot be blank"),
        (["x" * 201], "at most 200 characters"),
        (["nul\x00here"], "cannot be stored"),
        ("When are you open?", ""),
        ([5], ""),
    ],
)
async def test_bad_starters_are_refused_and_nothing_is_saved(alice: Person, starters, sentence):
    assistant = await alice.new_assistant(starters=STARTERS)
    response = await patch(alice, assistant, starters=starters)
    assert (response.status_code, response.json()["error"]["code"]) == (422, "invalid_request")
    assert sentence in response.json()["error"]["message"]
    draft = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["draft"]
    assert draft["starters"] == STARTERS


@pytest.mark.sqlite_only  # words and validation; storing starters is checked on both
async def test_a_starter_of_200_characters_is_kept(alice: Person):
    assistant = await alice.new_assistant(starters=["x" * 200])
    assert assistant["draft"]["starters"] == ["x" * 200]


@pytest.mark.sqlite_only  # words and validation; storing starters is checked on both
async def test_the_behavior_form_saves_up_to_four_starters_skipping_empty_boxes(web: Dashboard, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}/behavior"
    page = await web.get(base)
    assert page.text.count('name="starter"') == 4
    form = {"name": "Helper", "knowledge": "Opening hours are 9 to 5.", "engine_type": "builtin"}
    form |= {"inactivity_timeout": "600", "max_duration": "3600", "max_message_length": "4000"}
    saved = await web.post(base, {**form, "starter": ["Hours?", "", "Parking?", ""]})
    assert saved.status_code == 303
    draft = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["draft"]
    assert draft["starters"] == ["Hours?", "Parking?"]
    page = await web.get(base)
    assert 'value="Hours?"' in page.text and 'value="Parking?"' in page.text

    refused = await web.post(base, {**form, "starter": ["Hours?", "x" * 201]})
    assert refused.status_code == 422
    assert "at most 200 characters" in refused.text and 'value="' + "x" * 201 + '"' in refused.text
    draft = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["draft"]
    assert draft["starters"] == ["Hours?", "Parking?"]


@pytest.mark.sqlite_only  # words and validation; storing starters is checked on both
async def test_the_preview_shows_the_drafts_greeting_and_starters(web: Dashboard, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False, greeting="Hi there!", starters=STARTERS)
    base = f"/dashboard/assistants/{assistant['id']}"
    page = await web.get(f"{base}/preview")
    intro = page.text.split('id="preview-intro">', 1)[1].split("</script>", 1)[0]
    assert json.loads(intro) == {"draft": {"greeting": "Hi there!", "starters": STARTERS}, "published": None}
    started = await web.post(f"{base}/preview/sessions", {"use": "draft"})
    assert started.json()["greeting"] == "Hi there!"
    assert started.json()["starters"] == STARTERS
