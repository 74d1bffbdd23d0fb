"""What a Publish would change, and who changed the draft since the last one (issue 21, item 10):
`GET /api/v1/assistants/{id}/draft/diff` and the Publish page."""

from __future__ import annotations

from portico.assistants.diff import LINE_MAX, MAX_LINES, Line, line_diff
from tests.conftest import Person
from tests.team_helpers import make_team

KNOWLEDGE = "\n".join(f"Line {n} of the notes." for n in range(1, 41))


def kinds(change: dict) -> list[tuple[str, str | int]]:
    return [(line["kind"], line["text"] if line["kind"] != "skipped" else line["count"]) for line in change["lines"]]


async def test_the_owner_sees_the_editors_starter_and_knowledge_changes_and_who_made_them(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE, starters=["When are you open?"])
    path = f"/api/v1/assistants/{assistant['id']}"
    nothing = (await alice.request("GET", f"{path}/draft/diff")).json()
    assert nothing == {"published_version": 1, "has_changes": False, "changes": [], "edits": []}

    edit = {
        "starters": ["When are you open?", "Can I bring my dog?"],
        "knowledge": KNOWLEDGE.replace("Line 20 of the notes.", "Line 20, rewritten."),
        "settings": {"language": "fr"},
    }
    assert (await ed.request("PATCH", path, json=edit)).status_code == 200
    diff = (await alice.request("GET", f"{path}/draft/diff")).json()
    assert (diff["published_version"], diff["has_changes"]) == (1, True)
    changes = {change["field"]: change for change in diff["changes"]}
    assert list(changes) == ["knowledge", "starters", "settings.language"]
    assert kinds(changes["starters"]) == [("same", "When are you open?"), ("added", "Can I bring my dog?")]
    # Three lines of context around the change; the 16 lines before it and 20 after are counts.
    assert kinds(changes["knowledge"]) == [
        ("skipped", 16),
        *[("same", f"Line {n} of the notes.") for n in (17, 18, 19)],
        ("removed", "Line 20 of the notes."),
        ("added", "Line 20, rewritten."),
        *[("same", f"Line {n} of the notes.") for n in (21, 22, 23)],
        ("skipped", 17),
    ]
    language = changes["settings.language"]
    assert (language["label"], language["before"], language["after"]) == (
        "Guest pages' language",
        "the guest's browser decides",
        "fr",
    )
    [edited] = diff["edits"]
    assert (edited["actor"], edited["action"], edited["detail"]) == (
        "ed@example.com",
        "assistant.draft_edited",
        {"fields": "knowledge, settings.language, starters"},
    )

    # After the Publish there is nothing new, and the edits before it are no longer listed.
    assert (await alice.request("POST", f"{path}/publish")).status_code == 201
    after = (await alice.request("GET", f"{path}/draft/diff")).json()
    assert after == {"published_version": 2, "has_changes": False, "changes": [], "edits": []}


async def test_an_engine_key_is_never_shown_only_that_it_changed(client, alice: Person):
    engine = {"type": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "small", "api_key": "sk-first-key"}
    assistant = await alice.new_assistant(engine=engine, live=False)
    path = f"/api/v1/assistants/{assistant['id']}"
    new_engine = {"type": "openai", "model": "large", "api_key": "sk-second-key"}
    assert (await alice.request("PATCH", path, json={"engine": new_engine})).status_code == 200

    response = await alice.request("GET", f"{path}/draft/diff")
    changes = {change["field"]: change for change in response.json()["changes"]}
    assert changes["engine.api_key"]["note"] == "API key changed"
    assert (changes["engine.api_key"]["before"], changes["engine.api_key"]["after"]) == (None, None)
    assert (changes["engine.model"]["before"], changes["engine.model"]["after"]) == ("small", "large")
    assert "sk-first-key" not in response.text and "sk-second-key" not in response.text
    assert "_encrypted" not in response.text

    removed = await alice.request("PATCH", path, json={"engine": {"type": "openai", "api_key": ""}})
    assert removed.status_code == 200
    notes = {c["field"]: c["note"] for c in (await alice.request("GET", f"{path}/draft/diff")).json()["changes"]}
    assert notes["engine.api_key"] == "API key removed"


