"""Owners read guests' ratings in the transcript, filter Logs by them, see their share in Metrics and
get them in exports; nothing about the guest beyond what they wrote."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

from sqlalchemy import update

from portico.metrics.rollup import recompute
from portico.models import Message, UsageHourly, utcnow
from tests.chat_helpers import say
from tests.conftest import Person, start
from tests.dashboard_helpers import Dashboard, dashboard_client
from tests.test_feedback import rate

KNOWLEDGE = "# Opening hours\nWe are open from 9 to 5 on weekdays."


async def rated_sessions(client, alice: Person) -> tuple[dict, list[int]]:
    """Three sessions: one reply rated down with a reason and a comment, one rated up, one not rated."""
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    ids = []
    for rating in (
        {"rating": "down", "reason": "wrong", "comment": "=It says 9, but it is 10"},
        {"rating": "up"},
        None,
    ):
        session = (await start(client, public_id=assistant["public_id"])).json()
        reply = (await say(client, session, "When are you open?")).json()
        if rating:
            assert (await rate(client, session, reply["message_id"], **rating)).status_code == 200
        ids.append(session["session_id"])
    return assistant, ids


async def test_logs_filter_sessions_rated_down_and_count_ratings(client, alice: Person):
    assistant, (down, up, unrated) = await rated_sessions(client, alice)
    base = f"/api/v1/assistants/{assistant['id']}/sessions"
    listed = (await alice.request("GET", base, params={"rating": "down"})).json()["items"]
    assert [(s["id"], s["rated_up"], s["rated_down"]) for s in listed] == [(down, 0, 1)]
    listed = (await alice.request("GET", base, params={"rating": "up"})).json()["items"]
    assert [s["id"] for s in listed] == [up]
    assert len((await alice.request("GET", base)).json()["items"]) == 3
    refused = await alice.request("GET", base, params={"rating": "meh"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "invalid_request")

    transcript = (await alice.request("GET", f"{base}/{down}")).json()
    reply = transcript["messages"][1]
    assert (reply["rating"], reply["reason"], reply["comment"]) == ("down", "wrong", "=It says 9, but it is 10")
    assert reply["sources"] == ["Opening hours"] and reply["answered"] is True and reply["rated_at"]


async def test_exports_carry_ratings_reasons_and_comments(client, alice: Person):
    assistant, (down, up, unrated) = await rated_sessions(client, alice)
    base = f"/api/v1/assistants/{assistant['id']}/sessions"
    rows = {
        int(r["session_id"]): r for r in csv.DictReader(io.StringIO((await alice.request("GET", f"{base}.csv")).text))
    }
    assert (rows[down]["rated_down"], rows[down]["ratings"]) == ("1", "down (wrong): =It says 9, but it is 10")
    assert (rows[up]["rated_up"], rows[up]["ratings"]) == ("1", "up")
    assert rows[unrated]["ratings"] == ""
    lines = [json.loads(line) for line in (await alice.request("GET", f"{base}.jsonl")).text.splitlines()]
    replies = {line["id"]: line["messages"][1] for line in lines}
    assert (replies[down]["rating"], replies[down]["reason"], replies[down]["comment"]) == (
        "down",
        "wrong",
        "=It says 9, but it is 10",
    )
    assert replies[unrated]["rating"] is None


async def test_metrics_show_the_share_of_replies_rated_up_and_down(client, alice: Person):
    assistant, _ = await rated_sessions(client, alice)
    metrics = (
        await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics", params={"period": "today"})
    ).json()
    totals = metrics["totals"]
    assert (totals["replies"], totals["rated_up"], totals["rated_down"]) == (3, 1, 1)
    assert (totals["rated_up_share"], totals["rated_down_share"]) == (33.3, 33.3)
    (today,) = [b for b in metrics["buckets"] if b["replies"]]
    assert (today["rated_up"], today["rated_down"], today["rated_down_share"]) == (1, 1, 33.3)


async def test_a_late_rating_recounts_the_hour_of_its_reply(app, client, alice: Person):
    assistant, (down, up, unrated) = await rated_sessions(client, alice)
    earlier = utcnow() - timedelta(hours=5)
    async with app.state.sessionmaker() as db, db.begin():
        # The replies were written five hours ago, and counted then.
        await db.execute(update(Message).values(created_at=earlier))
        await recompute(db, start=earlier, end=earlier + timedelta(hours=1))
    async with app.state.sessionmaker() as db, db.begin():
        # The guest changes a rating now; the minute's rollup recomputes only the last two hours.
        await db.execute(update(Message).where(Message.rating == "up").values(rating="down", rated_at=utcnow()))
        await recompute(db, start=utcnow() - timedelta(hours=2), end=utcnow() + timedelta(hours=1))
    async with app.state.sessionmaker() as db:
        row = await db.get(UsageHourly, (assistant["id"], earlier.replace(minute=0, second=0, microsecond=0)))
        assert (row.replies, row.rated_up, row.rated_down) == (3, 0, 2)


async def test_the_dashboard_shows_ratings_in_logs_the_transcript_and_metrics(app, client, alice: Person):
    assistant, (down, up, unrated) = await rated_sessions(client, alice)
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in(alice.email, "correct horse battery")
        base = f"/dashboard/assistants/{assistant['id']}"
        logs = (await web.get(f"{base}/logs", params={"rating": "down"})).text
        assert f"/logs/{down}" in logs and f"/logs/{up}" not in logs and "1 down" in logs
        transcript = (await web.get(f"{base}/logs/{down}")).text
        assert "Rated down by the guest: It was wrong" in transcript
        assert "=It says 9, but it is 10" in transcript and "Sources: Opening hours" in transcript
        metrics = (await web.get(f"{base}/metrics", params={"period": "today"})).text
        assert "Replies rated by guests" in metrics and "33.3%" in metrics
        unanswered = (await web.get(f"{base}/unanswered")).text
        assert "When are you open?" in unanswered and "Rated down: 1" in unanswered
