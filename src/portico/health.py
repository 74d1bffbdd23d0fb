"""Health for operators and load balancers: `/healthz` (the process answers) and `/readyz`
(this instance can serve guests: the database answers, its migrations are current, and the
cut-off listener is connected). Neither says anything secret, nor which database it is."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.script import ScriptDirectory
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from portico.migrations.run import alembic_config

router = APIRouter(include_in_schema=False)
CHECK_SECONDS = 2.0
_head: str | None = None


def migrations_head() -> str:
    global _head
    if _head is None:
        _head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert _head is not None
    return _head


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        # A read on the store's way (no transaction): on SQLite it never waits for a writer's lock.
        version = await asyncio.wait_for(request.app.state.store.schema_version(), CHECK_SECONDS)
        checks["database"] = "ok"
        checks["migrations"] = "ok" if version == migrations_head() else "not current: run `portico db upgrade`"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready, named by its type only
        checks["database"] = f"unavailable ({type(exc).__name__})"
        checks["migrations"] = "unknown"
    checks["cutoff_listener"] = "ok" if request.app.state.cutoffs.listening else "not connected"
    ready = all(value == "ok" for value in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})
