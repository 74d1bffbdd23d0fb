"""The widget id: an embed that survives rotating the public link, and a key that survives every rotation."""

from __future__ import annotations

import html

from sqlalchemy import text

from portico.db import make_engine
from portico.migrations.run import downgrade_connection, upgrade_connection
from tests.conftest import Person, key_of, start
from tests.test_dashboard_pages import web  # noqa: F401 (fixture)
from tests.test_gate import refused
from tests.test_migrations import ASSISTANT, OWNER, migrate


def base(assistant: dict) -> str:
    return f"/api/v1/assistants/{assistant['id']}"


async def lookup(client, **body: object):
    return await client.post("/api/v1/chat/lookup", json=body)


async def test_an_assistant_has_a_widget_id_of_its_own_in_the_embed_code(web, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    assert assistant["widget_id"] and assistant["widget_id"] != assistant["public_id"]
    page = html.unescape((await web.get(f"/dashboard/assistants/{assistant['id']}/share")).text)
    assert f'data-assistant="{assistant["widget_id"]}"' in page
    assert f'data-assistant="{assistant["public_id"]}"' not in page


async def test_rotating_the_public_link_leaves_the_widget_working(client, alice: Person):
    assistant = await alice.new_assistant()
    rotated = (await alice.request("POST", f"{base(assistant)}/public-link/rotate")).json()
    assert rotated["public_id"] != assistant["public_id"]
    assert rotated["widget_id"] == assistant["widget_id"]

    refused(await start(client, public_id=assistant["public_id"]), 404, "not_found")
    assert (await lookup(client, widget_id=assistant["widget_id"])).status_code == 200
    started = await start(client, widget_id=assistant["widget_id"])
    assert started.status_code == 201, started.text
    frame = await client.get(f"/c/{assistant['widget_id']}?embed=1")
    assert frame.status_code == 200 and f'data-widget-id="{assistant["widget_id"]}"' in frame.text


async def test_rotating_the_widget_id_breaks_old_snippets_only(client, alice: Person):
    assistant = await alice.new_assistant()
    rotated = (await alice.request("POST", f"{base(assistant)}/widget-id/rotate")).json()
    assert rotated["widget_id"] != assistant["widget_id"]
    assert rotated["public_id"] == assistant["public_id"]

    refused(await start(client, widget_id=assistant["widget_id"]), 404, "not_found")
    assert (await client.get(f"/c/{assistant['widget_id']}?embed=1")).status_code == 404
    assert (await start(client, widget_id=rotated["widget_id"])).status_code == 201
    assert (await start(client, public_id=assistant["public_id"])).status_code == 201


async def test_the_frame_is_named_by_the_widget_id_and_the_page_by_the_public_id(client, alice: Person):
    assistant = await alice.new_assistant()
    assert (await client.get(f"/c/{assistant['public_id']}?embed=1")).status_code == 404
    assert (await client.get(f"/c/{assistant['widget_id']}")).status_code == 404
    assert (await client.get(f"/c/{assistant['public_id']}")).status_code == 200


async def test_a_widget_id_starts_a_widget_session(client, alice: Person):
    assistant = await alice.new_assistant()
    session = (await start(client, widget_id=assistant["widget_id"])).json()
    logged = (await alice.request("GET", f"{base(assistant)}/sessions")).json()["items"]
    assert [(item["id"], item["channel"]) for item in logged] == [(session["session_id"], "widget")]
    wrong = await start(client, widget_id=assistant["widget_id"], channel="link")
    assert wrong.status_code == 422
    both = await start(client, widget_id=assistant["widget_id"], public_id=assistant["public_id"])
    assert both.status_code == 422


async def test_allowed_domains_hold_for_a_widget_id(client, alice: Person):
    assistant = await alice.new_assistant()
    await alice.request("PATCH", base(assistant), json={"allowed_domains": ["shop.example.com"]})
    refused(
        await start(client, widget_id=assistant["widget_id"], origin="https://evil.example"), 403, "origin_not_allowed"
    )
    assert (await start(client, widget_id=assistant["widget_id"], origin="https://shop.example.com")).status_code == 201


async def test_a_key_finds_its_assistant_through_every_rotation(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    await alice.request("POST", f"{base(assistant)}/public-link/rotate")
    await alice.request("POST", f"{base(assistant)}/widget-id/rotate")
    stale = {"public_id": assistant["public_id"]}, {"widget_id": assistant["widget_id"]}
    for given in stale:
        found = await lookup(client, key=key_of(link), **given)
        assert found.status_code == 200, (given, found.text)
        started = await start(client, key=key_of(link), **given)
        assert started.status_code == 201, (given, started.text)


async def test_a_key_beside_another_assistant_s_id_is_still_invalid(client, alice: Person):
    first = await alice.new_assistant()
    second = await alice.new_assistant()
    (link,) = await alice.new_links(second["id"], 0)
    refused(await start(client, key=key_of(link), widget_id=first["widget_id"]), 403, "link_invalid")
    refused(await lookup(client, key=key_of(link), public_id=first["public_id"]), 403, "link_invalid")


async def test_a_stale_id_with_an_unknown_key_is_not_found(client, alice: Person):
    refused(await start(client, key="ptk_" + "A" * 43, widget_id="gone"), 404, "not_found")


async def test_existing_embeds_keep_working_after_the_migration(database_url):
    """0008 makes each assistant's public id its first widget id: the snippets already pasted name it."""
    engine = make_engine(database_url)
    try:
        await migrate(engine, downgrade_connection, "0007")
        before_widget_ids = ASSISTANT.replace("widget_id, ", "").replace("'wid', ", "")
        async with engine.begin() as conn:
            owner = (await conn.execute(text(OWNER))).scalar_one()
            await conn.execute(text(before_widget_ids), {"owner": owner})
        await migrate(engine, upgrade_connection, "head")
        async with engine.connect() as conn:
            rows = (await conn.execute(text("SELECT public_id, widget_id FROM assistants"))).all()
        assert [tuple(row) for row in rows] == [("pub", "pub")]
    finally:
        await engine.dispose()


async def test_the_share_page_rotates_the_widget_id_with_a_warning(web, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    share = f"/dashboard/assistants/{assistant['id']}/share"
    page = html.unescape((await web.get(share)).text)
    assert "Every website that embeds this assistant stops showing it until its snippet is updated" in page
    assert "Private links and embedded widgets are not affected" in page
    rotated = await web.post(f"/dashboard/assistants/{assistant['id']}/widget-id/rotate")
    assert rotated.status_code == 303
    now = (await alice.request("GET", base(assistant))).json()
    assert now["widget_id"] != assistant["widget_id"] and now["public_id"] == assistant["public_id"]
    assert f'data-assistant="{now["widget_id"]}"' in html.unescape((await web.get(share)).text)
