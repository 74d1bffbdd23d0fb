"""Every row of the gate's table (docs/design.md), in order, through the session-start API."""

from __future__ import annotations

from tests.conftest import Person, key_of, start


def refused(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]


async def test_unknown_public_id_is_not_found(client, alice: Person):
    refused(await start(client, public_id="no-such-assistant"), 404, "not_found")


async def test_deleted_assistant_is_not_found(client, alice: Person):
    assistant = await alice.new_assistant()
    await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}")
    refused(await start(client, public_id=assistant["public_id"]), 404, "not_found")


async def test_key_of_another_assistant_with_public_id_is_invalid(client, alice: Person):
    first = await alice.new_assistant()
    second = await alice.new_assistant()
    (link,) = await alice.new_links(second["id"], 0)
    refused(await start(client, public_id=first["public_id"], key=key_of(link)), 403, "link_invalid")


async def test_guest_of_never_published_assistant_is_refused(client, alice: Person):
    assistant = await alice.new_assistant(publish=False, live=True)
    refused(await start(client, public_id=assistant["public_id"]), 403, "not_published")
    (link,) = await alice.new_links(assistant["id"], 0)
    refused(await start(client, key=key_of(link)), 403, "not_published")


async def test_offline_beats_a_valid_key(client, alice: Person):
    assistant = await alice.new_assistant(live=False)
    (link,) = await alice.new_links(assistant["id"], 0)
    refused(await start(client, key=key_of(link)), 403, "assistant_offline")
    refused(await start(client, public_id=assistant["public_id"]), 403, "assistant_offline")


async def test_unknown_key_alone_is_invalid(client, alice: Person):
    refused(await start(client, key="ptk_" + "A" * 43), 403, "link_invalid")


async def test_unknown_key_is_checked_after_offline_when_public_id_given(client, alice: Person):
    assistant = await alice.new_assistant(live=False)
    refused(await start(client, public_id=assistant["public_id"], key="ptk_" + "A" * 43), 403, "assistant_offline")
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "live"})
    refused(await start(client, public_id=assistant["public_id"], key="ptk_" + "A" * 43), 403, "link_invalid")


async def test_malformed_keys_are_invalid(client, alice: Person):
    for key in [
        "",
        "nope",
        "pto_" + "A" * 43,
        "ptk_" + "A" * 42,
        "ptk_" + "A" * 44,
        "ptk_" + "é" * 43,
        "ptk_" + "A" * 42 + "=",
    ]:
        refused(await start(client, key=key), 403, "link_invalid")


async def test_revoked_link_in_private_mode_says_revoked(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
    refused(await start(client, key=key_of(link)), 403, "link_revoked")


async def test_guest_with_exhausted_link_is_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 2)
    for left, words in (
        (1, "Your link has 1 more session after this one."),
        (0, "This is the last session on your link."),
    ):
        response = await start(client, key=key_of(link))
        assert response.status_code == 201
        assert response.json()["link"] == {"name": "User 1", "sessions_left": left, "uses_message": words}
    refused(await start(client, key=key_of(link)), 403, "link_exhausted")


async def test_guest_with_valid_key_is_admitted_and_attributed(client, alice: Person):
    assistant = await alice.new_assistant(share="private", greeting="Welcome!")
    (link,) = await alice.new_links(assistant["id"], 0)
    response = await start(client, key=key_of(link))
    assert response.status_code == 201
    body = response.json()
    assert body["token"].startswith("pts_")
    assert body["greeting"] == "Welcome!"
    assert body["assistant"]["public_id"] == assistant["public_id"]
    assert body["link"] == {"name": "User 1", "sessions_left": None, "uses_message": None}
    links = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()
    assert links["items"][0]["sessions_used"] == 1
    assert links["items"][0]["last_used_at"] is not None


async def test_key_and_matching_public_id_are_admitted(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    response = await start(client, public_id=assistant["public_id"], key=key_of(link))
    assert response.status_code == 201
    assert response.json()["link"]["name"] == "User 1"


async def test_guest_without_key_in_private_mode_needs_one(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    refused(await start(client, public_id=assistant["public_id"]), 403, "key_required")


async def test_guest_without_key_in_public_mode_is_admitted_anonymously(client, alice: Person):
    assistant = await alice.new_assistant()
    response = await start(client, public_id=assistant["public_id"])
    assert response.status_code == 201
    assert response.json()["link"] is None


async def test_private_links_keep_working_in_public_mode(client, alice: Person):
    assistant = await alice.new_assistant(share="public")
    (link,) = await alice.new_links(assistant["id"], 0)
    response = await start(client, key=key_of(link))
    assert response.status_code == 201
    assert response.json()["link"]["name"] == "User 1"


async def test_rotating_the_public_link_kills_only_the_old_public_link(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    rotated = (await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/public-link/rotate")).json()
    assert rotated["public_id"] != assistant["public_id"]
    assert rotated["public_url"].endswith("/c/" + rotated["public_id"])
    refused(await start(client, public_id=assistant["public_id"]), 404, "not_found")
    assert (await start(client, public_id=rotated["public_id"])).status_code == 201
    assert (await start(client, key=key_of(link))).status_code == 201


async def test_reissued_link_kills_old_key_and_keeps_name_cap_and_count(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    assert (await start(client, key=key_of(link))).status_code == 201
    base = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    reissued = (await alice.request("POST", f"{base}/reissue")).json()
    assert key_of(reissued) != key_of(link)
    assert (reissued["name"], reissued["max_sessions"], reissued["sessions_used"]) == ("User 1", 3, 1)
    refused(await start(client, key=key_of(link)), 403, "link_reissued")
    assert (await start(client, key=key_of(reissued))).status_code == 201


async def test_lowering_a_cap_below_use_makes_the_link_exhausted(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 5)
    for _ in range(3):
        assert (await start(client, key=key_of(link))).status_code == 201
    base = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    changed = await alice.request("PATCH", base, json={"max_sessions": 2})
    assert changed.status_code == 200
    assert changed.json()["sessions_left"] == 0
    refused(await start(client, key=key_of(link)), 403, "link_exhausted")
