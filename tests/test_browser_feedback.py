"""Starters, sources and thumbs on the chat page, the widget's frame and the preview, in a real
browser, and axe-core over the page with every new control showing. Both databases.

Every route is the real server's; the page's requests to the feedback route are only watched.
"""

from __future__ import annotations

import json

from playwright.async_api import expect

from portico.vocabulary import FEEDBACK_REASON_LABELS, REFUSAL_MESSAGES, FeedbackReason, Refusal
from tests.browser import browser, page_errors, run_axe  # noqa: F401  (browser: fixture)
from tests.conftest import Person
from tests.test_browser_chat import (  # noqa: F401  (server, server_log, db_name: fixtures)
    GREETING,
    MILL_STREET,
    SATURDAY,
    ask,
    db_name,
    library,
    new_page,
    server,
    server_log,
    session_count,
    texts,
    wait_idle,
    wait_ready,
)

STARTERS = ["When are you open on Saturdays?", "Where do I park?"]
THANKS = "Thank you for your feedback."


async def give_starters(alice: Person, assistant: dict) -> None:
    path = f"/api/v1/assistants/{assistant['id']}"
    assert (await alice.request("PATCH", path, json={"starters": STARTERS})).status_code == 200
    assert (await alice.request("POST", f"{path}/publish")).status_code == 201


def record_feedback(page, posted: list[dict]) -> None:  # type: ignore[no-untyped-def]
    """What the page sends to the (real) feedback route, with the header that authorises it."""

    def seen(request) -> None:  # type: ignore[no-untyped-def]
        if request.method == "POST" and request.url.endswith("/feedback"):
            message_id = int(request.url.rsplit("/", 2)[-2])
            auth = request.headers.get("authorization")
            posted.append({**request.post_data_json, "message_id": message_id, "auth": auth})

    page.on("request", seen)


async def test_starters_show_before_the_first_message_and_a_click_starts_the_session(
    browser, server, app, alice: Person
):
    assistant = await library(alice)
    await give_starters(alice, assistant)
    context, page = await new_page(browser)
    errors = page_errors(page)
    for url in (f"/c/{assistant['public_id']}", f"/c/{assistant['widget_id']}?embed=1"):
        await page.goto(f"{server}{url}")
        await wait_ready(page)
        await expect(page.locator("#starters button")).to_have_text(STARTERS)
    assert await session_count(app) == 0, "showing starters must not start a session"

    await page.locator("#starters button", has_text=STARTERS[0]).click()
    await wait_idle(page, 2)
    assert await texts(page, "guest") == [STARTERS[0]]
    assert SATURDAY in (await texts(page, "assistant"))[-1]
    assert await session_count(app) == 1
    await expect(page.locator("#starters")).to_be_hidden()  # gone after the first message
    await page.reload()  # resumed: no starters in a conversation
    await wait_ready(page)
    await expect(page.locator("#starters")).to_be_hidden()
    errors.assert_none()
    await context.close()


async def test_a_built_in_reply_shows_its_sources_collapsed_and_on_resume(browser, server, alice: Person):
    assistant = await library(alice)
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    await ask(page, "Where do I park?", replies=2)
    sources = page.locator("#log li.msg.assistant").last.locator("details.sources")
    await expect(sources.locator("summary")).to_have_text("Sources")
    await expect(sources.locator("li")).to_have_text(["Parking"])  # from the `done` event
    await expect(sources.locator("li")).to_be_hidden()  # collapsed until asked
    await sources.locator("summary").click()
    await expect(sources.locator("li")).to_be_visible()

    await page.reload()  # resumed: the sources saved with the reply
    await wait_ready(page)
    await expect(page.locator("#log li.msg.assistant").last.locator("details.sources li")).to_have_text(["Parking"])
    errors.assert_none()
    await context.close()


