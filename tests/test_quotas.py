"""An owner's quotas cap what guests may use, at once and exactly, however many arrive together:
messages per session, sessions per day and tokens per day (0 = unlimited)."""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from portico.metrics.quotas import seconds_to_next_day
from tests.chat_helpers import say
from tests.conftest import Person, key_of, start
from tests.dashboard_helpers import Dashboard, dashboard_client

KNOWLEDGE = "# Parking\nParking is free behind the building.\n\n# Hours\nOpening hours are 9 to 5."


async def capped(alice: Person, **quotas: int) -> dict:
    assistant = await alice.new_assistant(knowledge=KNOWLEDGE)
    if quotas:
        await set_quotas(alice, assistant["id"], **quotas)
    return assistant


async def set_quotas(alice: Person, assistant_id: int, **quotas: int) -> dict:
    response = await alice.request("PATCH", f"/api/v1/assistants/{assistant_id}", json={"quotas": quotas})
    assert response.status_code == 200, response.text
    return response.json()


def outcome(response: httpx.Response) -> int | str:
    return response.status_code if response.status_code in (200, 201) else response.json()["error"]["code"]


async def metrics_today(alice: Person, assistant_id: int) -> dict:
    response = await alice.request("GET", f"/api/v1/assistants/{assistant_id}/metrics?period=today&bucket=hour")
    assert response.status_code == 200, response.text
    return response.json()


async def test_fifty_messages_at_once_in_a_session_capped_at_five_admit_exactly_five(client, alice: Person):
    assistant = await capped(alice, messages_per_session=5)
    session = (await start(client, public_id=assistant["public_id"])).json()
    replies = await asyncio.gather(*(say(client, session, "Where can I park?") for _ in range(50)))

    assert Counter(outcome(r) for r in replies) == Counter({200: 5, "message_limit_reached": 45})
    refused = next(r for r in replies if r.status_code != 200)
    assert refused.status_code == 429
    assert refused.json()["error"]["message"].startswith("This conversation has reached its message limit.")
    logged = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions")).json()["items"][0]
    assert logged["messages"] == 10  # five messages and their five replies
    assert (await metrics_today(alice, assistant["id"]))["refusals"]["message_limit_reached"] == 45


async def test_a_new_session_gets_its_own_messages_after_the_last_one_ran_out(client, alice: Person):
    assistant = await capped(alice, messages_per_session=1)
    first = (await start(client, public_id=assistant["public_id"])).json()
    assert outcome(await say(client, first, "Where can I park?")) == 200
    assert outcome(await say(client, first, "And the hours?")) == "message_limit_reached"
    second = (await start(client, public_id=assistant["public_id"])).json()
    assert outcome(await say(client, second, "And the hours?")) == 200


async def test_fifty_starts_at_once_on_a_day_capped_at_seven_admit_seven_and_refused_ones_take_no_use(
    client, alice: Person
):
    assistant = await capped(alice, sessions_per_day=7)
    (link,) = await alice.new_links(assistant["id"], 100)
    starts = await asyncio.gather(*(start(client, key=key_of(link)) for _ in range(50)))

    assert Counter(outcome(r) for r in starts) == Counter({201: 7, "daily_limit_reached": 43})
    listed = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"][0]
    assert listed["sessions_used"] == 7
    logged = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/sessions")).json()["items"]
    assert len(logged) == 7
    today = await metrics_today(alice, assistant["id"])
    assert today["refusals"]["daily_limit_reached"] == 43
    assert today["quotas"]["sessions_per_day"] == {"cap": 7, "used": 7}


async def test_anonymous_starts_at_once_are_capped_exactly_too(client, alice: Person):
    assistant = await capped(alice, sessions_per_day=3)
    starts = await asyncio.gather(*(start(client, public_id=assistant["public_id"]) for _ in range(30)))
    assert Counter(outcome(r) for r in starts) == Counter({201: 3, "daily_limit_reached": 27})


