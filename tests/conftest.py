"""Every test that touches the database runs on SQLite and on PostgreSQL, unless it says otherwise.

How a new test should start the fewest processes (docs/benchmarks.md, "Test suite"; STYLE.md 21):
- In-process first: `client`, `alice`/`bob` (`make_person`) on the test's own empty database (a copy of
  the migrated SQLite template; PostgreSQL emptied with DELETE).
- A test whose subject is not the database (validation, words on a page, a pure function) is marked
  `@pytest.mark.sqlite_only` (or the module: `pytestmark = pytest.mark.sqlite_only`). A browser test
  (any test using `browser`) is SQLite-only by itself; mark it `both_databases` if the database is
  its subject.
- A test that needs a real server asks for `shared_server` and calls `shared_server(**PORTICO_env)`:
  the worker's `portico serve` for that database and those settings, started once, on the test's
  database (emptied for the test, so ids start at 1 and nothing of another test is there). `.url`,
  and `.log` (its log since the test began). Only a test that kills, restarts or reconfigures a
  server while it runs starts its own, with `tests.servers.portico_server`.
- `browser` gives fresh contexts on the worker's one Chromium (tests/browser.py) and closes them.
- Every test and fixture runs in the worker's one event loop (pyproject.toml), so session-scoped
  async fixtures (Chromium) work; a sync fixture may still use `asyncio.run`.

The PostgreSQL tests need the server at PORTICO_TEST_POSTGRES_URL (default
postgresql://postgres@127.0.0.1:5432/test). Without it they are skipped with a clear reason,
except under CI=true, where they fail.

`make test` runs the suite on several pytest-xdist workers. Each worker has its own PostgreSQL
database beside that one (`test_gw0`, `test_gw1`...), created on first use and migrated once;
its SQLite files and temporary folders are under its own tmp_path, and tests/servers.py gives
each worker its own ports.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import make_url, text

from portico.app import create_app
from portico.config import Settings, load_settings
from portico.db import make_engine
from portico.migrations.run import upgrade_connection
from portico.models import Base
from tests.browser import chromium  # noqa: F401  (the worker's one Chromium, for every module's `browser`)
from tests.servers import Served, SharedServers

BASE_PG_URL = os.environ.get("PORTICO_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
# pytest-xdist names its workers gw0, gw1...; a run without it is one process with the base database.
WORKER = os.environ.get("PYTEST_XDIST_WORKER")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
SECRET = "test-secret-key-that-is-long-enough-0123456789"
BASE_URL = "http://portico.test"
# Tests send many requests from one address; tests/test_rate_limits.py sets tight limits of its own.
GENEROUS_LIMITS = {
    f"rate_{name}": "100000/second"
    for name in ("session_starts", "lookups", "messages", "failed_secrets", "assistant_starts")
}


def _migrate(url: str, *, reset: bool) -> None:
    async def main() -> None:
        engine = make_engine(url)
        async with engine.begin() as conn:
            if reset:
                await conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
                await conn.execute(text("CREATE SCHEMA public"))
            await conn.run_sync(upgrade_connection)
        await engine.dispose()

    asyncio.run(main())


def _asyncpg_dsn(url: str) -> str:
    return url.replace("postgresql://", "postgres://", 1)


def _worker_url(base: str, worker: str | None) -> str:
    if worker is None:
        return base
    url = make_url(base)
    return url.set(database=f"{url.database}_{worker}").render_as_string(hide_password=False)


def _postgres_problem() -> str | None:
    async def probe() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(BASE_PG_URL), timeout=3)
        await conn.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL is not reachable at {BASE_PG_URL} ({type(exc).__name__}: {exc})"
    return None


def _create_database(base: str, url: str) -> None:
    """Creates the worker's database from a connection to the base one, unless it exists."""
    name = make_url(url).database
    if name == make_url(base).database:
        return

    async def main() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(base), timeout=3)
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
                # CREATE DATABASE takes no parameters; the name is ours (base name, "_", "gwN").
                await conn.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.DuplicateDatabaseError:
            pass  # another run created it between the look and the CREATE
        try:
            # A test's commit need not wait for the disk: nothing outlives a crash of a test run, and
            # the tests commit often (the role walk waited on the disk for half its time).
            await conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit TO off')
        finally:
            await conn.close()

    asyncio.run(main())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "portico.db"
    _migrate(f"sqlite:///{path}", reset=False)
    return path


