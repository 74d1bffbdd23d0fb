"""Bad input gets a clear 4xx with an error code and a sentence, and changes nothing."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Person, start


def assert_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and len(error["message"]) > 5


@pytest.mark.sqlite_only  # refused before any statement
@pytest.mark.sqlite_only  # refused before any statement
@pytest.mark.sqlite_only  # refused before any statement
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


@pytest.mark.sqlite_only  # refused before any statement
async def test_malformed_json_is_refused(client, alice: Person):
    response = await alice.request(
        "POST", "/api/v1/assistants", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_error(response, 400, "malformed_json")


@pytest.mark.sqlite_only  # refused before any statement
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


@pytest.mark.sqlite_only  # refused before any statement
async def test_bad_link_edits_are_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    path = f"/api/v1/assistants/{assistant['id']}/links/{link['id']}"
    for body in ({}, {"max_sessions": -1}, {"name": ""}, {"name": None, "max_sessions": None}, {"cap": 3}):
        assert_error(await alice.request("PATCH", path, json=body), 422, "invalid_request")
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"][0] == link


@pytest.mark.sqlite_only  # refused before any statement
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
    from portico.identity import accounts, members, tokens

    async with app.state.sessionmaker() as db:
        owner = await accounts.get_owner_by_email(db, alice.email)
        member = await members.first_team(db, account_id=owner.id)
        await tokens.revoke_api_token(db, member=member, token_id=1)
        await db.commit()
    assert_error(await alice.request("GET", "/api/v1/assistants"), 401, "invalid_token")


@pytest.mark.sqlite_only  # refused before any statement
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


@pytest.mark.sqlite_only  # refused before any statement
async def test_unknown_routes_and_methods_answer_json_errors(client, alice: Person):
    assert_error(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(await alice.request("PUT", "/api/v1/assistants"), 405, "method_not_allowed")


# Past PostgreSQL's integer, past SQLite's int64, negative, zero: ids that name nothing.
OUT_OF_RANGE_IDS = [2**31, 2**63, 2**64, -1, 0]


@pytest.mark.parametrize("bad", OUT_OF_RANGE_IDS)
async def test_ids_out_of_range_in_a_path_are_not_found(client, alice: Person, bad):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 3)
    owned = f"/api/v1/assistants/{assistant['id']}"
    for method, path in [
        ("GET", f"/api/v1/assistants/{bad}"),
        ("PATCH", f"/api/v1/assistants/{bad}/links/{link['id']}"),
        ("PATCH", f"{owned}/links/{bad}"),
        ("DELETE", f"{owned}/links/{bad}"),
        ("POST", f"{owned}/links/{bad}/reissue"),
        ("GET", f"{owned}/sessions/{bad}"),
        ("GET", f"/api/v1/assistants/{bad}/metrics"),
    ]:
        assert_error(await alice.request(method, path, json={"name": "A"}), 404, "not_found")
    guest = {"Authorization": "Bearer pts_anything"}
    for method, path in [
        ("GET", f"/api/v1/chat/sessions/{bad}"),
        ("POST", f"/api/v1/chat/sessions/{bad}/end"),
        ("POST", f"/api/v1/chat/sessions/{bad}/messages"),
    ]:
        assert_error(await client.request(method, path, headers=guest, json={"content": "Hi"}), 404, "not_found")


async def test_ids_out_of_range_in_a_dashboard_path_show_the_not_found_page(app, client, alice: Person):
    from tests.dashboard_helpers import Dashboard

    assistant = await alice.new_assistant()
    dashboard = Dashboard(client)
    await dashboard.sign_in(alice.email, "correct horse battery")
    for bad in (2**31, 2**63, -1):
        for path in (f"/dashboard/assistants/{bad}/logs", f"/dashboard/assistants/{assistant['id']}/logs/{bad}"):
            page = await dashboard.get(path)
            assert page.status_code == 404, path
            assert "text/html" in page.headers["content-type"]
        for path in (f"/dashboard/assistants/{assistant['id']}/users/{bad}/delete", f"/dashboard/tokens/{bad}/revoke"):
            assert (await dashboard.post(path)).status_code == 404, path


@pytest.mark.parametrize("user", ["2147483648", str(2**64), "-1", "0", "²", "١٢", "1.5", " 1"])
async def test_a_logs_filter_by_a_user_that_is_not_an_id_is_refused(client, alice: Person, user):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}"
    for path in ("/sessions", "/sessions.csv", "/sessions.jsonl"):
        assert_error(await alice.request("GET", base + path, params={"user": user}), 422, "invalid_request")


@pytest.mark.parametrize(
    "dates",
    [
        {"to": "9999-12-31"},
        {"from": "0000-01-01"},
        {"to": "9999-12-31T23:00:00-05:00"},
        {"from": "0001-01-01T00:00+01:00"},
    ],
)
async def test_dates_out_of_range_are_refused(client, alice: Person, dates):
    assistant = await alice.new_assistant()
    base = f"/api/v1/assistants/{assistant['id']}"
    for path in ("/sessions", "/sessions.csv", "/metrics"):
        assert_error(await alice.request("GET", base + path, params=dates), 422, "invalid_request")


NUL = "a\x00b"
LONE_SURROGATE = '"a\\ud800b"'  # JSON text: a valid escape for a character no database can store


def unstorable_json(body: dict, field: str) -> bytes:
    """`body` as JSON with `field` set to a lone surrogate (which Python's json module cannot write)."""
    return json.dumps({**body, field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', LONE_SURROGATE).encode()


def assert_names_field(response, field: str) -> None:
    assert_error(response, 422, "invalid_request")
    assert field in response.json()["error"]["message"], response.text


async def test_text_that_cannot_be_stored_is_refused_naming_the_field(client, alice: Person):
    assistant = await alice.new_assistant()
    public_id = assistant["public_id"]
    session = (await start(client, public_id=public_id)).json()
    guest = {"Authorization": f"Bearer {session['token']}"}
    cases = [
        ("POST", "/api/v1/chat/sessions", {"public_id": public_id}, "public_id", {}),
        ("POST", "/api/v1/chat/sessions", {"key": "ptk_x"}, "key", {}),
        ("POST", "/api/v1/chat/sessions", {"public_id": public_id, "origin": ""}, "origin", {}),
        ("POST", "/api/v1/chat/lookup", {"public_id": public_id}, "public_id", {}),
        ("POST", f"/api/v1/chat/sessions/{session['session_id']}/messages", {"content": ""}, "content", guest),
        ("POST", "/api/v1/assistants", {"name": ""}, "name", alice.auth),
        ("PATCH", f"/api/v1/assistants/{assistant['id']}", {"allowed_domains": ["x"]}, "allowed_domains", alice.auth),
        ("POST", f"/api/v1/assistants/{assistant['id']}/links", {"links": [{"name": ""}]}, "links.0.name", alice.auth),
    ]
    for method, path, body, field, headers in cases:
        *parents, leaf = field.split(".")
        with_nul = json.loads(json.dumps(body))
        target = with_nul
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        if isinstance(target[leaf], list):
            target[leaf] = [NUL]
        else:
            target[leaf] = NUL
        assert_names_field(await client.request(method, path, json=with_nul, headers=headers), field)
        if not parents and not isinstance(body[leaf], list):
            raw = unstorable_json(body, leaf)
            response = await client.request(
                method, path, content=raw, headers={**headers, "content-type": "application/json"}
            )
            assert_names_field(response, field)
    # The session is still there and saw nothing.
    state = await client.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=guest)
    assert state.json()["messages"] == []


async def test_openai_compatible_requests_with_unstorable_or_non_text_content_are_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    body = {"model": assistant["public_id"], "messages": [{"role": "user", "content": "Hi"}]}
    url = "/v1/chat/completions"
    assert_error(await client.post(url, json={**body, "model": NUL}), 422, "invalid_request")
    nul_content = {**body, "messages": [{"role": "user", "content": NUL}]}
    assert_names_field(await client.post(url, json=nul_content), "content")
    for part in ({"type": "text", "text": 5}, {"type": "text", "text": None}, {"type": "text", "text": ["a"]}):
        response = await client.post(url, json={**body, "messages": [{"role": "user", "content": [part]}]})
        assert_names_field(response, "text")
    part = {"type": "text", "text": NUL}
    assert_names_field(await client.post(url, json={**body, "messages": [{"role": "user", "content": [part]}]}), "text")


async def test_query_and_path_text_that_cannot_be_stored_is_refused(client, alice: Person):
    assistant = await alice.new_assistant()
    sessions = f"/api/v1/assistants/{assistant['id']}/sessions"
    for name in ("q", "channel", "cursor", "from"):
        assert_names_field(await alice.request("GET", sessions, params={name: NUL}), name)
    assert_names_field(
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics?bucket=a%00"), "bucket"
    )
    page = await client.get("/c/a%00b")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert (await client.get(f"/c/{assistant['public_id']}")).status_code == 200


async def test_form_fields_that_cannot_be_stored_are_refused(app, client, alice: Person):
    from tests.dashboard_helpers import Dashboard

    dashboard = Dashboard(client)
    refused = await dashboard.post("/dashboard/sign-in", {"email": f"alice{NUL}@example.com", "password": "x"})
    assert refused.status_code == 422 and "email" in refused.text
    await dashboard.sign_in(alice.email, "correct horse battery")
    for path, data, field in [
        ("/dashboard/tokens", {"name": NUL}, "name"),
        ("/dashboard/assistants", {"name": NUL}, "name"),
    ]:
        response = await dashboard.post(path, data)
        assert response.status_code == 422, (path, response.text)
        assert field in response.text
    tokens = (await dashboard.get("/dashboard/tokens")).text
    assert NUL not in tokens


@pytest.mark.sqlite_only  # refused before any statement
async def test_a_json_body_that_is_not_utf8_is_malformed(client, alice: Person):
    for raw in (b'{"name": "\xff\xfe"}', b"\xc3\x28", b'{"name": "caf\xe9"}'):
        response = await alice.request(
            "POST", "/api/v1/assistants", content=raw, headers={"content-type": "application/json"}
        )
        assert_error(response, 400, "malformed_json")
    assert (await alice.request("GET", "/api/v1/assistants")).json()["items"] == []


@pytest.mark.sqlite_only  # refused before any statement
async def test_a_refusal_lists_at_most_twenty_problems(client, alice: Person):
    assistant = await alice.new_assistant()
    links = [{"name": "", "max_sessions": -1} for _ in range(50)]
    response = await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/links", json={"links": links})
    assert_error(response, 422, "invalid_request")
    error = response.json()["error"]
    assert len(error["details"]) == 20
    assert "100 problems in all" in error["message"]


def test_the_connection_stays_usable_after_every_kind_of_error(settings, shared_server):
    """On a real server: each refusal is answered on the same keep-alive connection, and the
    next request on it is served."""
    import asyncio
    import http.client

    from tests.conftest import make_person

    async def owner_token() -> str:
        from portico.app import create_app

        app = create_app(settings)
        async with app.router.lifespan_context(app):
            return (await make_person(app, None, "alice@example.com")).token  # type: ignore[arg-type]

    token = asyncio.run(owner_token())
    auth = {"Authorization": f"Bearer {token}"}
    json_type = {"content-type": "application/json", **auth}
    bad_requests = [
        ("GET", f"/api/v1/assistants/{2**63}", None, auth, 404),
        ("GET", "/api/v1/assistants/-1", None, auth, 404),
        ("POST", "/api/v1/chat/lookup", b'{"public_id": "a\\u0000b"}', json_type, 422),
        ("POST", "/api/v1/chat/sessions", b'{"public_id": "\\ud800"}', json_type, 422),
        ("POST", "/api/v1/assistants", b'{"name": "\xff"}', json_type, 400),
        ("POST", "/api/v1/assistants", b'{"name": ', json_type, 400),
        ("GET", "/c/a%00b", None, {}, 404),
        ("GET", "/api/v1/nothing", None, {}, 404),
        ("GET", "/api/v1/assistants", None, {}, 401),
        ("POST", "/api/v1/assistants", b"{" + b" " * (1024 * 1024) + b"}", json_type, 413),
    ]
    url = shared_server().url
    conn = http.client.HTTPConnection(url.removeprefix("http://"), timeout=10)
    conn.connect()
    sock = conn.sock
    for method, path, body, headers, status in bad_requests:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == status, (method, path, response.status)
        assert conn.sock is sock, f"the connection was closed after {method} {path}"
        conn.request("GET", "/api/v1/assistants", headers=auth)
        after = conn.getresponse()
        assert after.status == 200 and json.loads(after.read()) == {"items": []}
        assert conn.sock is sock
    conn.close()
