"""What the owner reads and downloads says what happened, in Portico's words: CSV cells that a
spreadsheet would run as formulas are made text, a reply cut short says why, Publish says when guests
get a version, and an assistant is deleted from its Settings page as the API deletes it."""

from __future__ import annotations

import csv
import html
import io
import re

import pytest
from sqlalchemy import select, update

from portico.models import Message
from portico.vocabulary import REPLY_ERROR_LABELS, EndReason, ReplyError
from tests.chat_helpers import say
from tests.conftest import Person, key_of, start
from tests.dashboard_helpers import Dashboard
from tests.test_dashboard_pages import field_errors, web  # noqa: F401 (fixture)

# Words on pages and in files: once, on SQLite (storing and deleting are checked on both elsewhere).
pytestmark = pytest.mark.sqlite_only

FORMULAS = ['=HYPERLINK("http://evil.example","x")', "+1+2", "-2+3", "@SUM(A1)", "\tTAB", "\rCR"]


async def named_links(alice: Person, assistant_id: int, names: list[str]) -> list[dict]:
    body = {"links": [{"name": name, "max_sessions": 0} for name in names]}
    response = await alice.request("POST", f"/api/v1/assistants/{assistant_id}/links", json=body)
    assert response.status_code == 201, response.text
    return response.json()["items"]


# Names are stripped when saved, so a tab or carriage return cannot start one: those two are checked
# on the cell itself below.
@pytest.mark.parametrize("formula", FORMULAS[:4])
async def test_exports_make_names_that_start_like_a_formula_into_text(web, client, alice: Person, formula: str):
    assistant = await alice.new_assistant()
    (link,) = await named_links(alice, assistant["id"], [formula])
    await start(client, key=key_of(link))
    await start(client, public_id=assistant["public_id"])
    base = f"/dashboard/assistants/{assistant['id']}"

    for response in (
        await web.get(f"{base}/logs.csv"),
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions.csv"),
    ):
        users = sorted(row["user"] for row in csv.DictReader(io.StringIO(response.text)))
        assert users == sorted(["Anonymous", "'" + formula]), users
    shared = await web.get(f"{base}/users.csv")
    rows = list(csv.DictReader(io.StringIO(shared.text)))
    assert [row["name"] for row in rows] == ["'" + formula]
    assert rows[0]["link"] == link["url"]  # links and numbers are left as they are


async def test_safe_cells_leave_ordinary_text_and_numbers_alone():
    from portico.kit.spreadsheet import safe_cell

    assert [safe_cell(v) for v in ("Ann", "x=1", "", -3, 2.5, None)] == ["Ann", "x=1", "", -3, 2.5, None]
    assert [safe_cell(v) for v in FORMULAS] == ["'" + v for v in FORMULAS]


def test_every_code_a_reply_can_stop_with_has_an_owner_label():
    from portico.chat import cutoff, sweep
    from portico.metrics import rollup

    # What cuts a reply: the cut-offs' end reasons, the reply timeout, the sweep, the engines' codes.
    codes = {
        EndReason.ASSISTANT_OFFLINE,
        EndReason.ASSISTANT_DELETED,
        EndReason.LINK_REVOKED,
        EndReason.LINK_REISSUED,
        EndReason.MADE_PRIVATE,
        cutoff.TIMED_OUT,
        sweep.INTERRUPTED,
        "disconnected",
        *rollup.ENGINE_ERRORS,
    }
    assert {ReplyError(code) for code in codes} == set(ReplyError)
    assert set(REPLY_ERROR_LABELS) == set(ReplyError)


async def test_a_reply_cut_short_is_labelled_in_the_transcript_by_what_cut_it(app, web, client, alice: Person):
    assistant = await alice.new_assistant()
    session = (await start(client, public_id=assistant["public_id"])).json()
    for _ in ReplyError:
        assert (await say(client, session, "Opening hours?")).status_code == 200
    async with app.state.sessionmaker() as db:
        replies = list(
            await db.scalars(
                select(Message.id)
                .where(Message.session_id == session["session_id"], Message.role == "assistant")
                .order_by(Message.id)
            )
        )
        for reply_id, code in zip(replies, ReplyError, strict=True):
            await db.execute(update(Message).where(Message.id == reply_id).values(error_code=code.value))
        await db.commit()
    page = await web.get(f"/dashboard/assistants/{assistant['id']}/logs/{session['session_id']}")
    assert page.status_code == 200
    for code in ReplyError:
        assert f'<p class="error-note">{REPLY_ERROR_LABELS[code]}</p>' in page.text
    assert "Link deleted by the owner" in page.text
    assert "Engine problem" not in page.text and "link_revoked" not in page.text


async def test_publish_says_guests_get_the_version_only_when_they_can(web, alice: Person):
    offline = await alice.new_assistant(publish=False, live=False)
    base = f"/dashboard/assistants/{offline['id']}"
    never = await web.get(f"{base}/publish")
    assert "Not published yet" in never.text and "Unpublished changes" not in never.text
    await web.post(f"{base}/publish")
    page = (await web.get(f"{base}/publish?done=published")).text
    assert "Guests now get it" not in page
    assert "The assistant is Offline: guests get this version once you switch it Live." in page
    assert f'action="{base}/status"' in page and "Switch Live" in page  # the switch is right there
    live = await web.post(f"{base}/status", {"status": "live"})
    assert live.status_code == 303
    # A change to publish (an unchanged draft makes no version: "Nothing new to publish").
    await alice.request("PATCH", f"/api/v1/assistants/{offline['id']}", json={"greeting": "Hi"})
    await web.post(f"{base}/publish")
    page = (await web.get(f"{base}/publish?done=published")).text
    assert "Published version 2. Guests now get it." in page and "Switch Live" not in page


