"""The Share page's QR codes, print sheet, Users table (filter, sort, rename, bulk) and the bugs the
walk-through hit (blank caps, binary CSV files, batches that lost what was typed), over HTTP as a
browser without JavaScript would, on both databases. The browser walk is test_browser_share_walk.py."""

from __future__ import annotations

import html
import re

from tests.conftest import Person, key_of, make_person
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.test_dashboard_pages import web  # noqa: F401 (fixture)

SVG = "image/svg+xml"


def links_path(assistant: dict, suffix: str = "") -> str:
    return f"/api/v1/assistants/{assistant['id']}/links{suffix}"


async def names(alice: Person, assistant: dict) -> list[str]:
    return [link["name"] for link in (await alice.request("GET", links_path(assistant))).json()["items"]]


def text(response) -> str:  # type: ignore[no-untyped-def]
    return html.unescape(response.text)


def autofocused(page: str) -> list[str]:
    """The ids of the fields that take the focus when the page loads."""
    return re.findall(r'<(?:input|textarea|select)[^>]*\bid="([^"]+)"[^>]*\bautofocus', page)


# QR codes ---------------------------------------------------------------------------------------


async def test_every_link_has_a_qr_code_for_its_owner_only_and_never_cached(app, client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    first, second = await alice.new_links(assistant["id"], 0, 3)
    qr = await alice.request("GET", links_path(assistant, f"/{first['id']}/qr"))
    assert qr.status_code == 200 and qr.headers["content-type"] == SVG
    assert qr.headers["cache-control"] == "no-store"
    assert qr.text.startswith("<svg") and "<path" in qr.text
    other = await alice.request("GET", links_path(assistant, f"/{second['id']}/qr"))
    assert other.text != qr.text
    public = await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/public-link/qr")
    assert public.status_code == 200 and public.headers["content-type"] == SVG
    assert public.headers["cache-control"] == "no-store"

    # No token: 401; another owner: 404, exactly like a link that does not exist.
    assert (await client.get(links_path(assistant, f"/{first['id']}/qr"))).status_code == 401
    bob = await make_person(app, client, "bob@example.com")
    for path in (links_path(assistant, f"/{first['id']}/qr"), f"/api/v1/assistants/{assistant['id']}/public-link/qr"):
        assert (await bob.request("GET", path)).status_code == 404
    assert (await alice.request("GET", links_path(assistant, "/999999/qr"))).status_code == 404


async def test_a_deleted_link_has_no_qr_code(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    assert (await alice.request("DELETE", links_path(assistant, f"/{link['id']}"))).status_code == 204
    gone = await alice.request("GET", links_path(assistant, f"/{link['id']}/qr"))
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "not_found"
    assert "deleted" in gone.json()["error"]["message"]
    page = await web.get(f"/dashboard/assistants/{assistant['id']}/users/{link['id']}/qr.svg")
    assert page.status_code == 404


async def test_the_share_page_shows_the_qr_codes_by_link_id_never_by_key(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    base = f"/dashboard/assistants/{assistant['id']}"
    page = (await web.get(f"{base}/share")).text
    assert f"{base}/users/{link['id']}/qr.svg?download=1" in page
    # The key is in the page (the link to copy) but in no address the page makes the browser fetch.
    fetched = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert fetched and not [url for url in fetched if key_of(link) in url]
    download = await web.get(f"{base}/users/{link['id']}/qr.svg?download=1")
    assert download.status_code == 200 and download.headers["content-type"] == SVG
    assert download.headers["cache-control"] == "no-store"
    assert download.headers["content-disposition"] == f'attachment; filename="portico-link-{link["id"]}-qr.svg"'
    public = await web.get(f"{base}/public-link/qr.svg")
    assert public.status_code == 200 and public.headers["cache-control"] == "no-store"


# The print sheet --------------------------------------------------------------------------------


async def test_the_print_sheet_has_one_card_per_selected_user(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    links = await alice.new_links(assistant["id"], 0, 0, 0)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    sheet = await web.post(f"{base}/users/bulk", {"action": "print", "ids": [links[0]["id"], links[2]["id"]]})
    assert sheet.status_code == 200 and sheet.headers["cache-control"] == "no-store"
    assert sheet.text.count("<svg") == 2
    page = text(sheet)
    assert "User 1" in page and "User 3" in page and "User 2" not in page
    assert links[0]["url"] in page and links[2]["url"] in page and links[1]["url"] not in page
    assert "print.css" in page
    # Printing changed nothing.
    assert [link["state"] for link in (await alice.request("GET", links_path(assistant))).json()["items"]] == [
        "active"
    ] * 3


async def test_printing_no_user_says_to_select_one(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    await alice.new_links(assistant["id"], 0)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    refused = await web.post(f"{base}/users/bulk", {"action": "print"})
    assert refused.status_code == 422
    assert "Select at least one user first." in text(refused)
    assert autofocused(refused.text) == ["bulk-action"]


async def test_a_sheet_of_50_users_with_200_character_names_renders(web: Dashboard, alice: Person, settings):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    count = min(50, settings.max_private_links)
    body = {"links": [{"name": f"{i:03d}" + "N" * 197} for i in range(count)]}
    created = (await alice.request("POST", links_path(assistant), json=body)).json()["items"]
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    sheet = await web.post(f"{base}/users/bulk", {"action": "print", "ids": [link["id"] for link in created]})
    assert sheet.status_code == 200
    assert sheet.text.count("<svg") == count == 50
    assert all(link["name"] in sheet.text for link in created)


# The Users table --------------------------------------------------------------------------------


async def test_the_users_table_filters_by_name_and_sorts_without_javascript(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    body = {"links": [{"name": n} for n in ("Charlie", "alice", "Bob", "Alina")]}
    await alice.request("POST", links_path(assistant), json=body)
    share = f"/dashboard/assistants/{assistant['id']}/share"

    def rows(page: str) -> list[str]:
        return re.findall(r'<td class="strong user-name" title="([^"]+)"', page)

    assert rows((await web.get(share)).text) == ["Charlie", "alice", "Bob", "Alina"]
    by_name = (await web.get(share, params={"sort": "name"})).text
    assert rows(by_name) == ["alice", "Alina", "Bob", "Charlie"]
    # The Name heading now sorts the other way, from the Share page's own address (also after a refused POST).
    assert f'href="{share}?sort=-name&amp;q=#users"' in by_name and 'aria-sort="ascending"' in by_name
    assert rows((await web.get(share, params={"sort": "-name"})).text) == ["Charlie", "Bob", "Alina", "alice"]
    assert rows((await web.get(share, params={"q": "ALI"})).text) == ["alice", "Alina"]
    nothing = await web.get(share, params={"q": "zed", "sort": "nonsense"})
    assert nothing.status_code == 200 and rows(nothing.text) == []
    assert "No user's name contains “zed”." in text(nothing)


async def test_deleted_links_show_on_request_with_their_badge(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    kept, deleted = await alice.new_links(assistant["id"], 0, 0)
    await alice.request("DELETE", links_path(assistant, f"/{deleted['id']}"))
    share = f"/dashboard/assistants/{assistant['id']}/share"
    assert "User 2" not in (await web.get(share)).text
    shown = (await web.get(share, params={"deleted": "1"})).text
    assert "User 2" in shown and '<span class="badge off">Deleted</span>' in shown
    assert deleted["url"] not in shown


async def test_a_link_is_renamed_from_its_row_and_a_blank_name_is_explained_there(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    renamed = await web.post(f"{base}/users/{link['id']}/rename", {"name": "Smith, John"})
    assert renamed.status_code == 303 and renamed.headers["location"].endswith("?done=renamed#users")
    assert await names(alice, assistant) == ["Smith, John"]
    blank = await web.post(f"{base}/users/{link['id']}/rename", {"name": "   "})
    assert blank.status_code == 422
    assert "Smith, John was not renamed" in text(blank)
    assert autofocused(blank.text) == [f"name-{link['id']}"]
    assert await names(alice, assistant) == ["Smith, John"]


async def test_a_refused_cap_is_shown_beside_its_row_with_what_was_typed(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 4)
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    refused = await web.post(f"{base}/users/{link['id']}/cap", {"max_sessions": "-7"})
    assert refused.status_code == 422
    field = re.search(rf'<input id="cap-{link["id"]}"[^>]*>', refused.text)
    assert field and 'value="-7"' in field.group(0) and 'aria-invalid="true"' in field.group(0)
    assert f'id="cap-{link["id"]}-error"' in refused.text
    assert autofocused(refused.text) == [f"cap-{link['id']}"]


# Creating users ---------------------------------------------------------------------------------


async def test_a_blank_cap_on_a_new_user_is_an_error_naming_the_user(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    refused = await web.post(f"{base}/users", {"name": "Room 12", "max_sessions": ""})
    assert refused.status_code == 422
    assert "Enter the maximum sessions for Room 12" in text(refused)
    assert 'value="Room 12"' in refused.text and autofocused(refused.text) == ["user-max"]
    assert await names(alice, assistant) == []
    batch = await web.post(f"{base}/users/batch", {"names": "Ann\nBo", "max_sessions": " "})
    assert batch.status_code == 422 and "maximum sessions for each new user" in text(batch)
    assert await names(alice, assistant) == []


async def test_a_batch_reports_every_bad_line_and_keeps_the_box(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    typed = "Smith, John\nAnn,-1\n" + "x" * 201 + "\nBo,2.5\nCy, 3"
    refused = await web.post(f"{base}/users/batch", {"names": typed, "max_sessions": "0"})
    assert refused.status_code == 422
    page = text(refused)
    assert "3 lines to fix, nothing was created." in page
    for line in ("Line 2: the cap must be a whole number", "Line 3: the name has more than 200", "Line 4: the cap"):
        assert line in page
    assert "Line 1" not in page and "Line 5" not in page
    assert f">{typed}</textarea>" in page and autofocused(refused.text) == ["names"]
    assert await names(alice, assistant) == []

    made = await web.post(f"{base}/users/batch", {"names": 'Smith, John\nCy, 3\n"Lee, Bo",2', "max_sessions": "5"})
    assert made.status_code == 303
    items = (await alice.request("GET", links_path(assistant))).json()["items"]
    assert [(i["name"], i["max_sessions"]) for i in items] == [("Smith, John", 5), ("Cy", 3), ("Lee, Bo", 2)]


async def test_a_binary_or_non_utf8_file_of_names_is_refused(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    for content, sentence in (
        (b"\x00\x00garbage\x00\x01\x02\nBob\n", "looks like a binary file"),
        ("Zoë\nJosé\n".encode("latin-1"), "not text in UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "not text in UTF-8"),
    ):
        refused = await web.post(
            f"{base}/users/batch",
            {"names": "", "max_sessions": "0"},
            files={"names_file": ("names.csv", content, "text/csv")},
        )
        assert refused.status_code == 422, content
        assert sentence in text(refused)
        assert autofocused(refused.text) == ["names_file"]
    assert await names(alice, assistant) == []
    made = await web.post(
        f"{base}/users/batch",
        {"names": "", "max_sessions": "0"},
        files={"names_file": ("names.csv", "\ufeffname,max_sessions\nZoë,2\n".encode(), "text/csv")},
    )
    assert made.status_code == 303 and await names(alice, assistant) == ["Zoë"]


async def test_the_private_embed_code_says_visitors_without_a_key_see_private(web: Dashboard, alice: Person):  # noqa: F811
    public = await alice.new_assistant()
    private = await alice.new_assistant(share="private")
    assert 'id="embed-private"' not in (await web.get(f"/dashboard/assistants/{public['id']}/share")).text
    page = text(await web.get(f"/dashboard/assistants/{private['id']}/share"))
    assert "see “This assistant is private” unless the snippet carries a user's key" in page
    assert 'add <code>data-key="ptk_…"</code>' in page


async def test_another_owner_cannot_print_or_see_the_qr_codes(app, alice: Person):
    assistant = await alice.new_assistant(share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    async with dashboard_client(app) as http:
        bob_web = Dashboard(http)
        await make_person(app, http, "bob@example.com")
        await bob_web.sign_in("bob@example.com", "correct horse battery")
        base = f"/dashboard/assistants/{assistant['id']}"
        assert (await bob_web.get(f"{base}/users/{link['id']}/qr.svg")).status_code == 404
        assert (await bob_web.get(f"{base}/public-link/qr.svg")).status_code == 404
        printed = await bob_web.post(f"{base}/users/bulk", {"action": "print", "ids": [link["id"]]})
        assert printed.status_code == 404 and key_of(link) not in printed.text


async def test_refused_public_link_forms_focus_their_field_and_keep_the_date(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    short = await web.post(f"{base}/access-code", {"access_code": "abc"})
    assert short.status_code == 422 and autofocused(short.text) == ["access_code"]
    assert 'value="abc"' not in short.text  # a code is never written back into a page
    bad_date = await web.post(f"{base}/public-link/expiry", {"expires_on": "31/12/2026"})
    assert bad_date.status_code == 422 and autofocused(bad_date.text) == ["public_expires_on"]
    assert 'value="31/12/2026"' in bad_date.text
    domains = await web.post(f"{base}/domains", {"allowed_domains": "not a domain!"})
    assert domains.status_code == 422 and autofocused(domains.text) == ["allowed_domains"]


# Bulk actions and names that repeat (issue 21, item 9) ---------------------------------------------


async def test_a_bulk_action_reports_what_it_did_and_to_how_many(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    links = await alice.new_links(assistant["id"], 0, 0, 0, 0)
    base = f"/dashboard/assistants/{assistant['id']}"
    page = (await web.get(f"{base}/share")).text
    assert 'data-confirm="Pause {n} link{s}?' in page and "Apply this to the selected users?" not in page
    three = [str(link["id"]) for link in links[:3]]
    paused = await web.http.post(
        f"{base}/users/bulk", data={"csrf": web.csrf, "action": "pause", "ids": three}, headers={"Accept": "text/html"}
    )
    assert paused.status_code == 303
    shown = text(await web.get(paused.headers["location"]))
    assert '<div class="flash" role="status">3 links paused.</div>' in shown
    assert "Done for the selected users" not in shown
    one = await web.post(f"{base}/users/bulk", {"action": "delete", "ids": str(links[3]["id"])})
    assert '<div class="flash" role="status">1 link deleted.</div>' in text(await web.get(one.headers["location"]))


async def test_a_batch_with_repeated_names_asks_first_and_each_link_shows_its_number(web: Dashboard, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant()
    (existing,) = await alice.new_links(assistant["id"], 0)  # "User 1"
    base = f"/dashboard/assistants/{assistant['id']}"
    await web.get(f"{base}/share")
    asked = await web.post(f"{base}/users/batch", {"names": "Group A\ngroup a\nuser 1\nGroup B", "max_sessions": "0"})
    assert asked.status_code == 409
    said = text(asked)
    assert "These names are already in use or appear twice: “group a”, “user 1”." in said
    assert 'name="duplicates"' in said and autofocused(asked.text) == ["names"]
    assert await names(alice, assistant) == ["User 1"]  # nothing made yet
    made = await web.post(
        f"{base}/users/batch", {"names": "Group A\ngroup a\nuser 1\nGroup B", "max_sessions": "0", "duplicates": "1"}
    )
    assert made.status_code == 303
    assert sorted(await names(alice, assistant)) == ["Group A", "Group B", "User 1", "group a", "user 1"]
    page = text(await web.get(made.headers["location"]))
    items = (await alice.request("GET", links_path(assistant))).json()["items"]
    for item in items:  # every row and every new link says its number, which tells the same names apart
        assert f'<span class="link-id">#{item["id"]} · created ' in page
    assert page.count('<span class="link-id">#') == len(items) + 4
    assert existing["id"] in {item["id"] for item in items}