async def test_a_guest_past_the_daily_limit_is_told_to_come_back_at_midnight_utc(client, alice: Person):
    assistant = await capped(alice, sessions_per_day=1)
    assert outcome(await start(client, public_id=assistant["public_id"])) == 201
    before = datetime.now(UTC)
    refused = await start(client, public_id=assistant["public_id"])
    after = datetime.now(UTC)

    assert refused.status_code == 429
    assert refused.json()["error"] == {
        "code": "daily_limit_reached",
        "message": "This assistant has had all the conversations it can have today. Try again tomorrow.",
    }
    assert seconds_to_next_day(after) <= int(refused.headers["Retry-After"]) <= seconds_to_next_day(before)


def test_retry_after_counts_whole_seconds_to_the_next_utc_midnight():
    assert seconds_to_next_day(datetime(2026, 11, 30, 23, 59, 30, tzinfo=UTC)) == 30
    assert seconds_to_next_day(datetime(2026, 11, 30, 23, 59, 59, 500_000, tzinfo=UTC)) == 1
    assert seconds_to_next_day(datetime(2026, 11, 30, 0, 0, tzinfo=UTC)) == 86_400


async def test_the_reply_that_crosses_the_token_cap_completes_and_the_next_message_and_start_are_refused(
    client, alice: Person
):
    assistant = await capped(alice, tokens_per_day=5)
    session = (await start(client, public_id=assistant["public_id"])).json()
    crossing = await say(client, session, "Where can I park?")
    assert crossing.status_code == 200
    spent = crossing.json()["tokens_in"] + crossing.json()["tokens_out"]
    assert spent > 5

    refused = await say(client, session, "And the hours?")
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "daily_limit_reached")
    assert int(refused.headers["Retry-After"]) > 0
    assert outcome(await start(client, public_id=assistant["public_id"])) == "daily_limit_reached"
    today = await metrics_today(alice, assistant["id"])
    assert today["quotas"]["tokens_per_day"] == {"cap": 5, "used": spent}
    assert today["refusals"]["daily_limit_reached"] == 2


async def test_a_cap_set_after_some_sessions_today_counts_them(client, alice: Person):
    assistant = await capped(alice)
    for _ in range(3):
        assert outcome(await start(client, public_id=assistant["public_id"])) == 201
    await set_quotas(alice, assistant["id"], sessions_per_day=4)

    assert outcome(await start(client, public_id=assistant["public_id"])) == 201
    assert outcome(await start(client, public_id=assistant["public_id"])) == "daily_limit_reached"
    assert (await metrics_today(alice, assistant["id"]))["quotas"]["sessions_per_day"] == {"cap": 4, "used": 4}


async def test_a_token_cap_set_after_todays_replies_counts_them(client, alice: Person):
    assistant = await capped(alice)
    session = (await start(client, public_id=assistant["public_id"])).json()
    reply = (await say(client, session, "Where can I park?")).json()
    spent = reply["tokens_in"] + reply["tokens_out"]
    await set_quotas(alice, assistant["id"], tokens_per_day=spent)

    assert outcome(await say(client, session, "And the hours?")) == "daily_limit_reached"
    await set_quotas(alice, assistant["id"], tokens_per_day=spent + 1)
    assert outcome(await say(client, session, "And the hours?")) == 200


async def test_lowering_a_cap_below_todays_use_refuses_the_next_start(client, alice: Person):
    assistant = await capped(alice, sessions_per_day=5)
    for _ in range(3):
        assert outcome(await start(client, public_id=assistant["public_id"])) == 201
    await set_quotas(alice, assistant["id"], sessions_per_day=2)
    assert outcome(await start(client, public_id=assistant["public_id"])) == "daily_limit_reached"
    await set_quotas(alice, assistant["id"], sessions_per_day=4)
    assert outcome(await start(client, public_id=assistant["public_id"])) == 201


