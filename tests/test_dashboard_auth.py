"""Owners set up, sign in (and get locked out after too many failures), sign out and manage tokens."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from portico.identity.signin import MAX_ADDRESS_FAILURES, locked_until
from portico.models import ApiToken, SignInFailure, utcnow
from tests.dashboard_helpers import Dashboard, dashboard_client


@pytest.fixture
async def web(app):
    async with dashboard_client(app) as http:
        yield Dashboard(http)


async def test_first_run_asks_for_the_first_owner_once(web):
    response = await web.get("/dashboard")
    assert response.headers["location"] == "/dashboard/sign-in?next=/dashboard"
    assert (await web.get("/dashboard/sign-in")).headers["location"] == "/dashboard/setup"
    assert "Create the first owner" in (await web.get("/dashboard/setup")).text
    created = await web.post("/dashboard/setup", {"email": "Teacher@School.example", "password": "long enough"})
    assert created.headers["location"] == "/dashboard"
    cookie = created.headers["set-cookie"]
    assert "portico_session=pds_" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
    assert (await web.get("/dashboard")).status_code == 200
    # Setup is closed once an owner exists, and so is sign-up.
    web.http.cookies.clear()
    assert (await web.get("/dashboard/setup")).headers["location"] == "/dashboard/sign-in"
    await web.get("/dashboard/sign-in")
    again = await web.post("/dashboard/setup", {"email": "intruder@example.com", "password": "long enough"})
    assert again.headers["location"] == "/dashboard/sign-in"
    closed = await web.post("/dashboard/sign-up", {"email": "intruder@example.com", "password": "long enough"})
    assert closed.status_code == 403 and "Sign-up is closed" in closed.text


async def test_setup_refuses_bad_email_and_short_password_next_to_the_field(web):
    await web.get("/dashboard/setup")
    response = await web.post("/dashboard/setup", {"email": "not-an-email", "password": "long enough"})
    assert response.status_code == 422 and "is not an email address" in response.text
    response = await web.post("/dashboard/setup", {"email": "a@b.example", "password": "short"})
    assert response.status_code == 422 and "at least 8 characters" in response.text
    assert 'aria-invalid="true"' in response.text


async def test_open_signup_lets_more_owners_in(app, settings, alice):
    settings.open_signup = True
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.get("/dashboard/sign-up")
        response = await web.post("/dashboard/sign-up", {"email": "new@example.com", "password": "long enough"})
        assert response.headers["location"] == "/dashboard"


async def test_a_new_accounts_team_is_named_after_the_person_never_the_email(app, settings, alice):
    settings.open_signup = True
    for name, email, team in (
        ("  John   Smith ", "john@example.com", "John Smith's team"),
        ("", "anon@example.com", "My team"),
        ("x" * 300, "long@example.com", "x" * 193 + "'s team"),
    ):
        async with dashboard_client(app) as http:
            web = Dashboard(http)
            form = (await web.get("/dashboard/sign-up")).text
            assert 'name="name"' in form and "Your name" in form
            created = await web.post("/dashboard/sign-up", {"name": name, "email": email, "password": "long enough"})
            assert created.headers["location"] == "/dashboard", created.text
            page = (await web.get("/dashboard/team")).text
            assert f"<h1>{team.replace(chr(39), '&#39;')} <span" in page and email not in page.split("<h1>")[1][:300]
            # The Owner may rename it.
            renamed = await web.post("/dashboard/team/name", {"name": "Physics department"})
            assert renamed.status_code == 303
            assert "<h1>Physics department" in (await web.get("/dashboard/team")).text
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        await web.get("/dashboard/sign-up")
        refused = await web.post(
            "/dashboard/sign-up", {"name": "Ann", "email": "not-an-email", "password": "long enough"}
        )
        assert refused.status_code == 422 and 'value="Ann"' in refused.text  # kept in the form


async def test_sign_in_out_and_a_wrong_password(web, alice):
    wrong = await web.sign_in(alice.email, "not the password")
    assert wrong.status_code == 401 and "do not match an account" in wrong.text
    unknown = await web.sign_in("nobody@example.com", "whatever123")
    assert unknown.status_code == 401 and "do not match an account" in unknown.text
    right = await web.sign_in(alice.email, "correct horse battery")
    assert right.headers["location"] == "/dashboard"
    assert (await web.get("/dashboard")).status_code == 200
    await web.post("/dashboard/sign-out")
    assert (await web.get("/dashboard")).status_code == 303


async def test_ten_failures_lock_the_email_for_fifteen_minutes(app, web, alice):
    for _ in range(10):
        assert (await web.sign_in(alice.email, "wrong password")).status_code == 401
    locked = await web.sign_in(alice.email, "correct horse battery")
    assert locked.status_code == 429
    assert "Too many failed sign-ins" in locked.text and "15 minutes" in locked.text
    # Sixteen minutes later the lock has passed.
    async with app.state.sessionmaker() as db:
        await db.execute(update(SignInFailure).values(at=utcnow() - timedelta(minutes=16)))
        await db.commit()
    assert (await web.sign_in(alice.email, "correct horse battery")).status_code == 303


async def test_failures_from_one_address_lock_every_email(web, alice):
    for i in range(MAX_ADDRESS_FAILURES):
        await web.sign_in(f"guess{i}@example.com", "wrong password")
    assert (await web.sign_in(alice.email, "correct horse battery")).status_code == 429


def test_the_lock_lasts_fifteen_minutes_from_the_tenth_failure():
    now = utcnow()
    spread = [now - timedelta(minutes=40) + timedelta(minutes=3 * i) for i in range(10)]
    assert locked_until(spread, now) is None, "ten failures over 27 minutes are not a burst"
    burst = [now - timedelta(minutes=5, seconds=i) for i in range(10)]
    assert locked_until(burst, now) == max(burst) + timedelta(minutes=15)


async def test_forms_without_the_csrf_token_are_refused(web, alice):
    await web.sign_in(alice.email, "correct horse battery")
    response = await web.http.post("/dashboard/assistants", data={"name": "Sneaky"}, headers={"Accept": "text/html"})
    assert response.status_code == 403 and "came from another site" in response.text
    response = await web.http.post(
        "/dashboard/assistants", data={"name": "Sneaky", "csrf": "forged"}, headers={"Accept": "text/html"}
    )
    assert response.status_code == 403
    assert "Sneaky" not in (await web.get("/dashboard")).text


async def test_a_form_token_from_before_sign_in_or_from_another_session_is_refused(app, web, alice):
    await web.get("/dashboard/sign-in")
    before = web.csrf
    await web.sign_in(alice.email, "correct horse battery")
    await web.get("/dashboard")
    assert web.csrf and web.csrf != before
    create = {"name": "Sneaky"}
    for token in (before, "\u00e9t\u00e9"):
        refused = await web.http.post(
            "/dashboard/assistants", data={**create, "csrf": token}, headers={"Accept": "text/html"}
        )
        assert refused.status_code == 403 and "you signed in or out since it was shown" in refused.text
    async with dashboard_client(app) as http:
        other = Dashboard(http)
        await other.sign_in(alice.email, "correct horse battery")
        await other.get("/dashboard")
        assert other.csrf != web.csrf
        stolen = await web.http.post(
            "/dashboard/assistants", data={**create, "csrf": other.csrf}, headers={"Accept": "text/html"}
        )
        assert stolen.status_code == 403
    assert "Sneaky" not in (await web.get("/dashboard")).text
    assert (await web.post("/dashboard/assistants", {"name": "Mine"})).status_code == 303


async def test_changing_the_password_signs_out_other_browsers(app, alice):
    async with dashboard_client(app) as one, dashboard_client(app) as two:
        first, second = Dashboard(one), Dashboard(two)
        await first.sign_in(alice.email, "correct horse battery")
        await second.sign_in(alice.email, "correct horse battery")
        await first.get("/dashboard/account")
        bad = await first.post("/dashboard/account/password", {"current": "wrong", "new": "a new password"})
        assert bad.status_code == 422 and "current password is not right" in bad.text
        done = await first.post(
            "/dashboard/account/password", {"current": "correct horse battery", "new": "a new password"}
        )
        assert done.headers["location"] == "/dashboard/account?done=password"
        assert (await first.get("/dashboard")).status_code == 200
        assert (await second.get("/dashboard")).status_code == 303
        assert (await second.sign_in(alice.email, "a new password")).status_code == 303


async def test_api_tokens_are_shown_once_listed_and_revoked(app, web, alice):
    await web.sign_in(alice.email, "correct horse battery")
    await web.get("/dashboard/tokens")
    assert (await web.post("/dashboard/tokens", {"name": " "})).status_code == 422
    created = await web.post("/dashboard/tokens", {"name": "Grading script"})
    # Post/Redirect/Get: a reload of the page that shows the token does not make another one.
    assert (created.status_code, created.headers["location"]) == (303, "/dashboard/tokens")
    assert "pto_" not in created.headers["location"] + created.headers["set-cookie"]
    shown = await web.get("/dashboard/tokens")
    token = shown.text.split('id="new-token" class="mono" type="text" readonly value="')[1].split('"')[0]
    assert token.startswith("pto_") and shown.headers["cache-control"] == "no-store"
    listing = await web.get("/dashboard/tokens")
    assert "Grading script" in listing.text and token not in listing.text
    async with app.state.sessionmaker() as db:
        assert await db.scalar(select(func.count()).where(ApiToken.name == "Grading script")) == 1
    headers = {"Authorization": f"Bearer {token}"}
    assert (await web.http.get("/api/v1/assistants", headers=headers)).status_code == 200
    async with app.state.sessionmaker() as db:
        token_id = await db.scalar(select(ApiToken.id).where(ApiToken.name == "Grading script"))
    await web.post(f"/dashboard/tokens/{token_id}/revoke")
    assert (await web.http.get("/api/v1/assistants", headers=headers)).status_code == 401


async def test_cookies_are_secure_when_served_over_https(app, settings, alice):
    settings.base_url = "https://portico.example"
    async with dashboard_client(app) as http:
        web = Dashboard(http)
        response = await web.sign_in(alice.email, "correct horse battery")
    assert "Secure" in response.headers["set-cookie"]
