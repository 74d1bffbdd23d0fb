"""Going offline, deleting a link or the assistant stop the next start and the next resume."""

from __future__ import annotations

from sqlalchemy import select

from portico.models import PrivateLink, RetiredLinkKey
from tests.chat_helpers import say
from tests.conftest import Person, key_of, start


async def resume(client, session: dict):
    headers = {"Authorization": f"Bearer {session['token']}"}
    return await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=headers)


async def test_offline_refuses_the_next_start_and_resume_and_ends_sessions(client, alice: Person):
    assistant = await alice.new_assistant()
    session = (await start(client, public_id=assistant["public_id"])).json()
    assert (await resume(client, session)).json()["state"] == "active"

    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
    assert (await start(client, public_id=assistant["public_id"])).json()["error"]["code"] == "assistant_offline"
    refused = await resume(client, session)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "assistant_offline")

    # Back live, the old session stays ended, and says why.
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "live"})
    state = (await resume(client, session)).json()
    assert (state["state"], state["end_reason"]) == ("ended", "assistant_offline")


async def test_deleting_a_link_refuses_its_next_start_and_resume(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    session = (await start(client, key=key_of(link))).json()
    deleted = await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
    assert deleted.status_code == 204
    assert (await start(client, key=key_of(link))).json()["error"]["code"] == "link_revoked"
    refused = await resume(client, session)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "link_revoked")


async def test_deleting_the_assistant_refuses_resume_as_not_found(client, alice: Person):
    assistant = await alice.new_assistant()
    session = (await start(client, public_id=assistant["public_id"])).json()
    await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}")
    refused = await resume(client, session)
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "not_found")
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).status_code == 404


async def test_revoked_link_keeps_its_row_and_name(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}")
    base = f"/api/v1/assistants/{assistant['id']}/links"
    assert (await alice.request("GET", base)).json()["items"] == []
    everything = (await alice.request("GET", base, params={"include_revoked": "true"})).json()["items"]
    assert [(item["name"], item["revoked"]) for item in everything] == [("User 1", True)]


async def test_switching_to_private_stops_guests_on_the_public_link_but_not_private_links(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    anonymous = (await start(client, public_id=assistant["public_id"])).json()
    private = (await start(client, key=key_of(link))).json()
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/share", json={"mode": "private"})
    refused = await resume(client, anonymous)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "key_required")
    assert (await resume(client, private)).json()["state"] == "active"
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/share", json={"mode": "public"})
    state = (await resume(client, anonymous)).json()
    assert (state["state"], state["end_reason"]) == ("ended", "made_private")


async def test_reissuing_a_link_ends_its_sessions_and_tells_old_key_guests_it_was_replaced(
    app, client, alice: Person, bob: Person
):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    session = (await start(client, key=key_of(link))).json()
    reissued = await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/links/{link['id']}/reissue")
    assert reissued.status_code == 200
    # The session started with the old key is over, and says why; its next message is refused.
    state = (await resume(client, session)).json()
    assert (state["state"], state["end_reason"]) == ("ended", "link_reissued")
    assert "replaced your link with a new one" in state["end_message"]
    said = await say(client, session, "Still there?")
    assert (said.status_code, said.json()["error"]["code"]) == (409, "session_ended")
    assert "replaced your link with a new one" in said.json()["error"]["message"]
    # The old key: told the link was replaced (in the guest's language), never "copied wrong".
    refused = await client.post("/api/v1/chat/lookup", json={"key": key_of(link)}, headers={"Accept-Language": "de"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "link_reissued")
    assert "durch einen neuen ersetzt" in refused.json()["error"]["message"]
    again = await start(client, key=key_of(link), public_id=assistant["public_id"])
    assert again.json()["error"]["code"] == "link_reissued"
    # With another assistant's public id it is only a key that is not that assistant's.
    other = await bob.new_assistant()
    assert (await start(client, key=key_of(link), public_id=other["public_id"])).json()["error"]["code"] == (
        "link_invalid"
    )
    # The new key starts afresh; the database keeps only the old key's digest.
    assert (await start(client, key=key_of(reissued.json()))).status_code == 201
    async with app.state.sessionmaker() as db:
        retired = list(await db.scalars(select(RetiredLinkKey)))
        row = await db.get(PrivateLink, link["id"])
    assert [r.link_id for r in retired] == [link["id"]] and key_of(link) not in retired[0].key_digest
    assert row is not None and row.key_digest != retired[0].key_digest and row.revoked_at is None
    metrics = await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics", params={"period": "today"})
    assert metrics.json()["refusals"]["link_reissued"] == 1
