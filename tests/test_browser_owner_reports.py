"""In a real browser, what the owner reads back (issue 21): the two rating charts of Metrics on one
scale with captions and units, the unanswered report's transcripts, comments and publish marks, and
the audit log's details as a person reads them."""

from __future__ import annotations

from playwright.async_api import expect

from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.chat_helpers import say
from tests.conftest import Person, start
from tests.test_browser_dashboard import db_name, owner_page, server, shot  # noqa: F401  (fixtures)
from tests.test_feedback import rate

KNOWLEDGE = "# Opening hours\nWe are open from 9 to 5 on weekdays."

expect.set_options(timeout=10_000)


async def sign_in(page, server: str, person: Person) -> None:  # type: ignore[no-untyped-def]
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(person.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{server}/dashboard")


async def rated_replies(client, assistant: dict, ratings: list[str | None]) -> None:  # type: ignore[no-untyped-def]
    for rating in ratings:
        session = (await start(client, public_id=assistant["public_id"])).json()
        reply = (await say(client, session, "When are you open?")).json()
        if rating:
            assert (await rate(client, session, reply["message_id"], rating=rating)).status_code == 200


async def bar_height(page, chart_id: str) -> float:  # type: ignore[no-untyped-def]
    heights = await page.locator(f"svg:has(#{chart_id}-t) rect").evaluate_all(
        "bars => bars.map(b => b.getBoundingClientRect().height)"
    )
    return max(heights)


async def test_the_two_rating_charts_share_one_scale_with_captions_units_and_plurals(
    browser, server, app, alice: Person, client, db_name
):
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    # Four replies: one rated up (25%), two rated down (50%).
    await rated_replies(client, assistant, ["up", "down", "down", None])

    context, page, _dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await sign_in(page, server, alice)
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/metrics?period=today")
    ratings = page.locator("section[aria-labelledby=ratings-title]")
    await expect(ratings.locator("p").first).to_contain_text(
        "4 replies in this period: 1 reply was rated up (25.0%) and 2 replies were rated down (50.0%)"
    )
    await expect(ratings.locator("figcaption")).to_have_text(
        ["Rated up: % of the replies of each hour", "Rated down: % of the replies of each hour"]
    )
    # One scale: both axes end at the same share, in %, and 25% stands half as tall as 50%.
    up_axis = await ratings.locator("svg:has(#chart-rated-up-t) text").all_text_contents()
    down_axis = await ratings.locator("svg:has(#chart-rated-down-t) text").all_text_contents()
    assert "50%" in up_axis and "50%" in down_axis, (up_axis, down_axis)
    up = await bar_height(page, "chart-rated-up")
    down = await bar_height(page, "chart-rated-down")
    assert abs(up / down - 0.5) < 0.02, (up, down)
    await expect(page.locator("#chart-rated-up-d")).to_contain_text("scale 0 to 50%")
    await ratings.locator("details.numbers summary").click()
    await expect(ratings.locator("details.numbers tbody")).to_contain_text("1 (25.0%)")
    await shot(page, f"metrics-ratings-{db_name}.png")
    errors.assert_none()
    await context.close()


async def test_the_audit_log_reads_as_sentences_and_resuming_an_active_link_writes_nothing(
    browser, server, app, alice: Person, client
):
    assistant = await alice.new_assistant()
    a = f"/api/v1/assistants/{assistant['id']}"
    (link,) = await alice.new_links(assistant["id"], 2)
    await alice.request("PATCH", f"{a}/links/{link['id']}", json={"name": "Smith, John"})
    await alice.request("PATCH", f"{a}/links/{link['id']}", json={"name": "John Smith"})
    await alice.request("POST", f"{a}/links/bulk", json={"ids": [link["id"]], "action": "resume"})

    context, page, _dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await sign_in(page, server, alice)
    await page.get_by_role("link", name="Audit log").click()
    rows = page.locator("table.audit tbody tr")
    await expect(rows.first.locator("td").nth(2)).to_have_text("Link renamed")
    await expect(rows.first.locator("td").nth(4)).to_have_text("Name: John Smith (was Smith, John)")
    await expect(rows.filter(has_text="Link created").locator("td").nth(4)).to_have_text(
        "Link: User 1; Cap: 2 sessions"
    )
    await expect(page.locator("table.audit")).not_to_contain_text("Link resumed")
    errors.assert_none()
    await context.close()


async def test_the_unanswered_report_links_transcripts_shows_comments_and_marks_what_a_publish_may_have_fixed(
    browser, server, app, alice: Person, client, db_name
):
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    old = (await start(client, public_id=assistant["public_id"])).json()
    await say(client, old, "What is your phone number?")
    path = f"/api/v1/assistants/{assistant['id']}"
    await alice.request("PATCH", path, json={"knowledge": KNOWLEDGE + "\n\n# Phone\nCall +49 30 1234567."})
    assert (await alice.request("POST", f"{path}/publish")).status_code == 201
    new = (await start(client, public_id=assistant["public_id"])).json()
    reply = (await say(client, new, "Is there a lift?")).json()
    assert (
        await rate(client, new, reply["message_id"], rating="down", comment="I use a wheelchair.")
    ).status_code == 200

    context, page, _dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await sign_in(page, server, alice)
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/unanswered")
    phone = page.get_by_role("row").filter(has_text="What is your phone number?")
    lift = page.get_by_role("row").filter(has_text="Is there a lift?")
    await expect(phone.locator(".before-publish")).to_have_text("Asked before the last publish")
    await expect(lift.locator(".before-publish")).to_have_count(0)
    await expect(lift.locator(".guest-comments li")).to_have_text(["I use a wheelchair."])
    await shot(page, f"unanswered-marks-{db_name}.png")
    await lift.get_by_role("link", name=f"Transcript of session {new['session_id']}").click()
    await expect(page).to_have_url(f"{server}/dashboard/assistants/{assistant['id']}/logs/{new['session_id']}")
    await expect(page.locator("ol.transcript")).to_contain_text("I use a wheelchair.")
    errors.assert_none()
    await context.close()
