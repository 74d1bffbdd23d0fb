"""Metrics: counts, percentiles, refusals by reason and per-user usage, from the hourly rollups."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from portico.metrics import service as metrics_service
from portico.metrics.charts import bar_chart
from portico.metrics.histogram import histogram, merge_all, percentile
from portico.metrics.rollup import hour_of
from portico.models import ChatSession, utcnow
from tests.chat_helpers import bearer, say
from tests.conftest import Person, key_of, start
from tests.upstream import upstream_server

FAQ = "# Parking\nParking is free behind the building.\n# Hours\nWe are open from 9 to 5."


async def metrics(alice: Person, assistant_id: int, **query: str) -> dict:
    response = await alice.request("GET", f"/api/v1/assistants/{assistant_id}/metrics", params=query)
    assert response.status_code == 200, response.text
    return response.json()


async def test_metrics_count_sessions_messages_users_and_refusals(client, alice: Person):
    assistant = await alice.new_assistant(knowledge=FAQ, share="private")
    links = await alice.new_links(assistant["id"], 2, 0)
    for link in links:
        session = (await start(client, key=key_of(link), channel="widget")).json()
        await say(client, session, "Where can I park?")
        await client.post(f"/api/v1/chat/sessions/{session['session_id']}/end", headers=bearer(session))
    await start(client, key=key_of(links[0]))  # second use of two
    await start(client, key=key_of(links[0]))  # exhausted
    await start(client, public_id=assistant["public_id"])  # key required
    await start(client, key="ptk_" + "A" * 43)  # unknown key alone: no assistant to count it for
    await alice.request("DELETE", f"/api/v1/assistants/{assistant['id']}/links/{links[1]['id']}")
    await start(client, key=key_of(links[1]))  # revoked
    await alice.request("PUT", f"/api/v1/assistants/{assistant['id']}/status", json={"status": "offline"})
    await start(client, key=key_of(links[0]))  # offline

    result = await metrics(alice, assistant["id"], period="today", bucket="hour")
    totals = result["totals"]
    assert (totals["sessions"], totals["messages"], totals["unique_users"]) == (3, 4, 2)
    assert totals["sessions_ended"] == 3  # two by the guest, one by going offline
    assert totals["p50_first_token_ms"] is not None and totals["avg_duration_seconds"] is not None
    assert totals["tokens_out"] > 0 and totals["engine_errors"] == 0
    assert {k: v for k, v in result["refusals"].items() if v} == {
        "link_exhausted": 1,
        "key_required": 1,
        "link_revoked": 1,
        "assistant_offline": 1,
    }
    assert result["channels"] == {"widget": 2, "link": 1}
    assert sum(b["sessions"] for b in result["buckets"]) == 3 and len(result["buckets"]) >= 1
    users = {u["name"]: u for u in result["users"]}
    assert (users["User 1"]["sessions_used"], users["User 1"]["max_sessions"], users["User 1"]["messages"]) == (2, 2, 2)
    assert users["User 2"]["revoked"] is True and users["User 2"]["last_seen"] is not None


async def test_owner_previews_never_count(client, alice: Person, app):
    from portico.assistants.service import get_owned
    from portico.chat.preview import start_preview

    assistant = await alice.new_assistant(knowledge=FAQ)
    async with app.state.sessionmaker() as db:
        owned = await get_owned(db, team_id=1, assistant_id=assistant["id"])
        await start_preview(db, assistant=owned, use_published=False)
        await db.commit()
    assert (await metrics(alice, assistant["id"], period="today"))["totals"]["sessions"] == 0


async def test_a_session_of_the_last_seconds_of_the_hour_counts_as_soon_as_the_next_begins(
    client, alice: Person, app, monkeypatch
):
    # A page read at HH:00:30 (three days ago, so that no rollup run has counted that hour) of a
    # session started at HH-1:59:50: the minutely chore has not recomputed the hour before yet.
    assistant = await alice.new_assistant(knowledge=FAQ)
    session = (await start(client, public_id=assistant["public_id"])).json()
    read_at = hour_of(utcnow() - timedelta(days=3)) + timedelta(seconds=30)
    async with app.state.sessionmaker() as db, db.begin():
        await db.execute(
            update(ChatSession)
            .where(ChatSession.id == session["session_id"])
            .values(started_at=read_at - timedelta(seconds=40))
        )
    monkeypatch.setattr(metrics_service, "utcnow", lambda: read_at)
    async with app.state.sessionmaker() as db:
        read = await metrics_service.metrics(
            db, assistant_id=assistant["id"], start=read_at - timedelta(hours=2), end=read_at, bucket="hour"
        )
    assert read.totals["sessions"] == 1


async def test_engine_errors_are_counted(client, alice: Person):
    with upstream_server() as (base_url, _seen):
        assistant = await alice.new_assistant(engine={"type": "openai", "base_url": base_url, "model": "fail"})
        session = (await start(client, public_id=assistant["public_id"])).json()
        await say(client, session, "Hello?")
    assert (await metrics(alice, assistant["id"], period="7d"))["totals"]["engine_errors"] == 1


@pytest.mark.parametrize(
    "query",
    [
        {"period": "forever"},
        {"bucket": "minute"},
        {"period": "custom", "from": "2026-11-10", "to": "2026-11-01"},
        {"period": "custom", "from": "2020-01-01", "to": "2026-01-01", "bucket": "hour"},
        {"period": "custom", "from": "soon"},
    ],
)
async def test_bad_periods_are_refused(client, alice: Person, query):
    assistant = await alice.new_assistant(knowledge=FAQ)
    response = await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/metrics", params=query)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_request"


def test_percentiles_from_merged_histograms_are_within_a_bin():
    fast = [10.0] * 50
    slow = [1000.0] * 50
    merged = merge_all([histogram(fast), [], histogram(slow)])
    assert 8 <= percentile(merged, 0.25) <= 12.5
    assert 830 <= percentile(merged, 0.95) <= 1250
    assert percentile(histogram([]), 0.5) is None


def test_charts_are_svg_with_titles_for_screen_readers():
    svg = str(bar_chart("c1", "Sessions per day", ["Nov 01", "Nov 02"], [3, 0]))
    assert svg.startswith("<svg") and 'role="img"' in svg
    assert '<title id="c1-t">Sessions per day</title>' in svg and "<title>Nov 01: 3</title>" in svg
    assert "<script" not in svg and "style=" not in svg
    assert "&lt;b&gt;" in str(bar_chart("c2", "<b>", ["<i>"], [1]))


async def test_a_refused_lookup_counts_only_when_the_page_asks_once(client, alice: Person):
    assistant = await alice.new_assistant(share="private")
    lookup = {"public_id": assistant["public_id"]}
    for _ in range(3):  # later lookups of a page load, and other callers, count nothing
        refused = await client.post("/api/v1/chat/lookup", json=lookup)
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "key_required"
    assert (await client.post("/api/v1/chat/lookup", json={**lookup, "count": True})).status_code == 403
    await client.post("/api/v1/chat/lookup", json={"key": "ptk_" + "A" * 43, "count": True})  # no assistant named
    result = await metrics(alice, assistant["id"], period="today", bucket="hour")
    assert {k: v for k, v in result["refusals"].items() if v} == {"key_required": 1}


async def test_every_wrong_access_code_a_guest_types_is_counted(client, alice: Person):
    assistant = await alice.new_assistant()
    share = await alice.request(
        "PUT", f"/api/v1/assistants/{assistant['id']}/share", json={"mode": "public", "access_code": "open sesame"}
    )
    assert share.status_code == 200, share.text
    lookup = {"public_id": assistant["public_id"]}
    # The chat page: its first lookup asks to be counted, the code form's lookups do not.
    assert (await client.post("/api/v1/chat/lookup", json={**lookup, "count": True})).status_code == 403
    for code in ("open", "sesame"):
        refused = await client.post("/api/v1/chat/lookup", json={**lookup, "access_code": code})
        assert refused.json()["error"]["code"] == "access_code_invalid"
    assert (await start(client, public_id=assistant["public_id"], access_code="nope")).status_code == 403
    assert (await client.post("/api/v1/chat/lookup", json={**lookup, "access_code": "open sesame"})).status_code == 200
    result = await metrics(alice, assistant["id"], period="today", bucket="hour")
    assert {k: v for k, v in result["refusals"].items() if v} == {"access_code_required": 1, "access_code_invalid": 3}


def moment(value: object) -> datetime:
    """A bound datetime as naive UTC (SQLite's driver gets them as text)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value
    return datetime.fromisoformat(str(value))


async def test_a_metrics_page_reads_only_recent_messages_and_the_periods_user_rows(app, client, alice: Person):
    """Issue 22: Metrics read rollups, not the day's messages (quotas' use), nor every hour of history
    per user: the only statements on messages are the recompute of the last hour or two."""
    from sqlalchemy import event

    assistant = await alice.new_assistant(knowledge=FAQ, share="private")
    (link,) = await alice.new_links(assistant["id"], 0)
    session = (await start(client, key=key_of(link))).json()
    await say(client, session, "Where can I park?")
    statements: list[tuple[str, object]] = []

    def seen(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    engine = app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        read = await metrics(alice, assistant["id"], period="30d")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert read["totals"]["sessions"] == 1 and read["quotas"]["tokens_per_day"]["used"] > 0
    assert read["totals"]["unique_users"] == 1 and read["users"][0]["messages"] == 2
    recent = hour_of(utcnow() - timedelta(minutes=3))
    for statement, parameters in statements:
        values = parameters.values() if isinstance(parameters, dict) else parameters
        moments = [moment(v) for v in values if hasattr(v, "year") or re.match(r"\d{4}-\d\d-\d\d ", str(v))]
        if re.search(r"(FROM|JOIN) messages\b", statement):
            assert moments and min(moments) >= recent.replace(tzinfo=None), statement
        if "messages.rated_at >=" in statement:
            # Replies rated late are found through the partial index of rated replies, which the
            # planner uses only when the statement says what the index covers.
            assert "messages.rating IS NOT NULL" in statement, statement
        if "FROM usage_user_hourly" in statement:
            assert "usage_user_hourly.hour >=" in statement, statement