async def test_thumbs_are_posted_changeable_with_a_reason_and_restored_on_resume(browser, server, alice: Person):
    assistant = await library(alice)
    context, page = await new_page(browser)
    errors = page_errors(page)
    posted: list[dict] = []
    record_feedback(page, posted)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    await ask(page, "Where do I park?", replies=2)
    reply = page.locator("#log li.msg.assistant").last
    up, down = reply.get_by_role("button", name="Good reply"), reply.get_by_role("button", name="Bad reply")
    await expect(page.locator("#log li.msg.assistant").first.locator(".rate")).to_have_count(0)  # not the greeting
    await expect(up).to_have_attribute("aria-pressed", "false")

    await up.click()
    await expect(up).to_have_attribute("aria-pressed", "true")
    await expect(reply.locator(".thanks")).to_have_text(THANKS)
    session = await page.evaluate("() => JSON.parse(sessionStorage.getItem(sessionStorage.key(0)))")
    assert posted[-1]["rating"] == "up" and posted[-1]["reason"] is None and posted[-1]["comment"] is None
    assert posted[-1]["auth"] == f"Bearer {session['token']}"  # the session's own token, in a header

    # Changed to down: a reason (the vocabulary's labels) and a comment of at most 500 characters.
    await down.click()
    await expect(down).to_have_attribute("aria-pressed", "true")
    await expect(up).to_have_attribute("aria-pressed", "false")
    form = reply.locator("form.feedback")
    labels = [FEEDBACK_REASON_LABELS[r] for r in FeedbackReason]
    await expect(form.locator("label.choice")).to_have_text(labels)
    await form.get_by_label(FEEDBACK_REASON_LABELS[FeedbackReason.NOT_ANSWERED]).check()
    comment = form.locator("textarea")
    await comment.fill("x" * 600)
    await expect(comment).to_have_value("x" * 500)
    await comment.fill("It did not say where the entrance is.")
    await form.get_by_role("button", name="Send feedback").click()
    await expect(form).to_be_hidden()
    assert posted[-1] == {
        "rating": "down",
        "reason": "not_answered",
        "comment": "It did not say where the entrance is.",
        "message_id": posted[0]["message_id"],
        "auth": posted[0]["auth"],
    }
    assert [p["rating"] for p in posted] == ["up", "down", "down"]

    # Resumed: the rating shown as it was saved; the reason and comment come back to change them.
    await page.reload()
    await wait_ready(page)
    reply = page.locator("#log li.msg.assistant").last
    await expect(reply.get_by_role("button", name="Bad reply")).to_have_attribute("aria-pressed", "true")
    await reply.get_by_role("button", name="Bad reply").click()  # pressed again: opens the reason
    form = reply.locator("form.feedback")
    await expect(form.get_by_label(FEEDBACK_REASON_LABELS[FeedbackReason.NOT_ANSWERED])).to_be_checked()
    await expect(form.locator("textarea")).to_have_value("It did not say where the entrance is.")
    assert len(posted) == 3, "pressing the chosen thumb again must not post"
    errors.assert_none()
    await context.close()


async def test_a_refused_rating_shows_the_servers_sentence_and_changes_nothing(browser, server, alice: Person):
    assistant = await library(alice)
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    await ask(page, "Where do I park?", replies=2)
    # The owner takes the assistant offline: the server refuses the rating with the gate's sentence.
    assert (
        await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
    ).status_code == 200
    reply = page.locator("#log li.msg.assistant").last
    await reply.get_by_role("button", name="Good reply").click()
    await expect(reply.locator(".thanks")).to_have_text(REFUSAL_MESSAGES[Refusal.ASSISTANT_OFFLINE])
    await expect(reply.get_by_role("button", name="Good reply")).to_have_attribute("aria-pressed", "false")
    errors.assert_none()
    await context.close()