@pytest.fixture(scope="session")
def postgres_url() -> str:
    problem = _postgres_problem()
    if problem:
        if IN_CI:
            pytest.fail(f"{problem}; CI=true makes the PostgreSQL tests mandatory.")
        pytest.skip(f"{problem}; set PORTICO_TEST_POSTGRES_URL or start PostgreSQL.")
    url = _worker_url(BASE_PG_URL, WORKER)
    _create_database(BASE_PG_URL, url)
    _migrate(url, reset=True)
    return url


def _truncate_postgres(url: str) -> None:
    """Every row gone and every sequence back to 1, as TRUNCATE ... RESTART IDENTITY does, but with
    DELETE: TRUNCATE makes new files for all the tables, 0.3-0.5 s a test; these tables hold a few
    rows. Foreign keys are not checked meanwhile (every table is emptied in the same statement list)."""

    async def main() -> None:
        conn = await asyncpg.connect(_asyncpg_dsn(url))
        try:
            sequences = await conn.fetch("SELECT sequencename FROM pg_sequences WHERE schemaname = 'public'")
            await conn.execute(
                "; ".join(
                    ["BEGIN", "SET LOCAL session_replication_role = replica"]
                    + [f'DELETE FROM "{table.name}"' for table in Base.metadata.sorted_tables]
                    # Logs search's side table (migration 0014), outside the models' metadata.
                    + ["DELETE FROM session_search"]
                    + [f'ALTER SEQUENCE "{row[0]}" RESTART' for row in sequences]
                    + ["COMMIT"]
                )
            )
        finally:
            await conn.close()

    asyncio.run(main())


DATABASES = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """`database_url` (so `settings`, `app`, `alice`...) is SQLite and PostgreSQL, or SQLite alone
    for a test marked `sqlite_only` and for a browser test (one using the `browser` fixture) not
    marked `both_databases`: PostgreSQL's behaviour is checked in-process, a browser adds nothing."""
    if "database_url" not in metafunc.fixturenames:
        return
    marked = metafunc.definition.get_closest_marker
    once = marked("sqlite_only") is not None or ("browser" in metafunc.fixturenames and not marked("both_databases"))
    metafunc.parametrize("database_url", DATABASES[:1] if once else DATABASES, indirect=True)


def _empty_sqlite(path: Path) -> None:
    """Every row gone, as in a fresh copy of the template (ids start at 1 again)."""
    with closing(sqlite3.connect(path, timeout=30)) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(f'DELETE FROM "{table.name}"')
        if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            conn.execute("DELETE FROM sqlite_sequence")
        conn.commit()


@pytest.fixture(scope="session")
def shared_sqlite(tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path) -> Path:
    """The worker's SQLite file for the tests that use a shared server (emptied before each)."""
    path = tmp_path_factory.mktemp("shared") / "portico.db"
    shutil.copy(sqlite_template, path)
    return path


def uses_shared_server(request: pytest.FixtureRequest) -> bool:
    return "shared_server" in request.fixturenames


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    # A plain (not async) fixture: the set-up below runs its own event loops.
    if request.param == "sqlite":
        if uses_shared_server(request):
            # The shared server keeps its database open: the test empties it instead of copying one.
            shared = request.getfixturevalue("shared_sqlite")
            _empty_sqlite(shared)
            return f"sqlite:///{shared}"
        path = tmp_path / "portico.db"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("postgres_url")
    _truncate_postgres(url)
    return url


@pytest.fixture(scope="session")
def _shared_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedServers]:
    servers = SharedServers(tmp_path_factory.mktemp("servers"))
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture
def shared_server(settings: Settings, _shared_servers: SharedServers) -> Callable[..., Served]:
    """`shared_server(**extra_env)`: the worker's `portico serve` on this test's database (emptied for
    the test) with these PORTICO_* settings, started on first use and kept for the next tests that ask
    the same; `own_base_url=True` makes its base URL its own address. Returns `.url` and `.log` (the
    server's log since the test began)."""

    def get(*, own_base_url: bool = False, **extra_env: str) -> Served:
        return _shared_servers.get(settings, own_base_url=own_base_url, **extra_env)

    return get


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # A connection may take 30 s to come free, not 3: on a machine busy with the rest of the suite,
    # 200 guests starting at once can wait longer than 3 s, and answer 503 `busy` (tests/test_health.py
    # tests that answer with a pool of its own).
    return load_settings(
        database_url=database_url,
        data_dir=tmp_path,
        secret_key=SECRET,
        base_url=BASE_URL,
        db_pool_timeout=30,
        **GENEROUS_LIMITS,
    )


