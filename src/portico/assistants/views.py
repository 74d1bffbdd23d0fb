"""The assistant pages: the list, Behavior, Publish, Preview and Settings (where an assistant is deleted)."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.datastructures import FormData, UploadFile

from portico.assistants import diff, service
from portico.assistants.deps import DashboardAssistant
from portico.assistants.schemas import AssistantCreate, AssistantUpdate
from portico.chat import messages as messages_service
from portico.chat import preview as preview_service
from portico.chat.http import event_stream
from portico.chat.schemas import FeedbackIn, FeedbackOut
from portico.db import SessionDep
from portico.deps import SettingsDep
from portico.engines import PROVIDERS, Kind, secrets
from portico.errors import InvalidRequest
from portico.identity.deps import DashboardMember
from portico.models import Assistant
from portico.schemas import Id
from portico.vocabulary import Status
from portico.web.forms import FormInvalid, check_csrf, parse_form, redirect, render
from portico.web.frame import assistant_page

router = APIRouter(prefix="/dashboard", include_in_schema=False, dependencies=[Depends(check_csrf)])

KNOWLEDGE_UPLOAD_MAX = 1024 * 1024
TEXT_FIELDS = ("name", "description", "greeting", "instructions")
SETTINGS_FIELDS = ("inactivity_timeout", "max_duration", "max_message_length", "language")
QUOTA_FIELDS = ("messages_per_session", "sessions_per_day", "tokens_per_day")
# A question from the unanswered report, as a heading (one line, trimmed to this).
ANSWER_MAX = 500
NAME_SENTENCE = "Give the assistant a name of 1 to 200 characters."
BEHAVIOR_SENTENCES = {
    "name": NAME_SENTENCE,
    "engine_type": "Choose the built-in engine or an OpenAI-compatible one.",
    "language": "Choose one of the languages in the list.",
}


async def _assistants_list(
    request: Request, db: SessionDep, team_id: int, status: int = 200, **context: Any
) -> Response:
    assistants = await service.list_owned(db, team_id=team_id)
    today = await service.sessions_today(db, assistant_ids=[a.id for a in assistants])
    base = {"title": "Assistants", "section": "assistants", "assistants": assistants, "today": today}
    return render(request, "assistants.html", {**base, **context}, status=status, page_url="/dashboard")


@router.get("", response_class=HTMLResponse)
async def assistants_page(
    request: Request, db: SessionDep, member: DashboardMember, done: str | None = None
) -> Response:
    notices = {
        "deleted": "The assistant was deleted. Its links and its widget no longer work.",
        "team_deleted": "The team was deleted: its assistants stopped answering at once, and everything it held "
        f"is erased within the hour. You are now working in the team {member.team_name}.",
    }
    return await _assistants_list(request, db, member.team_id, notice=notices.get(done or ""))


@router.post("/assistants")
async def create_assistant(request: Request, db: SessionDep, member: DashboardMember) -> Response:
    name = str((await request.form()).get("name", ""))
    try:
        data = parse_form(AssistantCreate, {"name": name}, sentences={"name": NAME_SENTENCE})
    except FormInvalid as invalid:
        return await _assistants_list(request, db, member.team_id, status=422, errors=invalid.errors, name=name)
    assistant = await service.create_assistant(db, member=member, data=data, vault=request.app.state.vault)
    return redirect(f"/dashboard/assistants/{assistant.id}/behavior")


@router.get("/assistants/{assistant_id}", response_class=HTMLResponse)
async def assistant_home(assistant: DashboardAssistant) -> Response:
    return redirect(f"/dashboard/assistants/{assistant.id}/behavior")


def _engine_fields() -> tuple[str, ...]:
    """The form's engine fields: the choice, then each reply engine's own (engines/providers.py)."""
    fields = {name: None for provider in PROVIDERS.of(Kind.REPLY) for name in provider.form_fields}
    return ("engine_type", *fields)


def _engine_form(engine: dict[str, Any]) -> dict[str, Any]:
    """Each engine's fields as stored for the engine chosen, its defaults for the others."""
    values: dict[str, Any] = {}
    for provider in reversed(PROVIDERS.of(Kind.REPLY)):
        values.update(provider.form_defaults())
    chosen = PROVIDERS.find(Kind.REPLY, engine["type"])
    if chosen is not None:
        values.update({name: engine[name] for name in chosen.form_fields if name in engine})
    return {"engine_type": engine["type"], **values}