async def test_an_assistant_is_deleted_from_settings_with_its_name_typed_and_guests_are_cut(
    app, web, client, alice: Person, bob: Person
):
    assistant = await alice.new_assistant(name="Riverside Library")
    (link,) = await alice.new_links(assistant["id"], 0)
    anonymous = (await start(client, public_id=assistant["public_id"])).json()
    private = (await start(client, key=key_of(link))).json()
    base = f"/dashboard/assistants/{assistant['id']}"
    settings = await web.get(f"{base}/settings")
    assert settings.status_code == 200 and "Delete this assistant" in settings.text

    for typed, said in [
        ("", "Type the assistant's name to confirm."),
        ("riverside library", "Type the assistant's name exactly as shown above to delete it."),
    ]:
        refused = await web.post(f"{base}/delete", {"confirm_name": typed})
        assert refused.status_code == 422
        assert html.unescape(field_errors(refused.text)["confirm_name"]) == said
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).status_code == 200

    # Someone else's assistant cannot be deleted, whatever name is typed.
    other = await bob.new_assistant(name="Bob's")
    assert (await web.post(f"/dashboard/assistants/{other['id']}/delete", {"confirm_name": "Bob's"})).status_code == 404

    deleted = await web.post(f"{base}/delete", {"confirm_name": " Riverside Library "})
    assert (deleted.status_code, deleted.headers["location"]) == (303, "/dashboard?done=deleted")
    listing = await web.get("/dashboard?done=deleted")
    assert "The assistant was deleted. Its links and its widget no longer work." in listing.text
    assert "Riverside Library" not in listing.text
    assert (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).status_code == 404
    assert (await start(client, public_id=assistant["public_id"])).status_code == 404
    assert (await start(client, key=key_of(link))).status_code in (403, 404)
    for session in (anonymous, private):
        refused = await say(client, session, "Still there?")
        assert refused.status_code == 404, refused.text
    assert (await web.get(f"{base}/settings")).status_code == 404
    assert (await alice.request("GET", f"/api/v1/assistants/{other['id']}")).status_code == 404  # bob's, not hers
    assert (await bob.request("GET", f"/api/v1/assistants/{other['id']}")).status_code == 200


async def test_a_form_field_that_cannot_be_stored_is_named_in_a_sentence(web: Dashboard):
    response = await web.post("/dashboard/tokens", {"name": "Lap\x00top"})
    assert response.status_code == 422
    assert "The name contains a character that cannot be stored" in response.text
    assert "Value error" not in response.text and "body.name" not in response.text


@pytest.mark.parametrize(
    ("page", "query", "field", "said"),
    [
        ("logs", {"from": "yesterday"}, "from", "Enter the first day as a date, like 2026-11-24."),
        ("logs", {"to": "9999-12-31"}, "to", "Enter the last day as a date, like 2026-11-24."),
        ("logs", {"from": "2026-11-24", "to": "2026-11-01"}, "to", "The last day cannot come before the first."),
        ("logs", {"user": "²"}, "user", "Choose a user from the list."),
        ("logs", {"end_reason": "exploded"}, "end_reason", "Choose an ending from the list."),
        ("logs", {"q": "q" * 201}, "q", "Search for at most 200 characters."),
        ("metrics", {"period": "forever"}, "period", "Choose a period from the list."),
        ("metrics", {"bucket": "minute"}, "bucket", "Choose hours or days."),
        ("metrics", {"period": "custom", "from": "soon"}, "from", "Enter the first day as a date, like 2026-11-24."),
        ("metrics", {"period": "custom", "from": "2026-11-24", "to": "2026-11-01"}, "to", None),
        ("metrics", {"period": "custom", "from": "2000-01-01", "bucket": "hour"}, "period", None),
    ],
)
async def test_logs_and_metrics_filters_say_what_is_wrong_beside_the_field(
    web, alice: Person, page: str, query: dict, field: str, said: str | None
):
    assistant = await alice.new_assistant()
    response = await web.get(f"/dashboard/assistants/{assistant['id']}/{page}", params=query)
    assert response.status_code in (200, 422)
    errors = {k: html.unescape(v) for k, v in field_errors(response.text).items()}
    assert list(errors) == [field]
    assert errors[field] == said if said else "'" not in errors[field] and errors[field].endswith(".")
    assert f'aria-describedby="{field}-error" aria-invalid="true"' in response.text


async def test_switch_live_on_the_publish_page_stays_on_publish_and_shows_live(web, alice: Person):
    assistant = await alice.new_assistant(publish=True, live=False)
    base = f"/dashboard/assistants/{assistant['id']}"
    page = (await web.get(f"{base}/publish")).text
    switch = page[page.index('id="live-switch"') : page.index("</form>", page.index('id="live-switch"'))]
    fields = dict(re.findall(r'type="hidden" name="([^"]+)" value="([^"]*)"', switch))
    switched = await web.post(f"{base}/status", {k: v for k, v in fields.items() if k != "csrf"})
    assert switched.status_code == 303
    assert switched.headers["location"] == f"{base}/publish?done=status"
    shown = (await web.get(switched.headers["location"])).text
    assert '<div class="flash" role="status">The assistant is Live.</div>' in shown
    assert '<span class="badge on">Live</span>' in shown and "Switch Live" not in shown
    # The Share page's own status form still comes back to Share.
    back = await web.post(f"{base}/status", {"status": "offline"})
    assert back.headers["location"] == f"{base}/share?done=status"