async def test_zero_means_unlimited_and_turning_a_cap_off_admits_again(client, alice: Person):
    assistant = await capped(alice, messages_per_session=1, sessions_per_day=1)
    session = (await start(client, public_id=assistant["public_id"])).json()
    assert outcome(await say(client, session, "Where can I park?")) == 200
    assert outcome(await start(client, public_id=assistant["public_id"])) == "daily_limit_reached"
    assert outcome(await say(client, session, "And the hours?")) == "message_limit_reached"

    await set_quotas(alice, assistant["id"], messages_per_session=0, sessions_per_day=0)
    assert outcome(await say(client, session, "And the hours?")) == 200
    assert [outcome(await start(client, public_id=assistant["public_id"])) for _ in range(3)] == [201, 201, 201]


async def test_a_session_that_ended_is_still_told_it_ended_not_that_it_is_capped(client, alice: Person):
    assistant = await capped(alice, messages_per_session=1, tokens_per_day=1_000)
    session = (await start(client, public_id=assistant["public_id"])).json()
    await client.post(
        f"/api/v1/chat/sessions/{session['session_id']}/end", headers={"Authorization": f"Bearer {session['token']}"}
    )
    assert outcome(await say(client, session, "Where can I park?")) == "session_ended"


async def test_quotas_apply_at_once_without_publish_and_only_the_ones_given_change(alice: Person):
    assistant = await capped(alice)
    assert assistant["quotas"] == {"messages_per_session": 0, "sessions_per_day": 0, "tokens_per_day": 0}
    changed = await set_quotas(alice, assistant["id"], messages_per_session=20, tokens_per_day=50_000)
    changed = await set_quotas(alice, assistant["id"], sessions_per_day=100)
    assert changed["quotas"] == {"messages_per_session": 20, "sessions_per_day": 100, "tokens_per_day": 50_000}
    assert changed["has_unpublished_changes"] is False


@pytest.mark.parametrize(
    "quotas",
    [{"messages_per_session": -1}, {"sessions_per_day": "5"}, {"tokens_per_day": 1.5}, {"per_hour": 3}],
)
async def test_negative_or_malformed_quotas_are_refused_with_422(alice: Person, quotas: dict):
    assistant = await capped(alice)
    response = await alice.request("PATCH", f"/api/v1/assistants/{assistant['id']}", json={"quotas": quotas})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_request"
    assert next(iter(quotas)) in response.json()["error"]["message"]
    stored = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()
    assert stored["quotas"] == {"messages_per_session": 0, "sessions_per_day": 0, "tokens_per_day": 0}


async def test_the_owners_preview_is_never_capped_nor_counted(app, client, alice: Person):
    assistant = await capped(alice, messages_per_session=1, sessions_per_day=1, tokens_per_day=1)
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in(alice.email, "correct horse battery")
        base = f"/dashboard/assistants/{assistant['id']}"
        await web.get(f"{base}/preview")
        for _ in range(2):
            started = await web.post(f"{base}/preview/sessions", {"use": "published"})
            assert started.status_code == 201
            for question in ("Where can I park?", "And the hours?"):
                path = f"{base}/preview/sessions/{started.json()['session_id']}/messages"
                assert (await web.post(path, {"content": question})).status_code == 200
    today = await metrics_today(alice, assistant["id"])
    assert today["quotas"]["sessions_per_day"]["used"] == 0
    assert today["quotas"]["tokens_per_day"]["used"] == 0
    assert outcome(await start(client, public_id=assistant["public_id"])) == 201


