"""Logs and Metrics for owners: `/api/v1/assistants/{id}/sessions`, `.csv`, `.jsonl`, `/metrics`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from portico.assistants.deps import OwnedAssistant
from portico.db import SessionDep
from portico.metrics import export, logs, params, service, unanswered
from portico.metrics.quotas import quota_use
from portico.schemas import Id

router = APIRouter(prefix="/assistants/{assistant_id}", tags=["logs and metrics"])


class Filters:
    """The same filters for the list and the exports."""

    def __init__(
        self,
        user: Annotated[str | None, Query(description="A private link's id, 'anonymous' or 'preview'.")] = None,
        channel: Annotated[str | None, Query(description="link, widget, api or preview.")] = None,
        start: Annotated[
            str | None, Query(alias="from", description="First day (2026-11-01) or an ISO date-time.")
        ] = None,
        end: Annotated[str | None, Query(alias="to", description="Last day (inclusive) or an ISO date-time.")] = None,
        end_reason: Annotated[str | None, Query(description="An end reason, or 'open' for running sessions.")] = None,
        q: Annotated[str | None, Query(description="Words that appear in the transcript.")] = None,
        rating: Annotated[str | None, Query(description="up or down: sessions with a reply rated so.")] = None,
    ) -> None:
        self.value = params.log_filters(
            user=user, channel=channel, start=start, end=end, end_reason=end_reason, q=q, rating=rating
        )


@router.get("/sessions")
async def list_sessions(
    assistant: OwnedAssistant,
    db: SessionDep,
    filters: Annotated[Filters, Depends()],
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    rows, next_cursor = await logs.list_sessions(
        db, assistant_id=assistant.id, filters=filters.value, cursor=cursor, limit=limit
    )
    return {"items": [row.as_dict() for row in rows], "next_cursor": next_cursor}


def _export_responses(media_type: str, what: str) -> dict[int | str, dict[str, Any]]:
    # Documented as what it is, so clients (and schemathesis) know the answer is not JSON.
    return {200: {"description": f"Every matching session, {what}; not cached.", "content": {media_type: {}}}}


@router.get("/sessions.csv", response_class=StreamingResponse, responses=_export_responses("text/csv", "as CSV"))
async def export_csv(
    request: Request, assistant: OwnedAssistant, filters: Annotated[Filters, Depends()]
) -> StreamingResponse:
    body = export.csv_lines(request.app.state.sessionmaker, assistant_id=assistant.id, filters=filters.value)
    return _download(body, f"portico-sessions-{assistant.public_id}.csv", "text/csv; charset=utf-8")


@router.get(
    "/sessions.jsonl",
    response_class=StreamingResponse,
    responses=_export_responses("application/x-ndjson", "with its messages, as JSON Lines"),
)
async def export_jsonl(
    request: Request, assistant: OwnedAssistant, filters: Annotated[Filters, Depends()]
) -> StreamingResponse:
    body = export.jsonl_lines(request.app.state.sessionmaker, assistant_id=assistant.id, filters=filters.value)
    return _download(body, f"portico-sessions-{assistant.public_id}.jsonl", "application/x-ndjson")


def _download(body: Any, filename: str, media_type: str) -> StreamingResponse:
    headers = {"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type=media_type, headers=headers)


@router.get("/sessions/{session_id}")
async def get_session(assistant: OwnedAssistant, db: SessionDep, session_id: Id) -> dict[str, Any]:
    row, messages = await logs.get_session(db, assistant_id=assistant.id, session_id=session_id)
    return {**row.as_dict(), "messages": [logs.message_dict(m) for m in messages]}


@router.get("/metrics")
async def get_metrics(
    assistant: OwnedAssistant,
    db: SessionDep,
    period: Annotated[str | None, Query(description="today, 7d, 30d, 90d, or custom with from/to.")] = None,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    bucket: Annotated[str, Query(description="hour or day")] = "day",
) -> dict[str, Any]:
    begin, finish = params.period(name=period, start=start, end=end)
    result = await service.metrics(db, assistant_id=assistant.id, start=begin, end=finish, bucket=bucket)
    # Today's use against each quota, whatever the period (quotas are by UTC day).
    return {**result.as_dict(), "quotas": await quota_use(db, assistant=assistant)}


@router.get("/unanswered")
async def unanswered_questions(
    assistant: OwnedAssistant,
    db: SessionDep,
    period: Annotated[str | None, Query(description="today, 7d, 30d, 90d, or custom with from/to.")] = "30d",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Guests' questions that got no answer from the knowledge, an engine error or a thumbs down,
    grouped by wording, newest group first. Nothing in it identifies a guest."""
    begin, finish = params.period(name=period, start=start, end=end)
    groups, next_cursor = await unanswered.report(
        db, assistant_id=assistant.id, start=begin, end=finish, cursor=cursor, limit=limit
    )
    return {
        "from": begin.isoformat(),
        "to": finish.isoformat(),
        "items": [group.as_dict() for group in groups],
        "next_cursor": next_cursor,
    }
