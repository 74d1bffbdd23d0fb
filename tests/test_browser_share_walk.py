"""The owner walks through the Share page in a real browser, against a real `portico serve`, on
SQLite: the widget on another origin keeps answering after the public link is rotated from the
dashboard; an access code set there is asked of a guest; users made in the batch box ("Smith, John"
is one name) are paused and resumed from their rows, one is ended by a date; the print sheet of the
selected users shows one QR code each, and each decodes (zxing-cpp, from a screenshot) to its link.

What the other browser tests already cover (the access code's prompt and tab memory, a paused link's
sentence set through the API, a widget through every rotation) is not repeated: each step here is
the owner's, through the dashboard, with the guest's side checked once."""

from __future__ import annotations

import io
from datetime import date, timedelta

import zxingcpp
from PIL import Image
from playwright.async_api import expect

from portico.vocabulary import REFUSAL_MESSAGES, Refusal
from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.conftest import Person
from tests.test_browser_dashboard import (  # noqa: F401  (fixtures)
    DESKTOP,
    PASSWORD,
    db_name,
    flash,
    owner_page,
    server,
    shot,
)
from tests.test_browser_widget import (  # noqa: F401  (fixtures)
    ARTICLE,
    LIBRARY_GREETING,
    LIBRARY_KNOWLEDGE,
    SATURDAY,
    chat_frame,
    host_sites,
    new_page,
    wait_panel,
    widget_tag,
)
from tests.test_browser_widget import ask as ask_frame

CODE = "river 2026"


async def sign_in(page, server: str, email: str) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{server}/dashboard/sign-in")
    await page.locator("#email").fill(email)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("button[type=submit]").click()
    await expect(page).to_have_url(f"{server}/dashboard")


async def guest_notice(browser, url: str) -> str:  # type: ignore[no-untyped-def]
    """What a guest opening `url` in a fresh browser is told (or '' when the chat is ready)."""
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    await page.goto(url)
    # Ready (the greeting shows) or refused (the notice shows), whichever the lookup brings.
    await page.wait_for_function(
        "() => !document.getElementById('notice').hidden || document.querySelector('#log li.msg.assistant')"
    )
    notice = await page.locator("#notice").inner_text() if await page.locator("#notice").is_visible() else ""
    await context.close()
    return notice.strip()