@pytest.fixture(autouse=True, scope="session")
def _cheap_password_hashes() -> Iterator[None]:
    """Accounts and access codes made in the tests' own process are hashed with argon2id at its least
    cost (0.15 s of CPU each at the real cost, paid by most tests; an access code is verified at each
    guest's start); verifying reads the cost from the hash, so `portico serve` processes, at the real
    cost, sign them in and check their codes as any other."""
    from argon2 import PasswordHasher

    from portico.access import codes
    from portico.identity import accounts

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(accounts, "_hasher", cheap)
        patch.setattr(codes, "_hasher", cheap)
        yield


# One app per worker for each set of settings but the database and the data folder. FastAPI builds
# each route's state (its dependencies, its response models) on an app's first request: about 0.4 s of
# CPU for Portico's routes, which every test paid again with an app of its own, a quarter of the
# suite's time. Each test still starts the app (its lifespan) on its own database, with fresh state.
_APPS: dict[str, object] = {}


def app_for(settings: Settings) -> object:
    if not settings.secret_key:  # the secret would come from each test's own data folder
        return create_app(settings)
    key = settings.model_copy(update={"database_url": "", "data_dir": Path("/")}).model_dump_json()
    application = _APPS.get(key)
    if application is None:
        application = _APPS[key] = create_app(settings)
    application.state.settings = settings  # type: ignore[attr-defined]
    return application


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[object]:
    application = app_for(settings)
    async with application.router.lifespan_context(application):  # type: ignore[attr-defined]
        yield application


@pytest.fixture
async def client(app: object) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@dataclass
class Person:
    """An owner with an API token, as the tests' alice (owner) and bob (someone else)."""

    email: str
    token: str
    http: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def request(self, method: str, path: str, headers: dict | None = None, **kwargs: object) -> httpx.Response:
        return await self.http.request(method, path, headers={**self.auth, **(headers or {})}, **kwargs)  # type: ignore[arg-type]

    async def new_assistant(
        self, *, publish: bool = True, live: bool = True, share: str = "public", **fields: object
    ) -> dict:
        body = {"name": "Helper", "knowledge": "Opening hours are 9 to 5.", **fields}
        response = await self.request("POST", "/api/v1/assistants", json=body)
        assert response.status_code == 201, response.text
        assistant = response.json()
        base = f"/api/v1/assistants/{assistant['id']}"
        if publish:
            assert (await self.request("POST", f"{base}/publish")).status_code == 201
        if live:
            assert (await self.request("PUT", f"{base}/status", json={"status": "live"})).status_code == 200
        if share != "public":
            assert (await self.request("PUT", f"{base}/share", json={"mode": share})).status_code == 200
        return (await self.request("GET", base)).json()

    async def new_links(self, assistant_id: int, *caps: int) -> list[dict]:
        body = {"links": [{"name": f"User {i}", "max_sessions": cap} for i, cap in enumerate(caps, start=1)]}
        response = await self.request("POST", f"/api/v1/assistants/{assistant_id}/links", json=body)
        assert response.status_code == 201, response.text
        return response.json()["items"]


def key_of(link: dict) -> str:
    return link["url"].split("#k=", 1)[1]


async def make_person(app: object, http: httpx.AsyncClient, email: str) -> Person:
    from portico.identity import accounts, members, tokens

    async with app.state.sessionmaker() as db:  # type: ignore[attr-defined]
        name = email.split("@")[0].capitalize()  # "Alice": her own team is "Alice's team"
        owner = await accounts.create_owner(db, email=email, password="correct horse battery", name=name)
        member = await members.first_team(db, account_id=owner.id)
        _token, plain = await tokens.create_api_token(db, member=member, name="tests")
        await db.commit()
    return Person(email=email, token=plain, http=http)


@pytest.fixture
async def alice(app: object, client: httpx.AsyncClient) -> Person:
    return await make_person(app, client, "alice@example.com")


@pytest.fixture
async def bob(app: object, client: httpx.AsyncClient) -> Person:
    return await make_person(app, client, "bob@example.com")


async def start(http: httpx.AsyncClient, **body: object) -> httpx.Response:
    return await http.post("/api/v1/chat/sessions", json=body)