async def test_the_preview_shows_the_greeting_before_the_first_message(browser, server, alice: Person):
    assistant = await library(alice, greeting="Hi! I know about **opening hours** and parking.")
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(alice.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/preview")
    turns = page.locator("#preview-log > li")
    await expect(turns).to_have_count(1)  # before any message: no blank box
    await expect(turns.first.locator("strong")).to_have_text("opening hours")
    await page.locator("#preview-message").fill("Where do I park?")
    await page.locator("#preview-message").press("Enter")
    await expect(turns).to_have_count(3)  # the greeting once, the question, the reply
    await expect(turns.last).to_contain_text(MILL_STREET)
    await expect(turns.last.locator("details.sources li")).to_have_text(["Parking"])
    await page.get_by_role("button", name="New conversation").click()
    await expect(turns).to_have_count(1)
    errors.assert_none()
    await context.close()


async def test_axe_finds_no_violation_with_starters_sources_thumbs_the_reason_form_and_the_counter(
    browser, server, alice: Person
):
    assistant = await library(alice, settings={"max_message_length": 40})
    await give_starters(alice, assistant)
    context, page = await new_page(browser, bypass_csp=True)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    found = await run_axe(page, "starters")
    await page.locator("#starters button", has_text=STARTERS[1]).click()
    await wait_idle(page, 2)
    reply = page.locator("#log li.msg.assistant").last
    await reply.locator("details.sources summary").click()
    await reply.get_by_role("button", name="Bad reply").click()
    await expect(reply.locator("form.feedback")).to_be_visible()
    await page.locator("#message").fill("x" * 41)
    await expect(page.locator("#too-long")).to_be_visible()
    found += await run_axe(page, "reply with sources, thumbs, reason form, counter")
    assert not found, "axe found problems (printed above): " + ", ".join(v["id"] for v in found)
    await context.close()


async def test_a_guests_thumbs_down_reaches_the_owners_logs(browser, server, app, alice: Person):
    assistant = await library(alice)
    path = f"/api/v1/assistants/{assistant['id']}"
    assert (await alice.request("PATCH", path, json={"starters": STARTERS})).status_code == 200
    assert (await alice.request("POST", f"{path}/publish")).status_code == 201
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/c/{assistant['public_id']}")
    await wait_ready(page)
    await page.locator("#starters button", has_text=STARTERS[1]).click()
    await wait_idle(page, 2)
    assert await session_count(app) == 1
    reply = page.locator("#log li.msg.assistant").last
    await reply.get_by_role("button", name="Bad reply").click()
    await reply.locator("form.feedback").get_by_label(FEEDBACK_REASON_LABELS[FeedbackReason.WRONG]).check()
    await reply.get_by_role("button", name="Send feedback").click()
    await expect(reply.locator(".thanks")).to_have_text(THANKS)
    await page.reload()
    await wait_ready(page)
    reply = page.locator("#log li.msg.assistant").last
    await expect(reply.get_by_role("button", name="Bad reply")).to_have_attribute("aria-pressed", "true")
    await expect(reply.locator("details.sources li")).to_have_text(["Parking"])
    session = json.loads(await page.evaluate("() => sessionStorage.getItem(sessionStorage.key(0))"))
    state = (
        await alice.http.get(
            f"/api/v1/chat/sessions/{session['id']}", headers={"Authorization": f"Bearer {session['token']}"}
        )
    ).json()
    assert state["messages"][-1]["rating"] == "down" and state["messages"][-1]["reason"] == "wrong"
    errors.assert_none()
    await context.close()

    # The owner sees the thumbs down in Logs: the session under "Rated down", the reason on its transcript.
    context, page = await new_page(browser)
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(alice.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/logs?rating=down")
    await page.locator(f"a[href*='/logs/{session['id']}']").first.click()
    rating = page.locator("p.rating")
    await expect(rating).to_contain_text("Rated down by the guest")
    await expect(rating).to_contain_text(FEEDBACK_REASON_LABELS[FeedbackReason.WRONG])
    await context.close()


async def test_the_preview_shows_the_drafts_starters_before_the_first_message(browser, server, alice: Person):
    assistant = await library(alice)
    path = f"/api/v1/assistants/{assistant['id']}"
    assert (await alice.request("PATCH", path, json={"starters": STARTERS})).status_code == 200
    context, page = await new_page(browser)
    errors = page_errors(page)
    await page.goto(f"{server}/dashboard/sign-in")
    await page.get_by_label("Email").fill(alice.email)
    await page.get_by_label("Password").fill("correct horse battery")
    await page.get_by_role("button", name="Sign in").click()
    await page.goto(f"{server}/dashboard/assistants/{assistant['id']}/preview")
    await expect(page.locator("#preview-starters button")).to_have_text(STARTERS)
    await page.locator("#preview-starters button", has_text=STARTERS[1]).click()
    await expect(page.locator("#preview-log > li")).to_have_count(3)
    await expect(page.locator("#preview-log > li").last).to_contain_text(MILL_STREET)
    await expect(page.locator("#preview-starters")).to_be_hidden()
    errors.assert_none()
    await context.close()


async def test_a_thumbs_down_thanks_only_once_the_reason_is_sent_or_skipped(browser, server, alice: Person):
    assistant = await library(alice)
    context, page = await new_page(browser)
    errors = page_errors(page)
    posted: list[dict] = []
    record_feedback(page, posted)
    # The chat page sends a reason; the widget's frame skips it.
    for url, done in (
        (f"/c/{assistant['public_id']}", "Send feedback"),
        (f"/c/{assistant['widget_id']}?embed=1", "Skip"),
    ):
        await page.goto(f"{server}{url}")
        await wait_ready(page)
        await ask(page, "Where do I park?", replies=2)
        reply = page.locator("#log li.msg.assistant").last
        await reply.get_by_role("button", name="Bad reply").click()
        form = reply.locator("form.feedback")
        await expect(form).to_be_visible()
        await expect(reply.get_by_role("button", name="Bad reply")).to_have_attribute("aria-pressed", "true")
        assert posted[-1]["rating"] == "down"  # saved at the click, reason or not
        await expect(reply.locator(".thanks")).to_have_text("")  # not while the form asks for more
        await form.get_by_role("button", name=done).click()
        await expect(form).to_be_hidden()
        await expect(reply.locator(".thanks")).to_have_text(THANKS)
        # Pressed again to change the reason: the thanks wait for the form again.
        await reply.get_by_role("button", name="Bad reply").click()
        await expect(form).to_be_visible()
        await expect(reply.locator(".thanks")).to_have_text("")
    assert [p["rating"] for p in posted] == ["down", "down", "down"]  # the skip posts nothing more
    errors.assert_none()
    await context.close()
