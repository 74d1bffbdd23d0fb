"""A link with N uses admits exactly N sessions, however many guests start at once."""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.conftest import Person, key_of, start


async def burst(client, key: str, count: int) -> Counter:
    responses = await asyncio.gather(*(start(client, key=key) for _ in range(count)))
    return Counter(r.status_code if r.status_code == 201 else r.json()["error"]["code"] for r in responses)


async def test_two_hundred_concurrent_starts_on_five_uses_admit_exactly_five(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 5)
    assert await burst(client, key_of(link), 200) == Counter({201: 5, "link_exhausted": 195})
    listed = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"][0]
    assert (listed["sessions_used"], listed["sessions_left"]) == (5, 0)


async def test_two_hundred_concurrent_starts_on_an_unlimited_link_admit_all(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    assert await burst(client, key_of(link), 200) == Counter({201: 200})
    listed = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"][0]
    assert listed["sessions_used"] == 200
