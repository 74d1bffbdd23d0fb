"""Publishing snapshots the draft; guests get the published version until the next Publish."""

from __future__ import annotations

from tests.conftest import Person, start


async def test_editing_the_draft_leaves_guests_on_the_published_version(client, alice: Person):
    assistant = await alice.new_assistant(greeting="Version one")
    base = f"/api/v1/assistants/{assistant['id']}"
    assert assistant["published_version"] == 1
    assert assistant["has_unpublished_changes"] is False

    edited = await alice.request("PATCH", base, json={"greeting": "Version two"})
    assert edited.json()["draft"]["greeting"] == "Version two"
    assert edited.json()["has_unpublished_changes"] is True
    assert (await start(client, public_id=assistant["public_id"])).json()["greeting"] == "Version one"

    published = await alice.request("POST", f"{base}/publish")
    assert published.status_code == 201
    assert published.json()["version"] == 2
    assert (await start(client, public_id=assistant["public_id"])).json()["greeting"] == "Version two"
    assert (await alice.request("GET", base)).json()["has_unpublished_changes"] is False


async def test_versions_are_numbered_and_listed_newest_first(client, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}"
    await alice.request("PATCH", base, json={"knowledge": "Closed on Sundays."})
    await alice.request("POST", f"{base}/publish")
    versions = (await alice.request("GET", f"{base}/versions")).json()["items"]
    assert [(v["version"], v["current"]) for v in versions] == [(2, True), (1, False)]


async def test_editing_back_to_the_published_draft_clears_unpublished_changes(client, alice: Person):
    assistant = await alice.new_assistant(instructions="Be brief.")
    base = f"/api/v1/assistants/{assistant['id']}"
    await alice.request("PATCH", base, json={"instructions": "Be long."})
    back = await alice.request("PATCH", base, json={"instructions": "Be brief."})
    assert back.json()["has_unpublished_changes"] is False


async def test_name_and_description_change_at_once_without_publishing(client, alice: Person):
    assistant = await alice.new_assistant()
    await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"name": "Renamed"})
    started = await start(client, public_id=assistant["public_id"])
    assert started.json()["assistant"]["name"] == "Renamed"


async def test_publishing_an_invalid_draft_says_what_is_wrong(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False, knowledge="")
    base = f"/api/v1/assistants/{assistant['id']}"
    response = await alice.request("POST", f"{base}/publish")
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "draft_invalid"
    assert "knowledge" in response.json()["error"]["message"]

    await alice.request("PATCH", base, json={"engine": {"type": "openai"}})
    response = await alice.request("POST", f"{base}/publish")
    assert "engine.base_url" in response.json()["error"]["message"]
    assert "engine.model" in response.json()["error"]["message"]
    assert (await alice.request("GET", f"{base}/versions")).json()["items"] == []


async def test_new_assistant_is_unpublished_offline_and_public(client, alice: Person):
    response = await alice.request("POST", "/api/v1/assistants", json={"name": "Fresh"})
    assistant = response.json()
    assert (assistant["published_version"], assistant["status"], assistant["share_mode"]) == (None, "offline", "public")
    assert assistant["has_unpublished_changes"] is True
    assert assistant["draft"]["engine"] == {
        "type": "builtin",
        "base_url": None,
        "model": None,
        "temperature": None,
        "max_tokens": None,
        "timeout": None,
        "has_api_key": None,
    }


async def test_engine_api_key_is_stored_but_never_sent_back(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=False)
    base = f"/api/v1/assistants/{assistant['id']}"
    engine = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m", "api_key": "sk-secret-value"}
    response = await alice.request("PATCH", base, json={"engine": engine})
    assert response.status_code == 200
    assert "sk-secret-value" not in response.text
    assert response.json()["draft"]["engine"]["has_api_key"] is True
    # Changing another engine field keeps the key; an empty key clears it.
    kept = await alice.request("PATCH", base, json={"engine": {"type": "openai", "temperature": 0.2}})
    assert kept.json()["draft"]["engine"]["has_api_key"] is True
    assert kept.json()["draft"]["engine"]["model"] == "m"
    cleared = await alice.request("PATCH", base, json={"engine": {"type": "openai", "api_key": ""}})
    assert cleared.json()["draft"]["engine"]["has_api_key"] is False