def _engine_page(assistant: Assistant) -> dict[str, Any]:
    """What the Behavior page's Engine card needs: the engines to choose from, and which secrets
    the stored engine has (shown as "a key is saved", never the key)."""
    engine = assistant.draft["engine"]
    chosen = PROVIDERS.find(Kind.REPLY, engine["type"])
    saved = {chosen.name: secrets.saved(chosen, engine)} if chosen is not None else {}
    return {"engine_providers": PROVIDERS.of(Kind.REPLY), "saved_secrets": saved}


def _behavior_form(assistant: Assistant) -> dict[str, Any]:
    draft = assistant.draft
    return {
        "name": assistant.name,
        "description": assistant.description,
        "greeting_enabled": draft.get("greeting_enabled", True),
        "greeting": draft["greeting"],
        "instructions": draft["instructions"],
        "knowledge": draft["knowledge"],
        **_engine_form(draft["engine"]),
        "starters": service.starters_of(draft),
        **draft["settings"],
    }


def _limits_form(assistant: Assistant) -> dict[str, Any]:
    return {name: getattr(assistant, name) for name in QUOTA_FIELDS}


@router.get("/assistants/{assistant_id}/behavior", response_class=HTMLResponse)
async def behavior_page(
    request: Request, db: SessionDep, assistant: DashboardAssistant, done: str | None = None, answer: str | None = None
) -> Response:
    notices = {
        "saved": "Draft saved. Publish to let guests see it.",
        "limits": "Limits saved. They apply at once.",
        "duplicated": "This is the copy: unpublished and Offline, with its own public link and widget id and "
        "no users yet. Publish it and switch it Live when it is ready.",
    }
    form = _behavior_form(assistant)
    if answer is not None and (question := " ".join(answer.split())[:ANSWER_MAX]):
        # From the unanswered report: the question as a new section at the end of the knowledge,
        # for the owner to answer; nothing is saved until the owner saves.
        knowledge = form["knowledge"].rstrip()
        form["knowledge"] = f"{knowledge}\n\n## {question}\n" if knowledge else f"## {question}\n"
    return await assistant_page(
        request,
        db,
        assistant,
        "behavior",
        "Behavior",
        answering=answer is not None,
        form=form,
        limits=_limits_form(assistant),
        notice=notices.get(done or ""),
        **_engine_page(assistant),
    )


