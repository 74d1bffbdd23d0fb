"""An access code on the public link: "anyone with the link and the code" (rows 8a and 8b of the gate)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from portico.models import utcnow
from tests.conftest import Person, key_of, start
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.test_gate import refused
from tests.test_rate_limits import Running, assert_rate_limited, running  # noqa: F401 (fixture)


async def share(alice: Person, assistant: dict, **body: object):
    return await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/share", json={"mode": "public", **body})


async def lookup(client, **body: object):
    return await client.post("/api/v1/chat/lookup", json=body)


async def test_a_guest_of_the_public_link_needs_the_code_once_it_is_set(client, alice: Person):
    assistant = await alice.new_assistant()
    saved = await share(alice, assistant, access_code="open sesame")
    assert saved.status_code == 200
    assert saved.json()["has_access_code"] is True
    assert "open sesame" not in saved.text and "access_code_hash" not in saved.text
    public_id = assistant["public_id"]

    refused(await lookup(client, public_id=public_id), 403, "access_code_required")
    refused(await start(client, public_id=public_id), 403, "access_code_required")
    refused(await lookup(client, public_id=public_id, access_code="open sesame!"), 403, "access_code_invalid")
    refused(await start(client, public_id=public_id, access_code="OPEN SESAME"), 403, "access_code_invalid")

    assert (await lookup(client, public_id=public_id, access_code="open sesame")).status_code == 200
    assert (await start(client, public_id=public_id, access_code="open sesame")).status_code == 201


async def test_the_widget_without_a_key_needs_the_code_too(client, alice: Person):
    assistant = await alice.new_assistant()
    await share(alice, assistant, access_code="1234")
    refused(await start(client, widget_id=assistant["widget_id"]), 403, "access_code_required")
    started = await start(client, widget_id=assistant["widget_id"], access_code="1234")
    assert started.status_code == 201


async def test_private_links_never_need_the_code(client, alice: Person):
    assistant = await alice.new_assistant()
    await share(alice, assistant, access_code="1234")
    (link,) = await alice.new_links(assistant["id"], 0)
    assert (await start(client, key=key_of(link))).status_code == 201
    # A wrong code beside a key is not even looked at.
    assert (await start(client, key=key_of(link), access_code="nope")).status_code == 201
    assert (await start(client, key=key_of(link), public_id=assistant["public_id"])).status_code == 201


async def test_the_code_can_be_changed_and_removed(client, alice: Person):
    assistant = await alice.new_assistant()
    await share(alice, assistant, access_code="first code")
    await share(alice, assistant, access_code="second code")
    refused(await start(client, public_id=assistant["public_id"], access_code="first code"), 403, "access_code_invalid")
    assert (await start(client, public_id=assistant["public_id"], access_code="second code")).status_code == 201

    # Leaving the field out keeps the code; null removes it.
    assert (await share(alice, assistant)).json()["has_access_code"] is True
    removed = await share(alice, assistant, access_code=None)
    assert removed.json()["has_access_code"] is False
    assert (await start(client, public_id=assistant["public_id"])).status_code == 201


async def test_a_private_assistant_asks_for_a_key_before_any_code(client, alice: Person):
    assistant = await alice.new_assistant()
    await share(alice, assistant, access_code="1234")
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/share", json={"mode": "private"})
    refused(await start(client, public_id=assistant["public_id"], access_code="1234"), 403, "key_required")


@pytest.mark.parametrize("code", ["abc", "x" * 65, "    ", "abc\x00", "", 1234])
async def test_an_access_code_has_4_to_64_characters_and_is_not_blank(alice: Person, code):
    assistant = await alice.new_assistant()
    response = await share(alice, assistant, access_code=code)
    assert response.status_code == 422, response.text
    assert "access_code" in response.json()["error"]["message"]
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["has_access_code"] is False


async def test_codes_of_4_and_64_characters_are_kept(alice: Person):
    assistant = await alice.new_assistant()
    for code in ("abcd", "y" * 64, " pin "):
        assert (await share(alice, assistant, access_code=code)).status_code == 200, code


async def test_an_expired_public_link_says_expired(client, alice: Person):
    assistant = await alice.new_assistant()
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    saved = await share(alice, assistant, public_link_expires_at=past, access_code="1234")
    assert saved.status_code == 200 and saved.json()["public_link_expires_at"] is not None
    # Row 8a comes before 8b: no code is asked for a link that has ended.
    refused(await start(client, public_id=assistant["public_id"]), 403, "link_expired")
    refused(await lookup(client, widget_id=assistant["widget_id"], access_code="1234"), 403, "link_expired")
    (link,) = await alice.new_links(assistant["id"], 0)
    assert (await start(client, key=key_of(link))).status_code == 201

    later = (utcnow() + timedelta(days=1)).isoformat()
    await share(alice, assistant, public_link_expires_at=later, access_code=None)
    assert (await start(client, public_id=assistant["public_id"])).status_code == 201
    refused(await share(alice, assistant, public_link_expires_at="2030-01-01T00:00:00"), 422, "invalid_request")


async def test_wrong_codes_count_toward_the_failed_secrets_limit(running: Running):
    async with running(failed_secrets="3/minute") as portico:
        alice = await portico.person()
        assistant = await alice.new_assistant()
        await share(alice, assistant, access_code="the right one")
        public_id = assistant["public_id"]
        for attempt in range(3):
            guess = await lookup(portico.http, public_id=public_id, access_code=f"guess {attempt}")
            refused(guess, 403, "access_code_invalid")
        # Locked out: even the right code waits now.
        assert_rate_limited(await lookup(portico.http, public_id=public_id, access_code="the right one"))


async def test_a_right_code_gets_through_an_address_locked_out_by_someone_elses_wrong_keys(running: Running):
    async with running(failed_secrets="3/minute") as portico:
        alice = await portico.person()
        assistant = await alice.new_assistant()
        (link,) = await alice.new_links(assistant["id"], 0)
        await share(alice, assistant, access_code="the right one")
        public_id = assistant["public_id"]
        # Someone behind the same address (a school's NAT) guesses keys until it is locked out.
        for guess in range(3):
            refused(await start(portico.http, key=f"ptk_{guess:043d}"), 403, "link_invalid")
        assert_rate_limited(await start(portico.http, key=key_of(link)))
        # The class with the code still gets in; a wrong code is still refused, and counted.
        assert (await lookup(portico.http, public_id=public_id, access_code="the right one")).status_code == 200
        assert (await start(portico.http, public_id=public_id, access_code="the right one")).status_code == 201
        refused(await lookup(portico.http, public_id=public_id, access_code="wrong"), 403, "access_code_invalid")
        # A code opens nothing else: not an unknown assistant, not one without a code.
        other = await alice.new_assistant()
        assert_rate_limited(await lookup(portico.http, public_id="nope-1", access_code="the right one"))
        assert_rate_limited(await start(portico.http, public_id=other["public_id"], access_code="the right one"))
        assert_rate_limited(await lookup(portico.http, public_id=public_id))


async def test_wrong_codes_lock_out_only_that_assistants_code_from_that_address(running: Running):
    async with running(failed_secrets="3/minute", trusted_proxies="127.0.0.1") as portico:
        alice = await portico.person()
        first, second = await alice.new_assistant(), await alice.new_assistant()
        (link,) = await alice.new_links(first["id"], 0)
        for assistant in (first, second):
            await share(alice, assistant, access_code="the right one")

        async def ask(address: str, public_id: str, code: str):
            body = {"public_id": public_id, "access_code": code}
            return await portico.http.post("/api/v1/chat/lookup", json=body, headers={"X-Forwarded-For": address})

        for attempt in range(3):
            refused(await ask("203.0.113.1", first["public_id"], f"guess {attempt}"), 403, "access_code_invalid")
        assert_rate_limited(await ask("203.0.113.1", first["public_id"], "the right one"))
        assert (await ask("203.0.113.1", second["public_id"], "the right one")).status_code == 200
        assert (await ask("203.0.113.2", first["public_id"], "the right one")).status_code == 200
        keyed = await portico.http.post(
            "/api/v1/chat/sessions", json={"key": key_of(link)}, headers={"X-Forwarded-For": "203.0.113.1"}
        )
        assert keyed.status_code == 201


async def test_a_missing_code_is_not_a_failed_secret(running: Running):
    async with running(failed_secrets="2/minute") as portico:
        alice = await portico.person()
        assistant = await alice.new_assistant()
        await share(alice, assistant, access_code="the right one")
        for _ in range(5):
            refused(await lookup(portico.http, public_id=assistant["public_id"]), 403, "access_code_required")
        found = await lookup(portico.http, public_id=assistant["public_id"], access_code="the right one")
        assert found.status_code == 200


async def test_the_share_page_sets_and_removes_the_code(app, client, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}"
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in(alice.email, "correct horse battery")
        await web.get(f"{base}/share")
        short = await web.post(f"{base}/access-code", {"access_code": "abc"})
        assert short.status_code == 422 and "4 to 64 characters" in short.text
        assert (await web.post(f"{base}/access-code", {"access_code": "letmein"})).status_code == 303
        refused(await start(client, public_id=assistant["public_id"]), 403, "access_code_required")
        page = (await web.get(f"{base}/share")).text
        assert "letmein" not in page and "Remove code" in page
        assert (await web.post(f"{base}/access-code", {"remove": "1"})).status_code == 303
        assert (await start(client, public_id=assistant["public_id"])).status_code == 201


async def test_the_share_page_ends_the_public_link_on_a_date(app, client, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}"
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in(alice.email, "correct horse battery")
        await web.get(f"{base}/share")
        yesterday = (utcnow() - timedelta(days=2)).date().isoformat()
        assert (await web.post(f"{base}/public-link/expiry", {"expires_on": yesterday})).status_code == 303
        refused(await start(client, public_id=assistant["public_id"]), 403, "link_expired")
        page = await web.get(f"{base}/share")
        assert f'value="{yesterday}"' in page.text and ">Expired</span>" in page.text
        bad = await web.post(f"{base}/public-link/expiry", {"expires_on": "9999-12-31"})
        assert bad.status_code == 422 and "is not a date like" in bad.text
        assert (await web.post(f"{base}/public-link/expiry", {"expires_on": ""})).status_code == 303
        assert (await start(client, public_id=assistant["public_id"])).status_code == 201


async def test_the_openai_endpoint_serves_a_coded_assistant_to_private_keys_only(client, alice: Person):
    assistant = await alice.new_assistant()
    await share(alice, assistant, access_code="1234")
    body = {"model": assistant["public_id"], "messages": [{"role": "user", "content": "When are you open?"}]}
    anyone = await client.post("/v1/chat/completions", json=body, headers={"Authorization": "Bearer anything"})
    refused(anyone, 403, "access_code_required")
    (link,) = await alice.new_links(assistant["id"], 0)
    keyed = await client.post("/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {key_of(link)}"})
    assert keyed.status_code == 200, keyed.text
