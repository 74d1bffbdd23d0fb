"""In a real browser: the owner opens the unanswered report, clicks a question and lands in Behavior
with it waiting at the end of the knowledge, answers it and saves; and guests' starters show in Behavior."""

from __future__ import annotations

import re

from playwright.async_api import expect

from tests.browser import browser, page_errors  # noqa: F401  (browser: fixture)
from tests.chat_helpers import say
from tests.conftest import Person, start
from tests.test_browser_dashboard import db_name, owner_page, server, shot  # noqa: F401  (fixtures)

KNOWLEDGE = "# Opening hours\nWe are open from 9 to 5 on weekdays."
QUESTION = "What is your phone number?"

expect.set_options(timeout=10_000)


async def test_one_click_from_an_unanswered_question_to_its_answer_in_the_knowledge(
    browser, server, app, alice: Person, client, db_name
):
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    session = (await start(client, public_id=assistant["public_id"])).json()
    assert (await say(client, session, "phone number??")).status_code == 200
    assert (await say(client, session, QUESTION)).status_code == 200

    context, page, _dialogs = await owner_page(browser, server)
    errors = page_errors(page)
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(alice.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page).to_have_url(f"{server}/dashboard")
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/behavior")
    await page.get_by_role("link", name="Unanswered").click()
    row = page.get_by_role("row").filter(has_text=QUESTION)
    await expect(row).to_contain_text("phone number??")
    await expect(row.get_by_role("cell").nth(1)).to_have_text("2")
    await shot(page, f"unanswered-{db_name}.png")

    await row.get_by_role("link", name="Answer in Behavior").click()
    await expect(page).to_have_url(re.compile(r"/behavior\?answer="))
    knowledge = page.locator("#knowledge")
    await expect(knowledge).to_be_focused()
    await expect(knowledge).to_have_value(f"{KNOWLEDGE}\n\n## {QUESTION}\n")
    caret = await knowledge.evaluate("t => [t.selectionStart, t.selectionEnd, t.value.length]")
    assert caret[0] == caret[1] == caret[2]
    # Nothing is saved until the owner saves.
    draft = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["draft"]
    assert draft["knowledge"] == KNOWLEDGE

    await page.keyboard.type("Call us on +49 30 1234567.")
    await page.get_by_role("button", name="Save draft").click()
    await expect(page.locator(".flash")).to_contain_text("Draft saved")
    draft = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["draft"]
    assert draft["knowledge"] == f"{KNOWLEDGE}\n\n## {QUESTION}\nCall us on +49 30 1234567."
    errors.assert_none()
    await context.close()
