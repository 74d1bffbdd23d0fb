"""A team of four for the tests: alice (Owner), ada (Admin), ed (Editor) and tim (Editor, the one
roles are changed on), each with an API token and a signed-in dashboard; bob is in another team."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import delete, update

from portico.identity import members, signin, tokens
from portico.identity.accounts import create_owner, get_account
from portico.identity.roles import Member
from portico.models import Membership
from portico.models import Team as TeamRow
from portico.vocabulary import TeamRole
from portico.web.forms import SESSION_COOKIE, session_csrf
from tests.conftest import BASE_URL, Person

PASSWORD = "correct horse battery"
ROLES = {"alice": TeamRole.OWNER, "ada": TeamRole.ADMIN, "ed": TeamRole.EDITOR, "tim": TeamRole.EDITOR}


@dataclass
class Team:
    app: object
    id: int
    name: str
    accounts: dict[str, int] = field(default_factory=dict)

    async def reset(self) -> None:
        """Everyone back to their role (a test may have transferred, removed, demoted or deleted the team)."""
        async with self.app.state.sessionmaker() as db:  # type: ignore[attr-defined]
            await db.execute(update(TeamRow).where(TeamRow.id == self.id).values(deleted_at=None, name=self.name))
            await db.execute(delete(Membership).where(Membership.team_id == self.id))
            for name, role in ROLES.items():
                db.add(Membership(team_id=self.id, owner_id=self.accounts[name], role=role))
            await db.commit()

    def member(self, name: str, role: TeamRole | None = None) -> Member:
        return Member(
            account_id=self.accounts[name],
            email=f"{name}@example.com",
            team_id=self.id,
            team_name=self.name,
            role=role or ROLES[name],
        )

    async def token(self, name: str) -> tuple[int, str]:
        async with self.app.state.sessionmaker() as db:  # type: ignore[attr-defined]
            token, plain = await tokens.create_api_token(db, member=self.member(name), name="tests")
            await db.commit()
        return token.id, plain

    async def person(self, http: httpx.AsyncClient, name: str) -> Person:
        return Person(email=f"{name}@example.com", token=(await self.token(name))[1], http=http)

    async def browser(self, name: str) -> Browser:
        """A dashboard signed in as `name`, working in this team (no password hashing: fast)."""
        async with self.app.state.sessionmaker() as db:  # type: ignore[attr-defined]
            account = await get_account(db, self.accounts[name])
            token = await signin.open_session(db, owner=account, days=1, team_id=self.id)
            await db.commit()
        transport = httpx.ASGITransport(app=self.app, raise_app_exceptions=False)  # type: ignore[arg-type]
        http = httpx.AsyncClient(transport=transport, base_url=BASE_URL)
        http.cookies.set(SESSION_COOKIE, token)
        return Browser(http, session_csrf(token))


@dataclass
class Browser:
    http: httpx.AsyncClient
    csrf: str

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path, headers={"Accept": "text/html"})

    async def post(self, path: str, data: dict | None = None) -> httpx.Response:
        return await self.http.post(path, data={"csrf": self.csrf, **(data or {})}, headers={"Accept": "text/html"})


async def make_team(app: object) -> Team:
    async with app.state.sessionmaker() as db:  # type: ignore[attr-defined]
        accounts = {}
        for name in ROLES:
            account = await create_owner(db, email=f"{name}@example.com", password=PASSWORD, name=name.capitalize())
            accounts[name] = account.id
        alice = await members.first_team(db, account_id=accounts["alice"])
        assert alice is not None
        await db.commit()
    team = Team(app=app, id=alice.team_id, name=alice.team_name, accounts=accounts)
    await team.reset()
    return team


def cli_with_accounts(settings: object, *emails: str) -> Callable[..., Any]:
    """The `portico` command line on the test's database, where these accounts exist (each with
    its own team): `run("members", "list", ...)`, with `given=` for what is typed at a prompt."""
    from typer.testing import CliRunner

    from portico import cli
    from portico.db import make_engine, make_sessionmaker
    from tests.servers import portico_env

    async def seed() -> None:
        engine = make_engine(settings.resolved_database_url)  # type: ignore[attr-defined]
        async with make_sessionmaker(engine)() as db:
            for email in emails:
                await create_owner(db, email=email, password=PASSWORD, name=email.split("@")[0].capitalize())
            await db.commit()
        await engine.dispose()

    asyncio.run(seed())
    runner, env = CliRunner(), portico_env(settings)

    def run(*args: str, given: str | None = None) -> Any:
        return runner.invoke(cli.app, list(args), env=env, input=given)

    return run