def field_errors(page: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="([a-z_]+)-error">([^<]+)</p>', page))


async def test_the_limits_card_saves_at_once_and_shows_each_error_beside_its_field(app, alice: Person):
    assistant = await capped(alice)
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.sign_in(alice.email, "correct horse battery")
        path = f"/dashboard/assistants/{assistant['id']}"
        await web.get(f"{path}/behavior")
        refused = await web.post(
            f"{path}/limits", {"messages_per_session": "-3", "sessions_per_day": "lots", "tokens_per_day": ""}
        )
        assert refused.status_code == 422
        assert field_errors(refused.text) == {
            "messages_per_session": "Messages per session must be at least 0.",
            "sessions_per_day": "Sessions per day must be a whole number.",
        }
        assert 'value="lots"' in refused.text
        unchanged = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()["quotas"]
        assert unchanged == {"messages_per_session": 0, "sessions_per_day": 0, "tokens_per_day": 0}

        saved = await web.post(
            f"{path}/limits", {"messages_per_session": "30", "sessions_per_day": " 200 ", "tokens_per_day": ""}
        )
        assert saved.status_code == 303
        page = await web.get(saved.headers["location"])
        assert "Limits saved. They apply at once." in page.text
        assert 'id="sessions_per_day" name="sessions_per_day" type="number" min="0" value="200"' in page.text
        stored = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}")).json()
        assert stored["quotas"] == {"messages_per_session": 30, "sessions_per_day": 200, "tokens_per_day": 0}

        metrics = await web.get(f"{path}/metrics?period=today")
        assert metrics.status_code == 200
        assert "Today&#39;s use against limits" in metrics.text or "Today's use against limits" in metrics.text


async def test_a_day_of_counts_is_its_own_row_so_yesterday_never_caps_today(app, client, alice: Person):
    from portico.models import DailyUsage

    assistant = await capped(alice, sessions_per_day=1)
    yesterday = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    async with app.state.sessionmaker() as db:
        db.add(DailyUsage(assistant_id=assistant["id"], day=yesterday, sessions=1, tokens=0))
        await db.commit()
    assert outcome(await start(client, public_id=assistant["public_id"])) == 201
    assert outcome(await start(client, public_id=assistant["public_id"])) == "daily_limit_reached"


def test_an_operator_sets_quotas_from_the_command_line(settings):
    from typer.testing import CliRunner

    from portico import cli
    from tests.servers import portico_env

    runner, env = CliRunner(), portico_env(settings)

    def portico(*args: str, stdin: str | None = None):
        return runner.invoke(cli.app, list(args), input=stdin, env=env)

    assert (
        portico("owners", "create", "ops@example.com", "--password-stdin", stdin="long enough password\n").exit_code
        == 0
    )
    assistant_id = portico("assistants", "create", "--name", "Helper").stdout.split(",")[0]
    done = portico("assistants", "quotas", assistant_id, "--sessions-per-day", "3")
    assert (done.exit_code, done.stdout.strip()) == (0, "messages_per_session=0 sessions_per_day=3 tokens_per_day=0")
    done = portico("assistants", "quotas", assistant_id, "--tokens-per-day", "900")
    assert done.stdout.strip() == "messages_per_session=0 sessions_per_day=3 tokens_per_day=900"
    refused = portico("assistants", "quotas", assistant_id, "--tokens-per-day", "-1")
    assert refused.exit_code == 1 and "tokens_per_day" in refused.stderr and "Traceback" not in refused.stderr


async def test_the_openai_compatible_endpoint_is_capped_by_the_day_too_and_takes_no_use(client, alice: Person):
    assistant = await capped(alice, sessions_per_day=1)
    (link,) = await alice.new_links(assistant["id"], 5)
    headers = {"Authorization": f"Bearer {key_of(link)}"}
    body = {"model": assistant["public_id"], "messages": [{"role": "user", "content": "Where can I park?"}]}
    assert (await client.post("/v1/chat/completions", json=body, headers=headers)).status_code == 200
    refused = await client.post("/v1/chat/completions", json=body, headers=headers)
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "daily_limit_reached")
    assert int(refused.headers["Retry-After"]) > 0
    listed = (await alice.request("GET", f"/api/v1/assistants/{assistant['id']}/links")).json()["items"][0]
    assert listed["sessions_used"] == 1
