"""An owner sees and touches only their own assistants: someone else's answer 404."""

from __future__ import annotations

from tests.conftest import Person, start


async def test_another_owner_gets_404_on_every_assistant_route(client, app, alice: Person, bob: Person):
    assistant = await alice.new_assistant()
    (link,) = await alice.new_links(assistant["id"], 0)
    a = "/api/v1/assistants/{assistant_id}"
    link_path = a + "/links/{link_id}"
    templates = [
        ("GET", a, None),
        ("PATCH", a, {"name": "Mine now"}),
        ("DELETE", a, None),
        ("POST", f"{a}/publish", None),
        ("GET", f"{a}/versions", None),
        ("PUT", f"{a}/status", {"status": "offline"}),
        ("PUT", f"{a}/share", {"mode": "private"}),
        ("POST", f"{a}/public-link/rotate", None),
        ("POST", f"{a}/widget-id/rotate", None),
        ("GET", f"{a}/links", None),
        ("POST", f"{a}/links", {"links": [{"name": "x", "max_sessions": 0}]}),
        ("PATCH", link_path, {"name": "x"}),
        ("DELETE", link_path, None),
        ("POST", f"{link_path}/reissue", None),
        ("POST", f"{link_path}/reset", None),
        ("GET", f"{link_path}/qr", None),
        ("GET", f"{a}/public-link/qr", None),
        ("POST", f"{a}/links/bulk", {"ids": [1], "action": "pause"}),
        ("GET", f"{a}/sessions", None),
        ("GET", f"{a}/sessions/{{session_id}}", None),
        ("GET", f"{a}/sessions.csv", None),
        ("GET", f"{a}/sessions.jsonl", None),
        ("GET", f"{a}/metrics", None),
        ("GET", f"{a}/unanswered", None),
        ("GET", f"{a}/draft/diff", None),
        ("POST", f"{a}/duplicate", None),
        ("GET", f"{a}/documents", None),
        ("POST", f"{a}/documents", None),
        ("GET", f"{a}/documents/{{document_id}}", None),
        ("PUT", f"{a}/documents/{{document_id}}", None),
        ("DELETE", f"{a}/documents/{{document_id}}", None),
        ("GET", f"{a}/documents/{{document_id}}/original", None),
    ]
    routes = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(a)
        for method in operations
    }
    assert routes <= {(m, p) for m, p, _ in templates}, "a route is missing from this test"
    session = (await start(client, public_id=assistant["public_id"])).json()
    documents = f"/api/v1/assistants/{assistant['id']}/documents"
    uploaded = await alice.request("POST", documents, files={"files": ("Notes.md", b"# A\n\nB.")})
    assistant = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()
    ids = {
        "assistant_id": assistant["id"],
        "link_id": link["id"],
        "session_id": session["session_id"],
        "document_id": uploaded.json()["documents"][0]["id"],
    }
    calls = [(m, p.format(**ids), body) for m, p, body in templates]

    for method, path, body in calls:
        response = await bob.request(method, path, json=body)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["code"] == "not_found"

    assert (await bob.request("GET", "/api/v1/assistants")).json()["items"] == []
    path = a.format(**ids)
    assert (await alice.request("GET", path)).json() == assistant
    assert (await alice.request("GET", f"{path}/links")).json()["items"] == [link]


async def test_a_link_of_another_assistant_answers_404(client, alice: Person):
    first = await alice.new_assistant()
    second = await alice.new_assistant()
    (link,) = await alice.new_links(second["id"], 0)
    response = await alice.request("DELETE", f"/api/v1/assistants/{first['id']}/links/{link['id']}")
    assert response.status_code == 404