def row(page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("table.users tbody tr").filter(has=page.locator(f'td.user-name[title="{name}"]'))


async def test_the_owner_walks_through_sharing_and_prints_the_links(
    browser, server, alice: Person, host_sites, db_name
):
    assistant = await alice.new_assistant(
        name="Riverside Library", greeting=LIBRARY_GREETING, knowledge=LIBRARY_KNOWLEDGE
    )
    context, page, dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await sign_in(page, server, alice.email)
    share = f"{server}/dashboard/assistants/{assistant['id']}/share"
    await page.goto(share)

    # 1. Rotate the public link from the dashboard: the old one stops, the widget on another site answers.
    await page.get_by_role("button", name="Rotate public link").click()
    await flash(page, "Embedded widgets keep working.")
    assert "Private links and embedded widgets are not affected" in dialogs[-1]
    new_url = await page.locator("#public-url").input_value()
    assert new_url != f"{server}/c/{assistant['public_id']}"
    assert await guest_notice(browser, f"{server}/c/{assistant['public_id']}") != ""
    site_context, site = await new_page(browser)
    await site.goto(host_sites().page("/", ARTICLE + widget_tag(server, assistant, title="Library", open=None)))
    frame = await chat_frame(site, assistant["widget_id"])
    await wait_panel(frame, open_=True)
    await expect(frame.locator("#log li.msg.assistant").first).to_contain_text(LIBRARY_GREETING)
    assert SATURDAY in await ask_frame(frame, "When are you open on Saturdays?", replies=2)
    await site_context.close()

    # 2. Set an access code in the dashboard: a guest of the public link is asked for it.
    await page.locator("#access_code").fill(CODE)
    await page.get_by_role("button", name="Set code").click()
    await flash(page, "Access code saved.")
    assert await guest_notice(browser, new_url) == REFUSAL_MESSAGES[Refusal.ACCESS_CODE_REQUIRED]

    # 3. Users from the batch box; "Smith, John" is one name.
    await page.get_by_text("Create users").click()
    await page.locator("#names").fill("Smith, John\nAnn Lee, 2\nCy")
    await page.get_by_role("button", name="Create links").click()
    await expect(page.locator("#new-title")).to_have_text("3 new links")
    links = {
        item["name"]: item
        for item in (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"]
    }
    assert sorted(links) == ["Ann Lee", "Cy", "Smith, John"] and links["Ann Lee"]["max_sessions"] == 2
    # The links as the dashboard shows them (the API client here has another base URL).
    urls = {name: await row(page, name).locator("input.mono").input_value() for name in links}
    assert all(url.startswith(f"{server}/c#k=ptk_") for url in urls.values())

    # 4. Pause from the row: the guest is told it is paused; resume: the guest chats.
    await row(page, "Smith, John").get_by_text("Manage").click()
    await row(page, "Smith, John").get_by_role("button", name="Pause").click()
    await flash(page, "Link paused")
    await expect(row(page, "Smith, John").locator(".badge")).to_have_text("Paused")
    assert await guest_notice(browser, urls["Smith, John"]) == REFUSAL_MESSAGES[Refusal.LINK_PAUSED]
    await row(page, "Smith, John").get_by_text("Manage").click()
    await row(page, "Smith, John").get_by_role("button", name="Resume").click()
    await flash(page, "Link resumed.")
    await expect(row(page, "Smith, John").locator(".badge")).to_have_text("Active")
    assert await guest_notice(browser, urls["Smith, John"]) == ""

    # 5. End a link by a date already past: the guest is told it has expired.
    yesterday = (date.today() - timedelta(days=2)).isoformat()
    await row(page, "Cy").get_by_text("Manage").click()
    await row(page, "Cy").locator("input[type=date]").fill(yesterday)
    await row(page, "Cy").get_by_role("button", name="Set end").click()
    await flash(page, "End date saved.")
    await expect(row(page, "Cy").locator(".badge")).to_have_text("Expired")
    assert await guest_notice(browser, urls["Cy"]) == REFUSAL_MESSAGES[Refusal.LINK_EXPIRED]

    # 6. Print the sheet of two selected users: one QR code each, each decoding to its own link.
    await expect(page.locator("#select-all")).to_be_visible()
    await page.locator("#select-all").check()
    await row(page, "Cy").locator("input.select-user").uncheck()
    await expect(page.locator("#select-all")).not_to_be_checked()
    await page.locator("#bulk-action").select_option("print")
    await page.locator("#bulk").get_by_role("button", name="Apply").click()
    await expect(page.locator("h1")).to_have_text("Links for Riverside Library")
    cards = page.locator("li.card-qr")
    await expect(cards).to_have_count(2)
    await shot(page, f"share-walk-print-sheet-{db_name}.png")
    decoded = {}
    for index in range(2):
        card = cards.nth(index)
        name = await card.locator(".card-name").inner_text()
        picture = Image.open(io.BytesIO(await card.locator(".qr svg").screenshot()))
        found = zxingcpp.read_barcodes(picture)
        assert len(found) == 1, f"no QR code decoded on {name}'s card"
        decoded[name] = found[0].text
        assert await card.locator(".card-url").inner_text() == found[0].text
    assert decoded == {"Smith, John": urls["Smith, John"], "Ann Lee": urls["Ann Lee"]}
    # Printed, the sheet hides its buttons and lays the cards out for A4.
    await page.emulate_media(media="print")
    await expect(page.locator(".sheet-bar")).to_be_hidden()
    await page.emulate_media(media="screen")
    # The key is on paper, never in an address the page asked the server for.
    assert all(url.split("#k=")[1] not in page.url for url in urls.values())

    errors.assert_none()
    await context.close()


async def test_long_names_wrap_and_a_refused_batch_keeps_its_box_and_focus(browser, server, alice: Person, db_name):
    assistant = await alice.new_assistant(share="private")
    long_name = "W" * 200
    body = {"links": [{"name": long_name}, {"name": "Short"}]}
    assert (await alice.request("POST", f"/api/v1/assistants/{assistant['id']}/links", json=body)).status_code == 201
    context, page, _dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await sign_in(page, server, alice.email)
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/share")

    # A 200-character unbroken name wraps in its cell, with the whole name as its tooltip.
    assert await page.evaluate("() => document.documentElement.scrollWidth") <= DESKTOP["width"]
    table = await page.locator("table.users").bounding_box()
    assert table and table["x"] + table["width"] <= DESKTOP["width"]
    await expect(page.locator(f'td.user-name[title="{long_name}"]')).to_be_visible()

    # A batch with bad lines: every one is reported, the box keeps what was typed and has the focus.
    typed = "Smith, John\nAnn,-1\nBo,2.5"
    await page.get_by_text("Create users").click()
    await page.locator("#names").fill(typed)
    await page.get_by_role("button", name="Create links").click()
    await expect(page.locator("#names-error")).to_contain_text("2 lines to fix, nothing was created.")
    await expect(page.locator("#bad-lines li")).to_have_count(2)
    await expect(page.locator("#names")).to_have_value(typed)
    await expect(page.locator("#names")).to_be_focused()
    await shot(page, f"share-batch-refused-{db_name}.png")

    # A blank cap on a new user names the user, beside the field, which has the focus.
    await page.locator("#user-name").fill("Room 12")
    await page.locator("#user-max").fill("")
    await page.get_by_role("button", name="Create link", exact=True).click()
    await expect(page.locator("#max_sessions-error")).to_contain_text("Enter the maximum sessions for Room 12")
    await expect(page.locator("#user-max")).to_be_focused()
    await expect(page.locator("#user-name")).to_have_value("Room 12")
    errors.assert_none()
    await context.close()
