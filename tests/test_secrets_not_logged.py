"""Keys, session tokens and API tokens never reach a log line, in-process or in a real server."""

from __future__ import annotations

import logging

import httpx

from tests.conftest import Person, key_of, make_person, start


async def scenario(http: httpx.AsyncClient, owner: Person) -> list[str]:
    """Everything a day of use does; returns every secret it saw."""
    secrets = [owner.token]
    assistant = await owner.new_assistant(share="private")
    base = f"/api/v1/assistants/{assistant['id']}"
    links = await owner.new_links(assistant["id"], 1, 0, 2)
    secrets += [key_of(link) for link in links]
    for link in links:
        session = (await start(http, key=key_of(link))).json()
        secrets.append(session["token"])
        headers = {"Authorization": f"Bearer {session['token']}"}
        await http.get(f"/api/v1/chat/sessions/{session['session_id']}", headers=headers)
        await http.post(f"/api/v1/chat/sessions/{session['session_id']}/end", headers=headers)
    await start(http, key=key_of(links[0]))  # exhausted
    reissued = (await owner.request("POST", f"{base}/links/{links[1]['id']}/reissue")).json()
    secrets.append(key_of(reissued))
    await start(http, key=key_of(links[1]))  # the old key: invalid
    await owner.request("DELETE", f"{base}/links/{links[2]['id']}")
    await start(http, key=key_of(links[2]))  # revoked
    await owner.request("PATCH", base, json={"engine": {"type": "openai", "api_key": "sk-upstream-secret-123"}})
    secrets.append("sk-upstream-secret-123")
    await http.get("/api/v1/assistants", headers={"Authorization": "Bearer pto_" + "x" * 43})
    await owner.request("PUT", f"{base}/status", json={"status": "offline"})
    await start(http, key=key_of(reissued))  # offline
    return secrets


async def test_no_secret_reaches_the_logs_in_process(client, alice: Person, caplog):
    caplog.set_level(logging.DEBUG)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.DEBUG)
    try:
        secrets = await scenario(client, alice)
    finally:
        logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logged = "\n".join(f"{r.getMessage()} {r.args!r} {r.exc_text or ''}" for r in caplog.records)
    assert "UPDATE private_links" in logged, "SQL was not captured: the test would prove nothing"
    for secret in secrets:
        assert secret not in logged
        assert secret[4:20] not in logged


async def test_no_secret_reaches_a_real_servers_output(shared_server, app):
    served = shared_server(PORTICO_LOG_LEVEL="debug", PORTICO_ACCESS_LOG="true")
    async with httpx.AsyncClient(base_url=served.url) as http:
        owner = await make_person(app, http, "carol@example.com")
        secrets = await scenario(http, owner)
    output = served.log.read_text()
    assert "POST /api/v1/chat/sessions" in output, "access log was not captured"
    for secret in secrets:
        assert secret not in output
        assert secret[4:20] not in output
