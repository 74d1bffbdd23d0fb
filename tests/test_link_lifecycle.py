"""Private links on the owner's terms: paused, resumed, ended by a date, reset, renamed, and acted on
in a selection; each new row of the gate (docs/design.md) over HTTP, on both databases."""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta

import pytest

from portico.access.gate import Refused
from portico.kit.crypto import digest, new_token
from portico.models import utcnow
from tests.conftest import Person, key_of, start
from tests.dashboard_helpers import Dashboard
from tests.test_dashboard_pages import web  # noqa: F401 (fixture)
from tests.test_gate import refused


def links_path(assistant: dict, suffix: str = "") -> str:
    return f"/api/v1/assistants/{assistant['id']}/links{suffix}"


async def patch(alice: Person, assistant: dict, link: dict, **body: object):
    return await alice.request("PATCH", links_path(assistant, f"/{link['id']}"), json=body)


def iso(moment: datetime) -> str:
    return moment.isoformat()


async def test_a_paused_link_says_paused_until_it_is_resumed(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    paused = await patch(alice, assistant, link, paused=True)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"

    refused(await start(client, key=key_of(link)), 403, "link_paused")
    refused(await client.post("/api/v1/chat/lookup", json={"key": key_of(link)}), 403, "link_paused")

    assert (await patch(alice, assistant, link, paused=False)).json()["state"] == "active"
    assert (await start(client, key=key_of(link))).status_code == 201


async def test_a_link_past_its_end_date_says_expired_and_a_later_date_brings_it_back(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    ended = await patch(alice, assistant, link, expires_at=iso(utcnow() - timedelta(minutes=1)))
    assert ended.status_code == 200 and ended.json()["state"] == "expired"
    refused(await start(client, key=key_of(link)), 403, "link_expired")

    later = (utcnow() + timedelta(days=3)).astimezone(UTC).replace(microsecond=0)
    extended = await patch(alice, assistant, link, expires_at=later.isoformat().replace("+00:00", "+02:00"))
    assert extended.json()["state"] == "active"
    assert datetime.fromisoformat(extended.json()["expires_at"]) == later - timedelta(hours=2)
    assert (await start(client, key=key_of(link))).status_code == 201

    never = await patch(alice, assistant, link, expires_at=None)
    assert never.json()["expires_at"] is None and never.json()["state"] == "active"


async def test_the_link_rows_come_in_the_documented_order(client, alice: Person):
    assistant = await alice.new_assistant()
    paused_and_used, ended_and_used, deleted_and_paused = await alice.new_links(assistant["id"], 1, 1, 0)
    for link in (paused_and_used, ended_and_used):
        assert (await start(client, key=key_of(link))).status_code == 201
    await patch(alice, assistant, paused_and_used, paused=True, expires_at=iso(utcnow() - timedelta(days=1)))
    await patch(alice, assistant, ended_and_used, expires_at=iso(utcnow() - timedelta(days=1)))
    await patch(alice, assistant, deleted_and_paused, paused=True)
    await alice.request("DELETE", links_path(assistant, f"/{deleted_and_paused['id']}"))

    refused(await start(client, key=key_of(paused_and_used)), 403, "link_paused")
    refused(await start(client, key=key_of(ended_and_used)), 403, "link_expired")
    refused(await start(client, key=key_of(deleted_and_paused)), 403, "link_revoked")


async def test_offline_comes_before_a_paused_link(client, alice: Person):
    assistant = await alice.new_assistant(live=False)
    (link,) = await alice.new_links(assistant["id"], 0)
    await patch(alice, assistant, link, paused=True)
    refused(await start(client, key=key_of(link)), 403, "assistant_offline")


async def test_reset_gives_an_exhausted_link_its_whole_cap_again(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 1)
    assert (await start(client, key=key_of(link))).status_code == 201
    refused(await start(client, key=key_of(link)), 403, "link_exhausted")

    reset = await alice.request("POST", links_path(assistant, f"/{link['id']}/reset"))
    assert reset.status_code == 200
    assert reset.json()["sessions_used"] == 0 and reset.json()["state"] == "active"
    assert (await start(client, key=key_of(link))).status_code == 201


async def test_a_link_can_be_renamed_and_recapped_and_keeps_its_other_terms(alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    end = iso(utcnow() + timedelta(days=1))
    await patch(alice, assistant, link, paused=True, expires_at=end)
    renamed = (await patch(alice, assistant, link, name="Group B", max_sessions=5)).json()
    assert (renamed["name"], renamed["max_sessions"], renamed["paused"]) == ("Group B", 5, True)
    assert renamed["expires_at"] is not None


async def test_a_deleted_link_cannot_be_resumed_reset_or_given_a_date(alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    await alice.request("DELETE", links_path(assistant, f"/{link['id']}"))
    for response in (
        await patch(alice, assistant, link, paused=False),
        await patch(alice, assistant, link, expires_at=None),
        await alice.request("POST", links_path(assistant, f"/{link['id']}/reset")),
    ):
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "link_revoked"
    listed = await alice.request("GET", links_path(assistant), params={"include_revoked": "true"})
    assert listed.json()["items"][0]["state"] == "deleted"


@pytest.mark.parametrize(
    "expires_at",
    [
        "2030-01-01T00:00:00",  # no offset: which time zone?
        "10000-01-01T00:00:00Z",
        "9999-12-31T23:00:00-05:00",  # past year 9999 in UTC
        "next tuesday",
        "",
        12,
    ],
)
async def test_an_end_date_must_be_a_full_time_with_its_offset(alice: Person, expires_at):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    response = await patch(alice, assistant, link, expires_at=expires_at)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "invalid_request"
    assert "expires_at" in response.json()["error"]["message"]


async def test_an_end_date_in_the_year_9999_is_kept(alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    response = await patch(alice, assistant, link, expires_at="9999-12-31T12:00:00Z")
    assert response.status_code == 200 and response.json()["state"] == "active"


async def test_a_patch_must_change_something_and_cannot_null_a_name(alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    for body in ({}, {"name": None}, {"paused": None}, {"paused": "yes"}):
        assert (await patch(alice, assistant, link, **body)).status_code == 422, body


async def test_bulk_actions_change_the_whole_selection(client, alice: Person):
    assistant = await alice.new_assistant()
    first, second, untouched = await alice.new_links(assistant["id"], 0, 0, 0)
    ids = [first["id"], second["id"]]

    async def bulk(**body: object):
        return await alice.request("POST", links_path(assistant, "/bulk"), json=body)

    paused = await bulk(ids=ids, action="pause")
    assert paused.status_code == 200 and {item["state"] for item in paused.json()["items"]} == {"paused"}
    refused(await start(client, key=key_of(second)), 403, "link_paused")
    assert (await start(client, key=key_of(untouched))).status_code == 201

    assert {i["state"] for i in (await bulk(ids=ids, action="resume")).json()["items"]} == {"active"}
    assert (await start(client, key=key_of(first))).status_code == 201

    expired = await bulk(ids=ids, action="expire")
    assert {item["state"] for item in expired.json()["items"]} == {"expired"}
    refused(await start(client, key=key_of(first)), 403, "link_expired")
    later = iso(utcnow() + timedelta(days=7))
    assert {i["state"] for i in (await bulk(ids=ids, action="expire", expires_at=later)).json()["items"]} == {"active"}

    deleted = await bulk(ids=ids, action="delete")
    assert {item["state"] for item in deleted.json()["items"]} == {"deleted"}
    refused(await start(client, key=key_of(first)), 403, "link_revoked")


async def test_a_bulk_action_is_all_or_nothing(alice: Person):
    assistant = await alice.new_assistant()
    kept, gone = await alice.new_links(assistant["id"], 0, 0)
    await alice.request("DELETE", links_path(assistant, f"/{gone['id']}"))
    path = links_path(assistant, "/bulk")

    conflict = await alice.request("POST", path, json={"ids": [kept["id"], gone["id"]], "action": "resume"})
    assert conflict.status_code == 409 and str(gone["id"]) in conflict.json()["error"]["message"]
    unknown = await alice.request("POST", path, json={"ids": [kept["id"], 999_999], "action": "pause"})
    assert unknown.status_code == 404 and "999999" in unknown.json()["error"]["message"]
    listed = (await alice.request("GET", links_path(assistant))).json()["items"]
    assert [item["state"] for item in listed] == ["active"]


@pytest.mark.parametrize(
    "body",
    [
        {"ids": [], "action": "pause"},
        {"ids": [1], "action": "archive"},
        {"ids": [1], "action": "pause", "expires_at": "2030-01-01T00:00:00Z"},
        {"ids": [0], "action": "pause"},
        {"ids": [1], "action": "expire", "expires_at": "2030-01-01T00:00:00"},
    ],
)
async def test_a_bulk_action_needs_a_selection_and_an_action(alice: Person, body):
    assistant = await alice.new_assistant()
    response = await alice.request("POST", links_path(assistant, "/bulk"), json=body)
    assert response.status_code == 422, response.text


async def test_a_link_paused_between_the_gate_and_the_take_is_refused_as_paused(app, alice: Person):
    """The use-taking UPDATE itself refuses paused and ended links: no session slips through."""
    assistant = await alice.new_assistant()
    paused, ended = await alice.new_links(assistant["id"], 0, 0)
    await patch(alice, assistant, paused, paused=True)
    await patch(alice, assistant, ended, expires_at=iso(utcnow() - timedelta(seconds=1)))
    store = app.state.store
    for link, expected in ((paused, "link_paused"), (ended, "link_expired")):
        with pytest.raises(Refused) as refused:
            await store.start_session_taking_use(
                assistant_id=assistant["id"],
                version=1,
                link_id=link["id"],
                channel="link",
                token_digest=digest(new_token("pts_")),
                now=utcnow(),
            )
        assert refused.value.code == expected
    listed = (await alice.request("GET", links_path(assistant))).json()["items"]
    assert [item["sessions_used"] for item in listed] == [0, 0]


async def test_the_users_table_shows_each_link_s_state(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    active, paused, soon, used = await alice.new_links(assistant["id"], 0, 0, 0, 1)
    await patch(alice, assistant, paused, paused=True)
    await patch(alice, assistant, soon, expires_at=iso(utcnow() + timedelta(days=2, hours=1)))
    await patch(alice, assistant, used, max_sessions=1)
    await web.http.post("/api/v1/chat/sessions", json={"key": key_of(used)})
    page = (await web.get(f"/dashboard/assistants/{assistant['id']}/share")).text
    for label in ("Active", "Paused", "Expires in 3 days", "Exhausted"):
        assert f">{label}</span>" in page, label


async def test_a_blank_cap_in_the_users_table_is_an_error_naming_the_user(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 1)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    response = await web.post(f"{base}/users/{link['id']}/cap", {"max_sessions": "  "})
    assert response.status_code == 422
    assert "The cap for User 1 must be" in html.unescape(response.text)
    stored = (await alice.request("GET", links_path(assistant))).json()["items"][0]
    assert stored["max_sessions"] == 1


async def test_the_owner_pauses_resets_and_ends_a_link_in_the_dashboard(web: Dashboard, client, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 1)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    assert (await web.post(f"{base}/users/{link['id']}/pause")).status_code == 303
    refused(await start(client, key=key_of(link)), 403, "link_paused")
    await web.post(f"{base}/users/{link['id']}/resume")
    assert (await start(client, key=key_of(link))).status_code == 201
    await web.post(f"{base}/users/{link['id']}/reset")
    assert (await start(client, key=key_of(link))).status_code == 201

    yesterday = (utcnow() - timedelta(days=2)).date().isoformat()
    assert (await web.post(f"{base}/users/{link['id']}/expiry", {"expires_on": yesterday})).status_code == 303
    await web.post(f"{base}/users/{link['id']}/reset")
    refused(await start(client, key=key_of(link)), 403, "link_expired")
    bad = await web.post(f"{base}/users/{link['id']}/expiry", {"expires_on": "31/12/2030"})
    assert bad.status_code == 422 and "End date for User 1" in html.unescape(bad.text)

    none = await web.post(f"{base}/users/bulk", {"action": "pause"})
    assert none.status_code == 422 and "Select at least one user" in none.text
    chosen = await web.post(f"{base}/users/bulk", {"action": "expire", "ids": str(link["id"]), "expires_on": ""})
    assert chosen.status_code == 303


@pytest.mark.parametrize("expires_at", ["0001-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "1999-12-31T23:00:00Z"])
async def test_an_end_date_in_year_1_is_refused_as_long_past_not_too_far_ahead(alice: Person, expires_at):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    response = await patch(alice, assistant, link, expires_at=expires_at)
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "is long past" in message and "too far in the future" not in message, message


async def test_the_users_table_says_minutes_and_hours_and_shows_a_full_end(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    soon, today, later = await alice.new_links(assistant["id"], 0, 0, 0)
    await patch(alice, assistant, soon, expires_at=iso(utcnow() + timedelta(minutes=30, seconds=-5)))
    await patch(alice, assistant, today, expires_at=iso(utcnow() + timedelta(hours=5, seconds=-5)))
    await patch(alice, assistant, later, expires_at="2031-05-06T14:30:00Z")
    base = f"/dashboard/assistants/{assistant['id']}"
    page = (await web.get(f"{base}/share")).text
    assert ">Expires in 30 minutes</span>" in page and ">Expires in 5 hours</span>" in page
    assert "Expires in 1 day" not in page
    # An end set to the minute shows its date and time, and saving the field unchanged keeps it.
    assert f'id="expiry-{later["id"]}" name="expires_on" type="datetime-local" value="2031-05-06T14:30"' in page
    kept = await web.post(f"{base}/users/{later['id']}/expiry", {"expires_on": "2031-05-06T14:30"})
    assert kept.status_code == 303
    stored = {item["id"]: item for item in (await alice.request("GET", links_path(assistant))).json()["items"]}
    assert stored[later["id"]]["expires_at"].startswith("2031-05-06T14:30:00")
    year_one = await web.post(f"{base}/users/{later['id']}/expiry", {"expires_on": "0001-01-01"})
    assert year_one.status_code == 422
    assert "'0001-01-01' is long past, so it cannot be an end date" in html.unescape(year_one.text)
