"""The Logs, transcript and Metrics pages of the dashboard."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from portico.access import links as links_service
from portico.assistants.deps import DashboardAssistant
from portico.assistants.schemas import AssistantUpdate
from portico.assistants.service import update_assistant
from portico.db import SessionDep
from portico.errors import InvalidRequest
from portico.identity.deps import DashboardMember
from portico.metrics import export, logs, params, service, unanswered
from portico.metrics.charts import bar_chart, shared_top
from portico.metrics.quotas import quota_use
from portico.models import Assistant
from portico.schemas import Id
from portico.vocabulary import CHANNEL_LABELS, END_LABELS, FEEDBACK_REASON_LABELS, REFUSAL_LABELS
from portico.web.forms import FormInvalid, check_csrf, parse_form, redirect
from portico.web.frame import assistant_page

router = APIRouter(
    prefix="/dashboard/assistants/{assistant_id}", include_in_schema=False, dependencies=[Depends(check_csrf)]
)

FILTER_KEYS = ("user", "channel", "from", "to", "end_reason", "q", "rating")
# The Logs filter offers every end reason, and sessions still running.
END_FILTER_LABELS = {reason.value: label for reason, label in END_LABELS.items()} | {logs.OPEN: "Still open"}


# The API's messages name query parameters ('from', end_reason); the dashboard's filters speak of
# the fields the owner sees. A problem's field -> (the form field it shows beside, its sentence, or
# None when the service's own sentence already speaks to the owner).
FILTER_PROBLEMS: dict[str, tuple[str, str | None]] = {
    "user": ("user", "Choose a user from the list."),
    "channel": ("channel", "Choose a channel from the list."),
    "end_reason": ("end_reason", "Choose an ending from the list."),
    "from": ("from", "Enter the first day as a date, like 2026-11-24."),
    "to": ("to", "Enter the last day as a date, like 2026-11-24."),
    "range": ("to", "The last day cannot come before the first."),
    "q": ("q", None),
    "period": ("period", "Choose a period from the list."),
    "bucket": ("bucket", "Choose hours or days."),
    "length": ("period", None),
}


def _filter_errors(exc: InvalidRequest) -> dict[str, str]:
    field, said = FILTER_PROBLEMS.get(exc.field or "", ("form", None))
    return {field: said or exc.message}


def _filter_args(request: Request) -> dict[str, str]:
    return {key: request.query_params.get(key, "") for key in FILTER_KEYS}


def _query_string(values: dict[str, str], **extra: str) -> str:
    return urlencode({k: v for k, v in {**values, **extra}.items() if v})


@router.get("/logs", response_class=HTMLResponse)
async def logs_page(
    request: Request, db: SessionDep, assistant: DashboardAssistant, cursor: str | None = None, done: str | None = None
) -> Response:
    notice = "Logs settings saved." if done == "settings" else None
    return await _logs_page(request, db, assistant, cursor=cursor, notice=notice)


async def _logs_page(
    request: Request,
    db: SessionDep,
    assistant: Assistant,
    *,
    cursor: str | None = None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    values = _filter_args(request)
    links = await links_service.list_links(db, assistant=assistant, include_revoked=True)
    context: dict[str, Any] = {
        "values": values,
        "links": links,
        "end_labels": END_FILTER_LABELS,
        "channel_labels": CHANNEL_LABELS,
        "rows": [],
        "next_cursor": None,
        "kept": {"retention_days": assistant.retention_days, "store_transcripts": assistant.store_transcripts},
    }
    try:
        filters = params.log_filters(
            user=values["user"],
            channel=values["channel"],
            start=values["from"],
            end=values["to"],
            end_reason=values["end_reason"],
            q=values["q"],
            rating=values["rating"],
        )
        rows, next_cursor = await logs.list_sessions(db, assistant_id=assistant.id, filters=filters, cursor=cursor)
        context.update(rows=rows, next_cursor=next_cursor)
    except InvalidRequest as exc:
        context["filter_errors"] = _filter_errors(exc)
    query = _query_string(values)
    context.update(
        query=query,
        paged=bool(cursor),
        next_url=f"?{_query_string(values, cursor=context['next_cursor'])}" if context["next_cursor"] else None,
        csv_url=f"/dashboard/assistants/{assistant.id}/logs.csv?{query}",
        jsonl_url=f"/dashboard/assistants/{assistant.id}/logs.jsonl?{query}",
    )
    return await assistant_page(request, db, assistant, "logs", "Logs", status=status, **{**context, **extra})


@router.post("/logs/settings")
async def logs_settings(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    form = await request.form()
    typed = str(form.get("retention_days", ""))
    store = form.get("store_transcripts") == "1"
    try:
        data = parse_form(AssistantUpdate, {"retention_days": typed.strip() or "0", "store_transcripts": store})
    except FormInvalid as invalid:
        kept = {"retention_days": typed, "store_transcripts": store}
        return await _logs_page(request, db, assistant, status=422, errors=invalid.errors, kept=kept)
    await update_assistant(db, member=member, assistant=assistant, data=data, vault=request.app.state.vault)
    return redirect(f"/dashboard/assistants/{assistant.id}/logs?done=settings")


def _export(request: Request, assistant: Assistant, kind: str) -> StreamingResponse:
    values = _filter_args(request)
    filters = params.log_filters(
        user=values["user"],
        channel=values["channel"],
        start=values["from"],
        end=values["to"],
        end_reason=values["end_reason"],
        q=values["q"],
        rating=values["rating"],
    )
    make = export.csv_lines if kind == "csv" else export.jsonl_lines
    body = make(request.app.state.sessionmaker, assistant_id=assistant.id, filters=filters)
    media = "text/csv; charset=utf-8" if kind == "csv" else "application/x-ndjson"
    headers = {
        "Content-Disposition": f'attachment; filename="portico-sessions-{assistant.public_id}.{kind}"',
        "Cache-Control": "no-store",
    }
    return StreamingResponse(body, media_type=media, headers=headers)


@router.get("/logs.csv")
async def logs_csv(request: Request, assistant: DashboardAssistant) -> Response:
    return _export(request, assistant, "csv")


@router.get("/logs.jsonl")
async def logs_jsonl(request: Request, assistant: DashboardAssistant) -> Response:
    return _export(request, assistant, "jsonl")


@router.get("/logs/{session_id}", response_class=HTMLResponse)
async def transcript_page(request: Request, db: SessionDep, assistant: DashboardAssistant, session_id: Id) -> Response:
    row, messages = await logs.get_session(db, assistant_id=assistant.id, session_id=session_id)
    return await assistant_page(
        request,
        db,
        assistant,
        "transcript",
        f"Session {row.id}",
        row=row,
        messages=messages,
        end_labels=END_LABELS,
        channel_labels=CHANNEL_LABELS,
        reason_labels=FEEDBACK_REASON_LABELS,
        back=request.query_params.get("back", ""),
    )


@router.get("/metrics", response_class=HTMLResponse)
async def metrics_page(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    period = request.query_params.get("period", "7d")
    bucket = request.query_params.get("bucket", "hour" if period == "today" else "day")
    values = {
        "period": period,
        "bucket": bucket,
        "from": request.query_params.get("from", ""),
        "to": request.query_params.get("to", ""),
    }
    try:
        start, end = params.period(name=period, start=values["from"], end=values["to"])
        result = await service.metrics(db, assistant_id=assistant.id, start=start, end=end, bucket=bucket)
    except InvalidRequest as exc:
        return await assistant_page(
            request,
            db,
            assistant,
            "metrics",
            "Metrics",
            status=422,
            values=values,
            filter_errors=_filter_errors(exc),
            result=None,
        )
    fmt = "%H:00" if bucket == "hour" else "%b %d"
    labels = [b.start.strftime(fmt) for b in result.buckets]
    # Only the reasons guests met in this period, in the gate's order.
    refusal_codes = [code for code in REFUSAL_LABELS if result.refusals.get(code)]
    rated_up = [b.rated_up_share or 0 for b in result.buckets]
    rated_down = [b.rated_down_share or 0 for b in result.buckets]
    # Side by side on one scale, so 1.4% up never stands as tall as 15.3% down.
    shares = shared_top(rated_up, rated_down, limit=100)
    charts = {
        "sessions": bar_chart("chart-sessions", "Sessions per " + bucket, labels, [b.sessions for b in result.buckets]),
        "messages": bar_chart(
            "chart-messages", "Messages per " + bucket, labels, [b.messages for b in result.buckets], color="#116329"
        ),
        "rated_up": bar_chart(
            "chart-rated-up",
            f"Share of replies rated up per {bucket} (%)",
            labels,
            rated_up,
            color="#116329",
            top=shares,
            unit="%",
        ),
        "rated_down": bar_chart(
            "chart-rated-down",
            f"Share of replies rated down per {bucket} (%)",
            labels,
            rated_down,
            color="#cf222e",
            top=shares,
            unit="%",
        ),
        "refusals": bar_chart(
            "chart-refusals",
            "Refusals at the gate by reason",
            [REFUSAL_LABELS[c] for c in refusal_codes],
            [result.refusals[c] for c in refusal_codes],
            color="#9a6700",
            every_label=True,
        ),
    }
    return await assistant_page(
        request,
        db,
        assistant,
        "metrics",
        "Metrics",
        values=values,
        result=result,
        charts=charts,
        labels=labels,
        refusal_labels=REFUSAL_LABELS,
        refusal_codes=refusal_codes,
        quotas=await quota_use(db, assistant=assistant),
    )


@router.get("/unanswered", response_class=HTMLResponse)
async def unanswered_page(
    request: Request, db: SessionDep, assistant: DashboardAssistant, cursor: str | None = None
) -> Response:
    period = request.query_params.get("period", "30d")
    context: dict[str, Any] = {"period": period, "groups": [], "next_url": None}
    try:
        start, end = params.period(name=period, start=None, end=None)
        groups, next_cursor = await unanswered.report(
            db, assistant_id=assistant.id, start=start, end=end, cursor=cursor
        )
    except InvalidRequest as exc:
        return await assistant_page(
            request, db, assistant, "unanswered", "Unanswered", status=422, period_error=exc.message, **context
        )
    behavior = f"/dashboard/assistants/{assistant.id}/behavior"
    context.update(
        groups=[(group, f"{behavior}?{urlencode({'answer': group.question})}#knowledge") for group in groups],
        next_url=f"?{urlencode({'period': period, 'cursor': next_cursor})}" if next_cursor else None,
        paged=bool(cursor),
    )
    return await assistant_page(request, db, assistant, "unanswered", "Unanswered", **context)