@router.post("/assistants/{assistant_id}/limits")
async def save_limits(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    """The Limits card: the API's `quotas`, applied at once (an empty box means 0, unlimited)."""
    form = await request.form()
    typed = {name: str(form.get(name, "")).strip() for name in QUOTA_FIELDS}
    try:
        update = parse_form(AssistantUpdate, {"quotas": {name: value or "0" for name, value in typed.items()}})
    except FormInvalid as invalid:
        return await assistant_page(
            request,
            db,
            assistant,
            "behavior",
            "Behavior",
            status=422,
            form=_behavior_form(assistant),
            limits=typed,
            limit_errors=invalid.errors,
            **_engine_page(assistant),
        )
    await service.update_assistant(db, member=member, assistant=assistant, data=update, vault=request.app.state.vault)
    return redirect(f"/dashboard/assistants/{assistant.id}/behavior?done=limits")


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


def _behavior_data(form: FormData, knowledge: str) -> dict[str, Any]:
    """The form as the API's AssistantUpdate body; the model does every check."""
    text = {key: str(form.get(key, "")) for key in (*TEXT_FIELDS, *_engine_fields(), *SETTINGS_FIELDS)}
    engine: dict[str, Any] = {"type": text["engine_type"] or "builtin"}
    provider = PROVIDERS.find(Kind.REPLY, engine["type"])
    if provider is not None:
        # The engine's fields are read only for the engine that uses them (they are hidden otherwise).
        engine.update({key: text[key].strip() for key in provider.form_fields})
        for secret in provider.secrets:
            if form.get(f"clear_{secret}") == "1":
                engine[secret] = ""  # an empty secret clears the saved one
            elif form.get(secret):
                engine[secret] = str(form.get(secret))
    return {
        **{key: text[key] for key in TEXT_FIELDS},
        "greeting_enabled": form.get("greeting_enabled") == "1",
        "knowledge": knowledge.replace("\r\n", "\n"),
        "engine": engine,
        "settings": {key: text[key].strip() for key in SETTINGS_FIELDS},
        # Four boxes; the empty ones are no starter.
        "starters": _starters(form),
    }


def _starters(form: FormData) -> list[str]:
    return [str(value) for value in form.getlist("starter") if str(value).strip()]


@router.post("/assistants/{assistant_id}/behavior")
async def save_behavior(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    form = await request.form()
    errors: dict[str, str] = {}
    upload = form.get("knowledge_file")
    uploaded = None
    try:
        uploaded = await _read_upload(upload if isinstance(upload, UploadFile) else None)
    except InvalidRequest as exc:
        errors["knowledge_file"] = exc.message
    knowledge = uploaded if uploaded is not None else str(form.get("knowledge", ""))
    data = _behavior_data(form, knowledge)
    try:
        update = parse_form(AssistantUpdate, data, rename={"engine": "engine_type"}, sentences=BEHAVIOR_SENTENCES)
    except FormInvalid as invalid:
        errors = {**invalid.errors, **errors}
    if errors:
        # Show what was typed, not what is saved, so nothing has to be typed twice.
        typed = {key: str(form.get(key, "")) for key in (*TEXT_FIELDS, *_engine_fields(), *SETTINGS_FIELDS)}
        form_values = {
            **typed,
            "greeting_enabled": data["greeting_enabled"],
            "knowledge": knowledge,
            "starters": [str(value) for value in form.getlist("starter")],
        }
        return await assistant_page(
            request,
            db,
            assistant,
            "behavior",
            "Behavior",
            status=422,
            form=form_values,
            errors=errors,
            limits=_limits_form(assistant),
            **_engine_page(assistant),
        )
    await service.update_assistant(db, member=member, assistant=assistant, data=update, vault=request.app.state.vault)
    return redirect(f"/dashboard/assistants/{assistant.id}/behavior?done=saved")


async def _publish_page(
    request: Request, db: SessionDep, assistant: Assistant, status: int = 200, **context: Any
) -> Response:
    versions = await service.list_versions(db, assistant=assistant)
    changes = await diff.draft_diff(db, assistant=assistant)
    return await assistant_page(
        request, db, assistant, "publish", "Publish", status=status, versions=versions, diff=changes, **context
    )


@router.get("/assistants/{assistant_id}/publish", response_class=HTMLResponse)
async def publish_page(
    request: Request, db: SessionDep, assistant: DashboardAssistant, done: str | None = None
) -> Response:
    if assistant.status == Status.LIVE:
        published = f"Published version {assistant.published_version}. Guests now get it."
    else:
        published = (
            f"Published version {assistant.published_version}. The assistant is Offline: "
            "guests get this version once you switch it Live."
        )
    notices = {
        "published": published,
        "restored": "The version was copied into the draft. Publish to let guests see it.",
        "nothing": f"Nothing new to publish: the draft is the same as version {assistant.published_version}.",
        "status": f"The assistant is {'Live' if assistant.status == Status.LIVE else 'Offline'}.",
    }
    return await _publish_page(request, db, assistant, notice=notices.get(done or ""))


@router.post("/assistants/{assistant_id}/publish")
async def publish(request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember) -> Response:
    problems = service.draft_problems(assistant.draft)
    if problems:
        return await _publish_page(request, db, assistant, status=422, problems=problems)
    version = await service.publish_if_changed(db, member=member, assistant=assistant)
    done = "published" if version is not None else "nothing"
    return redirect(f"/dashboard/assistants/{assistant.id}/publish?done={done}")


@router.post("/assistants/{assistant_id}/versions/{number}/restore")
async def restore(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember, number: int) -> Response:
    await service.restore_version(db, member=member, assistant=assistant, number=number)
    return redirect(f"/dashboard/assistants/{assistant.id}/publish?done=restored")


@router.get("/assistants/{assistant_id}/preview", response_class=HTMLResponse)
async def preview_page(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    intro = await preview_service.preview_intro(db, assistant=assistant)
    return await assistant_page(request, db, assistant, "preview", "Preview", intro=intro)


@router.post("/assistants/{assistant_id}/preview/sessions")
async def start_preview(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    form = await request.form()
    session = await preview_service.start_preview(db, assistant=assistant, use_published=form.get("use") == "published")
    greeting, starters = await preview_service.preview_opening(db, assistant=assistant, session=session)
    return JSONResponse({"session_id": session.id, "greeting": greeting, "starters": starters}, status_code=201)


@router.post("/assistants/{assistant_id}/preview/sessions/{session_id}/messages")
async def preview_message(
    request: Request, db: SessionDep, assistant: DashboardAssistant, settings: SettingsDep, session_id: Id
) -> Response:
    form = await request.form()
    content = str(form.get("content", ""))
    if not content.strip():
        raise InvalidRequest("Write something: the message is empty.")
    pending = await preview_service.accept_preview_message(
        db, assistant=assistant, session_id=session_id, content=content, vault=request.app.state.vault
    )
    # The guest's message must be committed before the engine runs, as for guests.
    await db.commit()
    events = messages_service.stream_reply(pending, store=request.app.state.store, cutoffs=request.app.state.cutoffs)
    return event_stream(({"event": e.kind, "data": json.dumps(e.data)} async for e in events), settings)


@router.get("/assistants/{assistant_id}/settings", response_class=HTMLResponse)
async def settings_page(request: Request, db: SessionDep, assistant: DashboardAssistant) -> Response:
    return await assistant_page(request, db, assistant, "settings", "Settings")


@router.post("/assistants/{assistant_id}/duplicate")
async def duplicate_assistant(db: SessionDep, assistant: DashboardAssistant, member: DashboardMember) -> Response:
    duplicate = await service.duplicate_assistant(db, member=member, assistant=assistant)
    return redirect(f"/dashboard/assistants/{duplicate.id}/behavior?done=duplicated")


@router.post("/assistants/{assistant_id}/delete")
async def delete_assistant(
    request: Request, db: SessionDep, assistant: DashboardAssistant, member: DashboardMember
) -> Response:
    """Deleted as the API deletes (guests cut at once), once the owner has typed its name."""
    typed = str((await request.form()).get("confirm_name", ""))
    if typed.strip() != assistant.name:
        problem = "Type the assistant's name exactly as shown above to delete it." if typed.strip() else None
        errors = {"confirm_name": problem or "Type the assistant's name to confirm."}
        return await assistant_page(
            request, db, assistant, "settings", "Settings", status=422, errors=errors, confirm_name=typed
        )
    await service.delete_assistant(db, member=member, assistant=assistant)
    return redirect("/dashboard?done=deleted")


@router.post("/assistants/{assistant_id}/preview/sessions/{session_id}/messages/{message_id}/feedback")
async def preview_feedback(
    request: Request, db: SessionDep, assistant: DashboardAssistant, session_id: Id, message_id: Id
) -> Response:
    """The guest's thumbs, tried in the preview (a form: rating, reason, comment): the feedback JSON."""
    form = await request.form()
    fields = {name: str(form[name]) for name in ("rating", "reason", "comment") if form.get(name)}
    try:
        body = parse_form(FeedbackIn, fields)
    except FormInvalid as invalid:
        raise InvalidRequest(" ".join(f"{name}: {text}" for name, text in invalid.errors.items())) from None
    comment = await preview_service.rate_preview_reply(
        db,
        assistant=assistant,
        session_id=session_id,
        message_id=message_id,
        rating=body.rating,
        reason=body.reason,
        comment=body.comment,
    )
    out = FeedbackOut(message_id=message_id, rating=body.rating, reason=body.reason, comment=comment)
    return JSONResponse(out.model_dump(mode="json"))
