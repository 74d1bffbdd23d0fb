"""Bad input gets a clear 4xx with an error code and a sentence, and changes nothing."""

from __future__ import annotations

import pytest

from tests.conftest import Person, start


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and len(error["message"]) > 5


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 201},
        {"name": 5},
        {"name": "A", "colour": "blue"},
        {"name": "A", "settings": {"inactivity_timeout": "600"}},
        {"name": "A", "settings": {"max_message_length": 0}},
        {"name": "A", "engine": {"type": "telepathy"}},
        {"name": "A", "engine": {"type": "openai", "temperature": 2.5}},
        {"name": "A", "engine": {"type": "openai", "base_url": "not a url"}},
        {"name": "A", "knowledge": "x" * 1_000_001},
        {},
        [],
    ],
)
async def test_bad_assistant_bodies_are_refused_and_create_nothing(client, alice: Person, body):
    response = await alice.request("POST", "/api/v1/assistants", json=body)
    assert response.status_code in (413, 422), response.text
    assert response.json()["error"]["code"] in ("invalid_request", "body_too_large")
    assert (await alice.request("GET", "/api/v1/assistants")).json()["items"] == []


async def test_malformed_json_is_refused(client, alice: Person):
    response = await alice.request(
        "POST", "/api/v1/assistants", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "malformed_json")


async def test_bodies_over_one_mebibyte_are_refused(client, alice: Person):
    huge = b'{"name": "A", "knowledge": "' + b"x" * (1024 * 1024) + b'"}'
    response = await alice.request(
        "POST", "/api/v1/assistants", content=huge, headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "body_too_large")

    async def chunks():
        for _ in range(20):
            yield b"x" * 65536

    streamed = await alice.request(
        "POST", "/api/v1/assistants", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(streamed, 413, "body_too_large")
    assert (await alice.request("GET", "/api/v1/assistants")).json()["items"] == []


@pytest.mark.parametrize(
    "links",
    [
        [],
        [{"name": "", "max_sessions": 1}],
        [{"name": "x" * 201, "max_sessions": 1}],
        [{"name": "A", "max_sessions": -1}],
        [{"name": "A", "max_sessions": 1.5}],
        [{"name": "A", "max_sessions": "5"}],
        [{"name": "A", "max_sessions": 1_000_001}],
        [{"name": "A", "max_sessions": 1, "email": "a@b.c"}],
        [{"name": "Good", "max_sessions": 1}, {"name": "Bad", "max_sessions": -5}],
    ],
)
async def test_bad_link_batches_are_refused_whole(client, alice: Person, links):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}/links"
    assert_error(await alice.request("POST", base, json={"links": links}), 422, "invalid_request")
    assert (await alice.request("GET", base)).json()["active"] == 0


async def test_bad_link_edits_are_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    path = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    for body in ({}, {"max_sessions": -1}, {"name": ""}, {"name": None, "max_sessions": None}, {"cap": 3}):
        assert_error(await alice.request("PATCH", path, json=body), 422, "invalid_request")
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"][0] == link


async def test_unknown_status_or_mode_is_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}"
    assert_error(await alice.request("PUT", f"{base}/status", json={"status": "paused"}), 422, "invalid_request")
    assert_error(await alice.request("PUT", f"{base}/share", json={"mode": "secret"}), 422, "invalid_request")
    unchanged = (await alice.request("GET", base)).json()
    assert (unchanged["status"], unchanged["share_mode"]) == ("live", "public")


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "auth_required"),
        ("Bearer", "auth_required"),
        ("Basic dXNlcjpwYXNz", "auth_required"),
        ("Bearer nonsense", "invalid_token"),
        ("Bearer pto_" + "A" * 43, "invalid_token"),
        (("Bearer pto_" + "é" * 43).encode(), "invalid_token"),
    ],
)
async def test_missing_or_malformed_owner_tokens_are_refused(client, alice: Person, header, code):
    headers = {"Authorization": header} if header else {}
    assert_error(await client.get("/api/v1/assistants", headers=headers), 401, code)


async def test_revoked_owner_token_is_refused(app, client, alice: Person):
    from portico.owners import service as owners

    async with app.state.sessionmaker() as db:
        owner = await owners.get_owner_by_email(db, alice.email)
        await owners.revoke_api_token(db, owner=owner, token_id=1)
        await db.commit()
    assert_error(await alice.request("GET", "/api/v1/assistants"), 401, "invalid_token")


async def test_guest_start_needs_a_public_id_or_a_key(client, alice: Person):
    assert_error(await start(client), 422, "invalid_request")
    assert_error(await start(client, public_id="x", channel="preview"), 422, "invalid_request")
    assert_error(await start(client, key=5), 422, "invalid_request")


async def test_session_token_of_another_session_is_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    first = (await start(client, public_id=assistant["public_id"])).json()
    second = (await start(client, public_id=assistant["public_id"])).json()
    wrong = {"Authorization": f"Bearer {second['token']}"}
    for method, suffix in (("GET", ""), ("POST", "/end")):
        response = await client.request(method, f"/api/v1/chat/sessions/{first['session_id']}{suffix}", headers=wrong)
        assert_error(response, 401, "invalid_session_token")
    assert_error(await client.get(f"/api/v1/chat/sessions/{first['session_id']}"), 401, "auth_required")
    mine = {"Authorization": f"Bearer {first['token']}"}
    assert (await client.get(f"/api/v1/chat/sessions/{first['session_id']}", headers=mine)).json()["state"] == "active"


async def test_unknown_routes_and_methods_answer_json_errors(client, alice: Person):
    assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await alice.request("PUT", "/api/v1/assistants"), 405, "method_not_allowed")
