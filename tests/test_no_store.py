"""No browser or proxy keeps a page or an answer that carries a key: every dashboard page and every
API answer says `Cache-Control: no-store`, so Back after signing out shows the sign-in page, not the
private links."""

from __future__ import annotations

import httpx
import pytest

from tests.browser import browser  # noqa: F401  (fixture)
from tests.conftest import Person, key_of
from tests.dashboard_helpers import Dashboard, dashboard_client

PASSWORD = "correct horse battery"


@pytest.fixture
async def web(app):
    async with dashboard_client(app) as http:
        yield Dashboard(http)


def no_store(response: httpx.Response) -> bool:
    return response.headers.get("cache-control") == "no-store"


async def test_api_answers_that_carry_keys_are_not_stored(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    base = f"/api/v1/assistants/{assistant['id']}/links"
    created = await alice.request("POST", base, json={"links": [{"name": "Group A", "max_sessions": 0}]})
    link = created.json()["items"][0]
    listed = await alice.request("GET", base)
    reissued = await alice.request("POST", f"{base}/{link['id']}/reissue")
    for response in (created, listed, reissued):
        assert response.status_code in (200, 201) and "#k=ptk_" in response.text
        assert no_store(response), response.request.url
    # Every owner answer, not only those: an assistant carries its public link, Logs carry transcripts.
    for path in ("/api/v1/assistants", f"/api/v1/assistants/{assistant['id']}/sessions"):
        assert no_store(await alice.request("GET", path)), path
    # A refusal too: nothing about it should be replayed from a cache.
    assert no_store(await client.get("/api/v1/assistants"))


async def test_every_dashboard_page_is_not_stored(client, web, alice: Person):
    assistant = await alice.new_assistant(share="private")
    [link] = await alice.new_links(assistant["id"], 0)
    assert no_store(await web.get("/dashboard/sign-in"))
    signed_in = await web.sign_in(alice.email, PASSWORD)
    assert signed_in.status_code == 303 and no_store(signed_in)
    share = await web.get(f"/dashboard/assistants/{assistant['id']}/share")
    assert key_of(link) in share.text and no_store(share)
    for path in (
        "/dashboard",
        "/dashboard/tokens",
        "/dashboard/account",
        f"/dashboard/assistants/{assistant['id']}/behavior",
    ):
        response = await web.get(path)
        assert response.status_code == 200 and no_store(response), path
    created = await web.post("/dashboard/tokens", {"name": "laptop"})
    assert created.status_code == 303 and no_store(created)  # its cookie holds the new token
    shown = await web.get("/dashboard/tokens")
    assert "pto_" in shown.text and no_store(shown)


async def test_downloads_and_guest_files_keep_their_own_cache_rules(client, alice: Person):
    assistant = await alice.new_assistant()
    csv_export = await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions.csv")
    assert no_store(csv_export)
    assert (await client.get("/widget.js")).headers["cache-control"] == "public, max-age=3600"
    assert not no_store(await client.get(f"/c/{assistant['public_id']}"))


@pytest.fixture
def server(shared_server, app) -> str:
    return shared_server().url


async def test_back_after_signing_out_does_not_show_the_private_links(server, browser, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    [link] = await alice.new_links(assistant["id"], 0)
    page = await (await browser.new_context()).new_page()
    await page.goto(f"{server}/dashboard/sign-in")
    await page.fill("input[name=email]", alice.email)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/share")
    assert key_of(link) in await page.content()

    await page.click("text=Sign out")
    await page.wait_for_url("**/dashboard/sign-in")
    await page.go_back()
    await page.wait_for_load_state()
    assert "/dashboard/sign-in" in page.url
    assert key_of(link) not in await page.content()
