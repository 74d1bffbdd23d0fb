"""At most 50 active private links per assistant; a batch past the limit is refused whole."""

from __future__ import annotations

import asyncio

from tests.conftest import Person


async def test_the_fifty_first_active_link_is_refused_and_deleting_one_frees_a_slot(client, alice: Person):
    assistant = await alice.new_assistant()
    links = await alice.new_links(assistant["id"], *[0] * 50)
    base = f"/api/v1/assistants/{assistant['id']}/links"
    listed = (await alice.request("GET", base)).json()
    assert (listed["active"], listed["limit"]) == (50, 50)

    refused = await alice.request("POST", base, json={"links": [{"name": "One too many", "max_sessions": 0}]})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "link_limit_reached"
    assert "0 more can be created" in refused.json()["error"]["message"]

    await alice.request("DELETE", f"{base}/{links[0]['id']}")
    assert len(await alice.new_links(assistant["id"], 0)) == 1


async def test_a_batch_past_the_limit_is_refused_whole_and_says_how_many_remain(client, alice: Person):
    assistant = await alice.new_assistant()
    await alice.new_links(assistant["id"], *[0] * 45)
    base = f"/api/v1/assistants/{assistant['id']}/links"
    batch = {"links": [{"name": f"Group {i}", "max_sessions": 1} for i in range(6)]}
    refused = await alice.request("POST", base, json=batch)
    assert refused.status_code == 409
    assert "5 more can be created, not 6" in refused.json()["error"]["message"]
    assert (await alice.request("GET", base)).json()["active"] == 45


async def test_concurrent_batches_cannot_pass_the_limit_together(client, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}/links"
    batch = {"links": [{"name": f"G{i}", "max_sessions": 0} for i in range(20)]}
    responses = await asyncio.gather(*(alice.request("POST", base, json=batch) for _ in range(4)))
    assert sorted(r.status_code for r in responses) == [201, 201, 409, 409]
    assert (await alice.request("GET", base)).json()["active"] == 40


async def test_concurrent_deletes_of_one_link_revoke_it_once(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    path = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    responses = await asyncio.gather(*(alice.request("DELETE", path) for _ in range(5)))
    assert sorted(r.status_code for r in responses) == [204, 409, 409, 409, 409]
    assert {r.json()["error"]["code"] for r in responses if r.status_code == 409} == {"link_revoked"}


async def test_a_deleted_link_cannot_be_edited_or_reissued(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    path = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    await alice.request("DELETE", path)
    assert (await alice.request("PATCH", path, json={"name": "x"})).status_code == 409
    assert (await alice.request("POST", f"{path}/reissue")).status_code == 409


async def test_links_are_renamed_and_recapped(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    path = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    changed = (await alice.request("PATCH", path, json={"name": "Student Group A", "max_sessions": 30})).json()
    assert (changed["name"], changed["max_sessions"], changed["sessions_left"]) == ("Student Group A", 30, 30)
    assert changed["url"] == link["url"]
    assert changed["url"].startswith("http://portico.test/c#k=ptk_")
