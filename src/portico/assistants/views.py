"""The assistant pages: the list, Behavior, Publish and Preview."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import ValidationError
from sse_starlette import EventSourceResponse
from starlette.datastructures import UploadFile

from portico.assistants import service
from portico.assistants.schemas import AssistantCreate, AssistantUpdate
from portico.chat import messages as messages_service
from portico.chat import preview as preview_service
from portico.db import SessionDep
from portico.errors import InvalidRequest
from portico.models import Assistant
from portico.web.deps import DashboardAssistant, DashboardOwner
from portico.web.forms import check_csrf, redirect, render

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(check_csrf)])

KNOWLEDGE_UPLOAD_MAX = 1024 * 1024
NUMBER_FIELDS = {
    "temperature": float,
    "max_tokens": int,
    "timeout": float,
    "inactivity_timeout": int,
    "max_duration": int,
    "max_message_length": int,
}


async def _unpublished(db: SessionDep, assistant: Assistant) -> bool:
    digests = await service.published_digests(db, [assistant])
    return digests.get(assistant.id) != assistant.draft_digest


async def assistant_page(
    request: Request, db: SessionDep, assistant: Assistant, tab: str, title: str, status: int = 200, **context: Any
) -> HTMLResponse:
    base = {
        "title": f"{title} · {assistant.name}",
        "section": "assistants",
        "assistant": assistant,
        "tab": tab,
        "tab_title": title,
        "unpublished": await _unpublished(db, assistant),
    }
    return render(request, f"{tab}.html", {**base, **context}, status=status)


@router.get("", response_class=HTMLResponse)
async def assistants_page(request: Request, db: SessionDep, owner: DashboardOwner) -> Response:
    assistants = await service.list_owned(db, owner_id=owner.id)
    today = await service.sessions_today(db, assistant_ids=[a.id for a in assistants])
    return render(
        request,
        "assistants.html",
        {"title": "Assistants", "section": "assistants", "assistants": assistants, "today": today},
    )


@router.post("/assistants")
async def create_assistant(request: Request, db: SessionDep, owner: DashboardOwner) -> Response:
    form = await request.form()
    name = str(form.get("name", ""))
    try:
        data = AssistantCreate(name=name)
    except ValidationError:
        assistants = await service.list_owned(db, owner_id=owner.id)
        today = await service.sessions_today(db, assistant_ids=[a.id for a in assistants])
        errors = {"name": "Give the assistant a name of 1 to 200 characters."}
        return render(
            request,
            "assistants.html",
            {
                "title": "Assistants",
                "section": "assistants",
                "assistants": assistants,
                "today": today,
                "errors": errors,
                "name": name,
            },
            status=422,
        )
    assistant = await service.create_assistant(db, owner_id=owner.id, data=data, vault=request.app.state.vault)
    return redirect(f"/dashboard/assistants/{assistant.id}/behavior")


@router.get("/assistants/{assistant_id}", response_class=HTMLResponse)
async def assistant_home(assistant: DashboardAssistant) -> Response:
    return redirect(f"/dashboard/assistants/{assistant.id}/behavior")


def _behavior_form(assistant: Assistant) -> dict[str, Any]:
    draft = assistant.draft
    engine = draft["engine"]
    return {
        "name": assistant.name,
        "description": assistant.description,
        "greeting_enabled": draft.get("greeting_enabled", True),
        "greeting": draft["greeting"],
        "instructions": draft["instructions"],
        "knowledge": draft["knowledge"],
        "engine_type": engine["type"],
        "base_url": engine.get("base_url", ""),
        "model": engine.get("model", ""),
        "temperature": engine.get("temperature", 0.7),
        "max_tokens": engine.get("max_tokens", 512),
        "timeout": engine.get("timeout", 30),
        **draft["settings"],
    }


@router.get("/assistants/{assistant_id}/behavior", response_class=HTMLResponse)
async def behavior_page(
    request: Request, db: SessionDep, assistant: DashboardAssistant, done: str | None = None
) -> Response:
    notice = "Draft saved. Publish to let guests see it." if done == "saved" else None
    return await assistant_page(
        request,
        db,
        assistant,
        "behavior",
        "Behavior",
        form=_behavior_form(assistant),
        has_api_key="api_key_encrypted" in assistant.draft["engine"],
        notice=notice,
    )


async def _read_upload(upload: UploadFile | None) -> str | None:
    if upload is None or not upload.filename:
        return None
    if not upload.filename.lower().endswith((".txt", ".md", ".markdown")):
        raise InvalidRequest("Upload a .txt or .md file.")
    data = await upload.read(KNOWLEDGE_UPLOAD_MAX + 1)
    if len(data) > KNOWLEDGE_UPLOAD_MAX:
        raise InvalidRequest("This file is larger than 1 MiB. Split it, or paste the most useful part.")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest(
            "This file is not UTF-8 text. Save it as plain text (UTF-8) and upload it again."
        ) from None


@router.post("/assistants/{assistant_id}/behavior")
async def save_behavior(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    form = await request.form()
    values = {
        key: str(form.get(key, ""))
        for key in (
            "name",
            "description",
            "greeting",
            "instructions",
            "knowledge",
            "engine_type",
            "base_url",
            "model",
            *NUMBER_FIELDS,
        )
    }
    values["greeting_enabled"] = form.get("greeting_enabled") == "1"
    errors: dict[str, str] = {}
    current = _behavior_form(assistant)
    numbers: dict[str, Any] = {}
    for field, kind in NUMBER_FIELDS.items():
        try:
            numbers[field] = kind(values[field].strip())
        except ValueError:
            errors[field] = "Enter a number." if kind is float else "Enter a whole number."
            # Validate the rest of the form with the saved value, so every problem shows at once.
            numbers[field] = current[field]
    upload = form.get("knowledge_file")
    try:
        uploaded = await _read_upload(upload if isinstance(upload, UploadFile) else None)
    except InvalidRequest as exc:
        errors["knowledge_file"], uploaded = exc.message, None
    knowledge = uploaded if uploaded is not None else values["knowledge"]
    engine: dict[str, Any] = {"type": "builtin"}
    if values["engine_type"] == "openai":
        engine = {"type": "openai", "base_url": values["base_url"].strip(), "model": values["model"].strip()}
        engine.update({k: numbers[k] for k in ("temperature", "max_tokens", "timeout") if k in numbers})
        api_key = str(form.get("api_key", ""))
        if form.get("clear_api_key") == "1":
            engine["api_key"] = ""
        elif api_key:
            engine["api_key"] = api_key
    data = None
    try:
        data = AssistantUpdate(
            name=values["name"],
            description=values["description"],
            greeting=values["greeting"],
            greeting_enabled=values["greeting_enabled"],
            instructions=values["instructions"],
            knowledge=knowledge.replace("\r\n", "\n"),
            engine=engine,
            settings={k: numbers[k] for k in ("inactivity_timeout", "max_duration", "max_message_length")},
        )
    except ValidationError as exc:
        for error in exc.errors():
            field = str(error["loc"][-1]) if error["loc"] else "name"
            if field == "type":
                field = "base_url"
            errors.setdefault(field, _sentence(error))
    if errors or data is None:
        form_values = {**current, **values, **{k: values[k] for k in NUMBER_FIELDS}, "knowledge": knowledge}
        return await assistant_page(
            request,
            db,
            assistant,
            "behavior",
            "Behavior",
            status=422,
            form=form_values,
            errors=errors,
            has_api_key="api_key_encrypted" in assistant.draft["engine"],
        )
    await service.update_assistant(db, assistant=assistant, data=data, vault=request.app.state.vault)
    return redirect(f"/dashboard/assistants/{assistant.id}/behavior?done=saved")


def _sentence(error: dict[str, Any]) -> str:
    message = str(error["msg"])
    if error["type"] in ("string_too_short", "missing"):
        return "This cannot be empty."
    if error["type"] == "url_parsing" or "URL" in message:
        return "Enter a full address starting with http:// or https://."
    return message[0].upper() + message[1:] + "."


@router.get("/assistants/{assistant_id}/publish", response_class=HTMLResponse)
async def publish_page(
    request: Request, db: SessionDep, assistant: DashboardAssistant, done: str | None = None
) -> Response:
    versions = await service.list_versions(db, assistant=assistant)
    notices = {
        "published": f"Published version {assistant.published_version}. Guests now get it.",
        "restored": "The version was copied into the draft. Publish to let guests see it.",
    }
    return await assistant_page(
        request, db, assistant, "publish", "Publish", versions=versions, notice=notices.get(done or "")
    )


@router.post("/assistants/{assistant_id}/publish")
async def publish(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    problems = service.draft_problems(assistant.draft)
    if problems:
        versions = await service.list_versions(db, assistant=assistant)
        return await assistant_page(
            request, db, assistant, "publish", "Publish", status=422, versions=versions, problems=problems
        )
    await service.publish(db, assistant=assistant)
    return redirect(f"/dashboard/assistants/{assistant.id}/publish?done=published")


@router.post("/assistants/{assistant_id}/versions/{number}/restore")
async def restore(db: SessionDep, assistant: DashboardAssistant, number: int) -> Response:
    await service.restore_version(db, assistant=assistant, number=number)
    return redirect(f"/dashboard/assistants/{assistant.id}/publish?done=restored")


@router.get("/assistants/{assistant_id}/preview", response_class=HTMLResponse)
async def preview_page(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    return await assistant_page(request, db, assistant, "preview", "Preview")


@router.post("/assistants/{assistant_id}/preview/sessions")
async def start_preview(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    form = await request.form()
    session = await preview_service.start_preview(db, assistant=assistant, use_published=form.get("use") == "published")
    greeting = await preview_service.preview_greeting(db, assistant=assistant, session=session)
    return JSONResponse({"session_id": session.id, "greeting": greeting}, status_code=201)


@router.post("/assistants/{assistant_id}/preview/sessions/{session_id}/messages")
async def preview_message(request: Request, db: SessionDep, assistant: DashboardAssistant, session_id: int) -> Response:
    form = await request.form()
    content = str(form.get("content", ""))
    if not content.strip():
        raise InvalidRequest("Write something: the message is empty.")
    pending = await preview_service.accept_preview_message(
        db, assistant=assistant, session_id=session_id, content=content, vault=request.app.state.vault
    )
    # The guest's message must be committed before the engine runs, as for guests.
    await db.commit()
    events = messages_service.stream_reply(
        pending, engine=request.app.state.engine, cutoffs=request.app.state.cutoffs
    )
    return EventSourceResponse(({"event": e.kind, "data": json.dumps(e.data)} async for e in events), ping=15)