async def test_a_never_published_draft_shows_everything_guests_will_get(client, alice: Person, bob: Person):
    assistant = await alice.new_assistant(publish=False, live=False, knowledge="Open 9 to 5.\nClosed Sundays.")
    path = f"/api/v1/assistants/{assistant['id']}/draft/diff"
    diff = (await alice.request("GET", path)).json()
    assert (diff["published_version"], diff["has_changes"]) == (None, True)
    [knowledge] = diff["changes"]
    assert kinds(knowledge) == [("added", "Open 9 to 5."), ("added", "Closed Sundays.")]
    assert [(e["action"], e["actor"]) for e in diff["edits"]] == [("assistant.created", "alice@example.com")]
    response = await bob.request("GET", path)
    assert (response.status_code, response.json()["error"]["code"]) == (404, "not_found")


async def test_the_publish_page_shows_the_diff_escaped_and_says_when_there_is_nothing_new(app, client):
    team = await make_team(app)
    alice, ed = await team.person(client, "alice"), await team.person(client, "ed")
    assistant = await alice.new_assistant(starters=["When are you open?"])
    web = await team.browser("alice")
    page_path = f"/dashboard/assistants/{assistant['id']}/publish"
    page = await web.get(page_path)
    assert "Nothing to publish" in page.text and "What changes for guests" not in page.text

    markup = "<script>alert(1)</script>"
    await ed.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"starters": [markup]})
    page = await web.get(page_path)
    assert "What changes for guests" in page.text
    assert markup not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "Who changed the draft since version 1" in page.text and "ed@example.com" in page.text

    assert (await web.post(page_path)).headers["location"] == f"{page_path}?done=published"
    # A second click (a stale page) makes no version the same as the last.
    assert (await web.post(page_path)).headers["location"] == f"{page_path}?done=nothing"
    versions = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/versions")).json()["items"]
    assert [v["version"] for v in versions] == [2, 1]
    assert (
        "Nothing new to publish: the draft is the same as version 2."
        in (await web.get(f"{page_path}?done=nothing")).text
    )
    await web.http.aclose()


def test_long_unchanged_stretches_collapse_and_a_long_diff_is_cut():
    before = [f"line {n}" for n in range(1000)]
    after = [*before[:500], "new line", *before[500:]]
    assert line_diff(before, after) == [
        Line("skipped", count=497),
        *[Line("same", f"line {n}") for n in (497, 498, 499)],
        Line("added", "new line"),
        *[Line("same", f"line {n}") for n in (500, 501, 502)],
        Line("skipped", count=497),
    ]
    rewritten = line_diff(before, [f"other {n}" for n in range(1000)])
    assert len(rewritten) == MAX_LINES + 1
    assert rewritten[-1] == Line("hidden", count=2000 - MAX_LINES)
    assert line_diff(before, before) == []


def test_every_other_line_deleted_reads_as_deletions_between_kept_lines():
    # difflib alone spent minutes on 20,000 such lines (a patience diff anchors on the unique lines).
    before = [f"line {n}" for n in range(4000)]
    lines = line_diff(before, before[::2])
    assert lines[:4] == [
        Line("same", "line 0"),
        Line("removed", "line 1"),
        Line("same", "line 2"),
        Line("removed", "line 3"),
    ]
    assert len(lines) == MAX_LINES + 1 and lines[-1] == Line("hidden", count=4000 - MAX_LINES)


def test_a_very_long_line_is_shown_cut():
    [line] = line_diff([], ["word " * 50_000])
    assert line.kind == "added" and len(line.text) == LINE_MAX + 1 and line.text.endswith("…")
