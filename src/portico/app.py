from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.telemetry import TelemetryConfig
from swagger_ui_bundle import swagger_ui_path

from portico import __version__
from portico.access import views as access_views
from portico.access.api import router as links_router
from portico.access.ratelimit import Limiter
from portico.assistants import views as assistants_views
from portico.assistants.api import router as assistants_router
from portico.chat.api import router as chat_router
from portico.chat.cutoff import Cutoffs
from portico.chat.store import GuestStore
from portico.chat.sweep import sweep_forever
from portico.chat.views import router as chat_views
from portico.compat.api import router as compat_router
from portico.config import Settings, get_settings
from portico.db import is_sqlite, make_engine, make_sessionmaker
from portico.documents.api import router as documents_router
from portico.documents.api import uploads as documents_uploads
from portico.engines import close_engines
from portico.handlers import ERROR_RESPONSES, BodyLimit, install_handlers
from portico.health import router as health_router
from portico.identity import join as identity_join
from portico.identity import views as identity_views
from portico.identity.deps import current_member
from portico.kit.crypto import Vault
from portico.kit.i18n import GuestLanguage
from portico.kit.logs import install_redaction
from portico.metrics import views as metrics_views
from portico.metrics.api import router as metrics_router
from portico.metrics.retention import purge_forever
from portico.metrics.rollup import rollup_forever
from portico.metrics.search import backfill_forever
from portico.migrations.run import upgrade_connection
from portico.schemas import storable_parameters
from portico.teams import views as teams_views
from portico.teams.api import router as team_router
from portico.web.pages import STATIC_DIR, CachedStatic, CompressPublicAssets, SecurityHeaders
from portico.widget.api import router as widget_router

log = logging.getLogger("portico")

NO_TELEMETRY = TelemetryConfig(tracing=False, metrics=False, logs=False)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # Before anything can log: keys and tokens are redacted from Portico's and uvicorn's records.
    install_redaction()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The app's settings as they are when it starts (the tests start one app on each test's database).
        settings: Settings = app.state.settings
        engine = make_engine(settings.resolved_database_url, **settings.pool_options())
        if is_sqlite(settings.resolved_database_url):
            # One machine, one file: keep it migrated without a separate step.
            settings.data_dir.mkdir(parents=True, exist_ok=True)
            async with engine.begin() as conn:
                await conn.run_sync(upgrade_connection)
        app.state.engine = engine
        app.state.sessionmaker = make_sessionmaker(engine)
        app.state.store = GuestStore(engine)
        app.state.limiter = Limiter(settings, settings.resolved_secret_key())
        app.state.cutoffs = Cutoffs(reply_timeout=settings.reply_timeout)
        await app.state.cutoffs.start(engine, app.state.store)
        chores = [
            asyncio.create_task(chore(app.state.sessionmaker), name=f"portico-{chore.__name__}")
            for chore in (sweep_forever, rollup_forever, purge_forever, backfill_forever)
        ]
        try:
            yield
        finally:
            for chore in chores:
                chore.cancel()
            await app.state.cutoffs.stop()
            await app.state.store.growing.close()
            await app.state.limiter.close()
            await close_engines()
            if (pool := getattr(app.state, "documents_pool", None)) is not None:
                pool.close()
            await engine.dispose()

    app = FastAPI(
        title="Portico",
        version=__version__,
        summary="Publish AI assistants to the people who should use them.",
        lifespan=lifespan,
        dependencies=[Depends(storable_parameters)],
        docs_url=None,
        redoc_url=None,
        responses=ERROR_RESPONSES,
        # Portico sets up no OpenTelemetry provider; without this FastAPI looks for one on every
        # request (about 5% of a session start's CPU, bench/session_start.py).
        telemetry=NO_TELEMETRY,
    )
    app.state.settings = settings
    app.state.vault = Vault(settings.resolved_secret_key())
    install_handlers(app)
    app.add_middleware(BodyLimit, request_timeout=settings.request_timeout)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(CompressPublicAssets)
    # Outermost: every guest route, its errors included, answers in the guest's language.
    app.add_middleware(GuestLanguage)

    # Guest routes: public by design; each one takes a key, a public id or a session token.
    # Included first: they are the busiest, and routes are matched in order.
    app.include_router(health_router)
    app.include_router(chat_router, prefix="/api/v1")
    app.include_router(compat_router)
    app.include_router(chat_views)
    app.include_router(widget_router)

    # Owner routes: authentication is required for the whole router, not route by route.
    owner_api = APIRouter(prefix="/api/v1", dependencies=[Depends(current_member)])
    owner_api.include_router(assistants_router)
    owner_api.include_router(documents_router)
    owner_api.include_router(links_router)
    owner_api.include_router(metrics_router)
    owner_api.include_router(team_router)
    app.include_router(owner_api)
    # Outside the owner API's transaction: they authenticate in their own (documents/api.py).
    app.include_router(documents_uploads)
    dashboards = (
        identity_views.router,
        assistants_views.router,
        access_views.router,
        metrics_views.router,
        teams_views.router,
        identity_join.router,
    )
    for dashboard in dashboards:
        app.include_router(dashboard)
    app.add_api_route("/", lambda: RedirectResponse("/dashboard"), include_in_schema=False)
    app.mount("/static", CachedStatic(directory=STATIC_DIR), name="static")
    mount_api_docs(app)
    return app


def mount_api_docs(app: FastAPI) -> None:
    """Swagger UI served from our own origin (the swagger-ui-bundle package), never a CDN."""
    app.mount("/static/swagger", StaticFiles(directory=swagger_ui_path), name="swagger")

    @app.get("/docs", include_in_schema=False)
    async def api_docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Portico API",
            swagger_js_url="/static/swagger/swagger-ui-bundle.js",
            swagger_css_url="/static/swagger/swagger-ui.css",
            swagger_favicon_url="/static/swagger/favicon-32x32.png",
        )
        # Swagger UI starts itself with an inline script; still nothing from another origin.
        page.headers["Content-Security-Policy"] = (
            "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
            "img-src 'self' data:; frame-ancestors 'none'"
        )
        return page
