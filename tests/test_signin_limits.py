"""Wrong passwords lock out whoever types them, from where they type them: a stranger cannot lock
an owner out, and a forged X-Forwarded-For does not buy a fresh count."""

from __future__ import annotations

from contextlib import asynccontextmanager

import httpx
import pytest
from sqlalchemy import select

from portico.config import SettingsError, load_settings
from portico.identity.signin import MAX_ADDRESS_FAILURES, MAX_FAILURES
from portico.models import SignInFailure
from tests.dashboard_helpers import Dashboard

STRANGER = "203.0.113.66"
OWNER_HOME = "198.51.100.7"
PROXY = "10.0.0.2"


@asynccontextmanager
async def browser_at(app, address: str):  # type: ignore[no-untyped-def]
    """A browser whose connection comes from `address` (the socket's peer, as uvicorn reports it)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=(address, 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://portico.test") as http:
        yield Dashboard(http)


async def test_a_stranger_s_wrong_passwords_do_not_lock_the_owner_out(app, alice):
    async with browser_at(app, STRANGER) as stranger, browser_at(app, OWNER_HOME) as owner:
        for _ in range(MAX_FAILURES + 5):
            assert (await stranger.sign_in(alice.email, "guessing")).status_code in (401, 429)
        # The stranger is locked out, even with the right password...
        locked = await stranger.sign_in(alice.email, "correct horse battery")
        assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
        # ...and the owner, from home, signs in at once.
        signed_in = await owner.sign_in(alice.email, "correct horse battery")
        assert signed_in.status_code == 303 and signed_in.headers["location"] == "/dashboard"


async def test_the_owner_s_own_typos_lock_only_that_email_from_that_address(app, alice, bob):
    async with browser_at(app, OWNER_HOME) as owner, browser_at(app, OWNER_HOME) as colleague:
        for _ in range(MAX_FAILURES):
            await owner.sign_in(alice.email, "typo typo")
        assert (await owner.sign_in(alice.email, "correct horse battery")).status_code == 429
        # A colleague behind the same address still gets in to their own account.
        assert (await colleague.sign_in(bob.email, "correct horse battery")).status_code == 303


async def test_rotating_x_forwarded_for_from_an_untrusted_peer_does_not_reset_the_count(app, alice):
    async with browser_at(app, STRANGER) as stranger:
        for i in range(MAX_ADDRESS_FAILURES):
            await stranger.get("/dashboard/sign-in")
            forged = {"X-Forwarded-For": f"192.0.2.{i}", "Accept": "text/html"}
            body = {"csrf": stranger.csrf, "email": f"guess{i}@example.com", "password": "guessing"}
            response = await stranger.http.post("/dashboard/sign-in", data=body, headers=forged)
            assert response.status_code == 401
        await stranger.get("/dashboard/sign-in")
        body = {"csrf": stranger.csrf, "email": alice.email, "password": "correct horse battery"}
        fresh = await stranger.http.post(
            "/dashboard/sign-in", data=body, headers={"X-Forwarded-For": "192.0.2.250", "Accept": "text/html"}
        )
        assert fresh.status_code == 429, "every forged address was counted as the stranger's own"


async def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(app, settings, alice):
    settings.trusted_proxies = f"{PROXY}/32"
    async with browser_at(app, PROXY) as proxy:

        async def through_proxy(client: str, password: str) -> httpx.Response:
            await proxy.get("/dashboard/sign-in")
            body = {"csrf": proxy.csrf, "email": alice.email, "password": password}
            # What the client wrote comes first; the proxy appends the address it saw.
            headers = {"X-Forwarded-For": f"1.2.3.4, {client}", "Accept": "text/html"}
            return await proxy.http.post("/dashboard/sign-in", data=body, headers=headers)

        for _ in range(MAX_FAILURES):
            assert (await through_proxy(STRANGER, "guessing")).status_code == 401
        assert (await through_proxy(STRANGER, "correct horse battery")).status_code == 429
        assert (await through_proxy(OWNER_HOME, "correct horse battery")).status_code == 303


async def test_the_database_never_holds_the_address_a_sign_in_came_from(app, alice):
    async with browser_at(app, STRANGER) as stranger:
        await stranger.sign_in(alice.email, "guessing")
    async with app.state.sessionmaker() as db:
        stored = list(await db.scalars(select(SignInFailure.ip)))
    assert len(stored) == 1 and STRANGER not in stored[0] and len(stored[0]) == 64


@pytest.mark.sqlite_only  # the server's reading of X-Forwarded-For; the counting is checked on both
def test_a_real_server_ignores_x_forwarded_for_from_loopback_unless_told_to_trust_it(app, shared_server, alice):
    """uvicorn trusts X-Forwarded-For from loopback by default; `portico serve` must not."""

    def tries(url: str) -> list[int]:
        statuses = []
        with httpx.Client(base_url=url, headers={"Accept": "text/html"}) as http:
            for i in range(MAX_FAILURES + 1):
                page = http.get("/dashboard/sign-in")
                csrf = page.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
                body = {"csrf": csrf, "email": alice.email, "password": "guessing"}
                response = http.post("/dashboard/sign-in", data=body, headers={"X-Forwarded-For": f"192.0.2.{i}"})
                statuses.append(response.status_code)
        return statuses

    assert tries(shared_server().url)[-1] == 429, "each forged address got a fresh count"
    trusted = shared_server(PORTICO_TRUSTED_PROXIES="127.0.0.1").url
    assert set(tries(trusted)) == {401}, "behind a trusted proxy, each forwarded client counts apart"


def test_a_trusted_proxy_that_is_not_an_address_stops_portico_naming_the_variable():
    with pytest.raises(SettingsError, match="PORTICO_TRUSTED_PROXIES: .*'nginx' is not an address or a network"):
        load_settings(trusted_proxies="127.0.0.1, nginx")
    assert load_settings(trusted_proxies=" 127.0.0.1, 10.0.0.0/8 ,::1").trusted_proxy_networks[1].num_addresses == 2**24
