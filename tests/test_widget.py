"""The widget: its loader, the chat frame's embed mode and allowed domains."""

from __future__ import annotations

import gzip

import pytest

from portico.widget.domains import allows, normalise_all
from tests.conftest import Person, key_of, start


async def test_the_loader_is_small_cacheable_and_versions_the_frame(client):
    response = await client.get("/widget.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert "__PORTICO_VERSION__" not in response.text and "?embed=1&v=" in response.text
    assert len(gzip.compress(response.content)) <= 4096  # bench/widget_size.py measures it in a browser
    again = await client.get("/widget.js", headers={"If-None-Match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


async def test_the_embed_frame_may_be_framed_only_by_allowed_domains(client, alice: Person):
    assistant = await alice.new_assistant()
    direct = await client.get(f"/c/{assistant['public_id']}")
    assert "frame-ancestors 'none'" in direct.headers["content-security-policy"]
    assert direct.headers["x-frame-options"] == "DENY"
    embed = await client.get(f"/c/{assistant['widget_id']}", params={"embed": "1"})
    assert "frame-ancestors *" in embed.headers["content-security-policy"]
    assert "x-frame-options" not in embed.headers
    assert 'data-channel="widget"' in embed.text
    await alice.request(
        "PATCH",
        f"/api/v1/assistants/{assistant['id']}",
        json={"allowed_domains": ["school.example", "http://127.0.0.1:8123"]},
    )
    embed = await client.get(f"/c/{assistant['widget_id']}", params={"embed": "1"})
    assert (
        "frame-ancestors 'self' school.example http://127.0.0.1:8123;" in embed.headers["content-security-policy"] + ";"
    )


async def test_widget_sessions_from_other_websites_are_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 1)
    patched = await alice.request(
        "PATCH", f"/api/v1/assistants/{assistant['id']}", json={"allowed_domains": ["*.school.example"]}
    )
    assert patched.json()["allowed_domains"] == ["*.school.example"]
    for origin in ("https://evil.example", None, "https://school.example.evil.example"):
        refused = await start(client, key=key_of(link), channel="widget", origin=origin)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "origin_not_allowed")
    listed = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()
    assert listed["items"][0]["sessions_used"] == 0, "a refused widget start must give the use back"
    allowed = await start(client, key=key_of(link), channel="widget", origin="https://www.school.example")
    assert allowed.status_code == 201
    # The direct link is a link, not a widget: allowed domains do not apply to it.
    assert (await start(client, public_id=assistant["public_id"])).status_code == 201
    metrics = (
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics", params={"period": "today"})
    ).json()
    assert metrics["refusals"]["origin_not_allowed"] == 3


@pytest.mark.parametrize(
    "domains", [["not a domain"], ["ftp://files.example"], ["https://x.example/path"], ["a" * 301]]
)
async def test_bad_allowed_domains_are_refused(client, alice: Person, domains):
    assistant = await alice.new_assistant()
    response = await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"allowed_domains": domains})
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["allowed_domains"] == []


def test_domain_entries_match_like_content_security_policy():
    allowed = normalise_all(["Example.com", "*.school.edu", "http://127.0.0.1:8123", "https://shop.example.org/"])
    assert allowed == ["example.com", "*.school.edu", "http://127.0.0.1:8123", "https://shop.example.org"]
    yes = [
        "https://example.com",
        "http://example.com",
        "https://a.school.edu",
        "http://127.0.0.1:8123",
        "https://shop.example.org",
    ]
    no = [
        "https://example.com:8443",
        "https://school.edu",
        "http://127.0.0.1:9999",
        "http://shop.example.org",
        "https://evil.com",
        None,
        "javascript:alert(1)",
    ]
    assert all(allows(allowed, origin) for origin in yes)
    assert not any(allows(allowed, origin) for origin in no)
    assert allows([], None) and allows([], "https://anything.example")


async def test_what_guests_download_is_compressed_and_the_dashboard_is_not(client, alice: Person):
    assistant = await alice.new_assistant()
    for path in ("/widget.js", f"/c/{assistant['public_id']}", "/static/chat.js"):
        response = await client.get(path, headers={"Accept-Encoding": "gzip"})
        assert response.headers.get("content-encoding") == "gzip", path
    page = await client.get("/dashboard/sign-in", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in page.headers


async def test_an_offline_assistants_page_still_names_it(client, alice: Person):
    assistant = await alice.new_assistant(live=False, name="Riverside Library")
    page = await client.get(f"/c/{assistant['public_id']}")
    assert page.status_code == 403 and "Riverside Library" in page.text and "offline right now" in page.text
    missing = await client.get("/c/not-an-assistant")
    assert missing.status_code == 404 and "Unavailable" in missing.text


async def check(client, widget_id: str, origin: str, key: str | None = None) -> dict:
    """What the loader asks before it shows its bubble, as a browser on `origin` sends it."""
    body = {"widget_id": widget_id, **({"key": key} if key else {})}
    response = await client.post("/widget/check", data=body, headers={"Origin": origin})
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"
    return response.json()


async def test_the_loader_shows_nothing_where_the_frame_could_not_work_and_says_why(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    assert await check(client, assistant["widget_id"], "https://anywhere.example") == {"show": True}
    await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"allowed_domains": ["school.example"]})
    assert (await check(client, assistant["widget_id"], "https://school.example"))["show"] is True
    other = await check(client, assistant["widget_id"], "https://other.example")
    assert other["show"] is False
    assert "this website (https://other.example) is not among the assistant's allowed websites" in other["message"]
    # After a rotation the old snippet shows nothing; with a key it follows its link, as its frame does.
    old_id = assistant["widget_id"]
    await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/widget-id/rotate")
    rotated = await check(client, old_id, "https://school.example")
    assert rotated["show"] is False and f"no assistant has the widget id '{old_id}'" in rotated["message"]
    assert (await check(client, old_id, "https://school.example", key=key_of(link)))["show"] is True
    assert key_of(link) not in str(await check(client, old_id, "https://other.example", key=key_of(link)))


async def test_the_loader_asks_before_it_shows_its_bubble(client):
    loader = (await client.get("/widget.js")).text
    assert '"/widget/check"' in loader and "a.show === false" in loader
