"""The Share page by keyboard on a phone (390 px), in a real browser (issue 21, items 9, 14 and 21):
a few Tab presses reach "Create users", a user's row is four stops, a new link takes the focus,
bulk actions wait for a selection and say what they do to how many, and an end date shows in full."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.conftest import Person
from tests.test_browser_dashboard import db_name, flash, owner_page, server, shot  # noqa: F401  (fixtures)
from tests.test_browser_share_walk import row, sign_in

PHONE_390 = {"width": 390, "height": 844}


async def focused(page) -> str:  # type: ignore[no-untyped-def]
    return await page.evaluate("() => document.activeElement.outerHTML.slice(0, 100)")


async def tabs_until(page, target, limit: int) -> int:  # type: ignore[no-untyped-def]
    """Presses Tab until `target` has the focus; how many presses it took."""
    for count in range(1, limit + 1):
        await page.keyboard.press("Tab")
        if await target.evaluate("el => el === document.activeElement"):
            return count
    raise AssertionError(f"{limit} Tab presses did not reach the target; the focus is on {await focused(page)}")


async def test_the_share_page_is_a_few_keys_deep_on_a_phone(browser, server, alice: Person, db_name):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    links = await alice.new_links(assistant["id"], 0, 0, 0, 0)
    ends = await alice.request(
        "PATCH",
        f"/api/v1/assistants/{assistant['id']}/links/{links[0]['id']}",
        json={"expires_at": "2031-05-06T14:30:00Z"},
    )
    assert ends.status_code == 200
    context, page, dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await page.set_viewport_size(PHONE_390)
    await sign_in(page, server, alice.email)
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/share")

    # "Create users": Tab to "Skip to Users", Enter, then past the CSV download (was 41 presses).
    presses = await tabs_until(page, page.get_by_role("link", name="Skip to Users"), limit=3)
    await page.keyboard.press("Enter")
    presses += await tabs_until(page, page.get_by_text("Create users"), limit=3)
    assert presses <= 5, presses

    # A row is four stops: its box, its link, Copy and Manage (was 14); the next row's box follows.
    await row(page, "User 1").locator("input.select-user").focus()
    assert await tabs_until(page, row(page, "User 2").locator("input.select-user"), limit=6) == 4

    # An end set to the minute shows as a date and a time, in full (it showed "mm/dd").
    await row(page, "User 1").get_by_text("Manage").click()
    end = row(page, "User 1").locator("input[name=expires_on]")
    await expect(end).to_have_value("2031-05-06T14:30")
    assert await end.evaluate("el => el.scrollWidth <= el.clientWidth && el.clientWidth >= 180"), await end.evaluate(
        "el => [el.scrollWidth, el.clientWidth]"
    )
    await row(page, "User 2").get_by_text("Manage").click()
    assert await row(page, "User 2").locator("input[type=date]").evaluate("el => el.clientWidth >= 130")
    await shot(page, f"share-keyboard-phone-{db_name}.png")

    # Bulk actions wait for a selection, then name the action and the count.
    apply = page.locator("#bulk-apply")
    await expect(apply).to_be_disabled()
    for name in ("User 1", "User 2", "User 3"):
        await row(page, name).locator("input.select-user").check()
    await expect(apply).to_be_enabled()
    await expect(page.locator("#bulk-count")).to_have_text("3 selected")
    await page.locator("#bulk-action").select_option("pause")
    await apply.click()
    await flash(page, "3 links paused.")
    assert dialogs[-1] == "confirm: Pause 3 links? Their users are told so until you resume them."

    # A new link takes the focus (its Copy button, described by "1 new link" for screen readers).
    await page.get_by_text("Create users").click()
    await page.locator("#user-name").fill("Room 12")
    await page.get_by_role("button", name="Create link", exact=True).click()
    copy = page.get_by_role("button", name="Copy link for Room 12").first
    await expect(copy).to_be_focused()
    await expect(copy).to_have_accessible_description("1 new link")
    errors.assert_none()
    await context.close()


# Printable width (page width less the 12 mm margins of print.css), in CSS pixels (96 per inch).
PAPERS = {"A4": (210 - 24) * 96 / 25.4, "Letter": (215.9 - 24) * 96 / 25.4}
SIZES_PT = {"A4": (596, 843), "Letter": (612, 792)}  # the PDF's pages, in points


async def test_the_print_sheet_keeps_every_card_border_inside_a4_and_letter(browser, server, alice: Person):  # noqa: F811
    assistant = await alice.new_assistant(share="private")
    await alice.new_links(assistant["id"], 0, 0, 0)
    context, page, _dialogs = await owner_page(browser, server)
    await sign_in(page, server, alice.email)
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/share")
    await page.locator("#select-all").check()
    await page.locator("#bulk-action").select_option("print")
    await page.locator("#bulk-apply").click()
    cards = page.locator("li.card-qr")
    await expect(cards).to_have_count(3)
    await page.emulate_media(media="print")
    for paper, width in PAPERS.items():
        # Laid out at the paper's printable width, as Chromium lays out each PDF page.
        await page.set_viewport_size({"width": int(width), "height": 1000})
        boxes = [await cards.nth(i).bounding_box() for i in range(3)]
        assert all(box and box["x"] >= 1 and box["x"] + box["width"] <= int(width) - 2 for box in boxes), (paper, boxes)
        assert boxes[1] and boxes[0] and boxes[1]["x"] > boxes[0]["x"] + boxes[0]["width"]  # two columns
        pdf = await page.pdf(format=paper, print_background=True)
        media = re.search(rb"/MediaBox \[0 0 ([\d.]+) ([\d.]+)\]", pdf)
        assert media and tuple(round(float(n)) for n in media.groups()) == SIZES_PT[paper], (paper, media)
    await context.close()
