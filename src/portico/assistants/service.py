from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from portico.access import codes
from portico.assistants.errors import AssistantNotFound, DraftInvalid
from portico.assistants.schemas import (
    VOICE_DEFAULTS,
    AssistantCreate,
    AssistantUpdate,
    DraftFields,
    Quotas,
    SessionSettings,
    ShareIn,
    VoiceIn,
)
from portico.chat import lifecycle
from portico.documents import store as documents
from portico.engines import PROVIDERS, Kind, ProviderConfig, secrets
from portico.errors import NotFound
from portico.identity import audit
from portico.identity.roles import Action, Member, require
from portico.kit.crypto import Vault, new_public_id
from portico.metrics.quotas import start_counting
from portico.models import Assistant, AssistantVersion, ChatSession, utcnow
from portico.models.assistant import QUOTAS
from portico.vocabulary import AuditAction, Channel, ShareMode, Status


def default_draft() -> dict[str, Any]:
    return {
        "instructions": "",
        "greeting": "",
        "greeting_enabled": True,
        "knowledge": "",
        "engine": {"type": "builtin"},
        "settings": SessionSettings().model_dump(),
    }


def config_digest(config: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _merge_draft(draft: dict[str, Any], data: DraftFields, vault: Vault) -> dict[str, Any]:
    merged = dict(draft)
    for field in ("instructions", "greeting", "greeting_enabled", "knowledge"):
        value = getattr(data, field)
        if value is not None:
            merged[field] = value
    if data.settings is not None:
        merged["settings"] = {**draft["settings"], **data.settings.model_dump(exclude_unset=True)}
    if data.engine is not None:
        merged["engine"] = _merge_engine(draft["engine"], data.engine, vault)
    if data.voice is not None:
        merged["voice"] = _merge_voice(voice_of(draft), data.voice, vault)
    if data.starters is not None:
        # No starters are no key at all, as in drafts made before starters: one form, one digest.
        merged.pop("starters", None)
        if data.starters:
            merged["starters"] = list(data.starters)
    return merged


def starters_of(config: dict[str, Any]) -> list[str]:
    """A draft's or a version's starter questions (none in those made before starters)."""
    return list(config.get("starters", []))


def voice_of(config: dict[str, Any]) -> dict[str, Any]:
    """A draft's or a version's voice settings (the defaults, voice off, in those made before voice:
    no key at all until the owner sets one, so older drafts keep their digest)."""
    return {**VOICE_DEFAULTS, **config.get("voice", {})}


def _merge_voice(old: dict[str, Any], new: VoiceIn, vault: Vault) -> dict[str, Any]:
    merged = {**old, **new.model_dump(exclude_unset=True, exclude={"speech_to_text"})}
    if new.speech_to_text is not None:
        provider = PROVIDERS.get(Kind.SPEECH_TO_TEXT, new.speech_to_text.type)
        merged["speech_to_text"] = secrets.merge(provider, old["speech_to_text"], new.speech_to_text, vault)
    return merged


def voice_view(config: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of the voice settings: never the speech server's key, only `has_api_key`."""
    voice = voice_of(config)
    stt = voice["speech_to_text"]
    return {**voice, "speech_to_text": secrets.public_view(PROVIDERS.get(Kind.SPEECH_TO_TEXT, stt["type"]), stt)}


def _merge_engine(old: dict[str, Any], new: ProviderConfig, vault: Vault) -> dict[str, Any]:
    return secrets.merge(PROVIDERS.get(Kind.REPLY, new.type), old, new, vault)


def engine_view(engine: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of a stored engine configuration: never a secret, only `has_<secret>`."""
    return secrets.public_view(PROVIDERS.get(Kind.REPLY, engine["type"]), engine)


def draft_problems(draft: dict[str, Any]) -> list[str]:
    """What stops this draft from being published, in sentences an owner can act on."""
    engine = draft["engine"]
    problems = PROVIDERS.get(Kind.REPLY, engine["type"]).checks(engine, draft)
    voice = voice_of(draft)
    if voice["input"]:
        stt = voice["speech_to_text"]
        problems += PROVIDERS.get(Kind.SPEECH_TO_TEXT, stt["type"]).checks(stt, draft)
    return problems


async def create_assistant(db: AsyncSession, *, member: Member, data: AssistantCreate, vault: Vault) -> Assistant:
    require(member, Action.EDIT)
    draft = _merge_draft(default_draft(), data, vault)
    assistant = Assistant(
        team_id=member.team_id,
        public_id=new_public_id(),
        widget_id=new_public_id(),
        name=data.name,
        description=data.description,
        draft=draft,
        draft_digest=config_digest(draft),
    )
    db.add(assistant)
    await db.flush()
    await audit.record(
        db, member=member, action=AuditAction.ASSISTANT_CREATED, assistant_id=assistant.id, name=data.name
    )
    return assistant


COPY_PREFIX = "Copy of "
NAME_MAX = 200


def copy_name(name: str) -> str:
    """The duplicate's name, "Copy of X", cut to the names' limit (the end of X goes, not the prefix)."""
    return (COPY_PREFIX + name)[:NAME_MAX].rstrip()


async def duplicate_assistant(db: AsyncSession, *, member: Member, assistant: Assistant) -> Assistant:
    """A new assistant with the same draft (instructions, knowledge, starters, engine, session
    settings) and the same restrictions (retention, transcripts, allowed websites, quotas): nothing
    guests can reach. Unpublished, Offline, public, with its own public and widget ids; no versions,
    links, sessions or access code. The engine's stored key is copied as it is (docs/design.md)."""
    require(member, Action.EDIT)
    draft = copy.deepcopy(assistant.draft)
    # Documents are rows of their assistant; the copy starts without them.
    draft.pop("documents", None)
    duplicate = Assistant(
        team_id=member.team_id,
        public_id=new_public_id(),
        widget_id=new_public_id(),
        name=copy_name(assistant.name),
        description=assistant.description,
        draft=draft,
        draft_digest=config_digest(draft),
        allowed_domains=list(assistant.allowed_domains),
        retention_days=assistant.retention_days,
        store_transcripts=assistant.store_transcripts,
        **{quota: getattr(assistant, quota) for quota in QUOTAS},
    )
    db.add(duplicate)
    await db.flush()
    await audit.record(
        db,
        member=member,
        action=AuditAction.ASSISTANT_CREATED,
        assistant_id=duplicate.id,
        name=duplicate.name,
        copy_of=f"{assistant.name} (#{assistant.id})",
    )
    return duplicate


async def get_owned(db: AsyncSession, *, team_id: int, assistant_id: int, lock: bool = False) -> Assistant:
    query = (
        select(Assistant)
        .options(undefer(Assistant.draft))
        .where(Assistant.id == assistant_id, Assistant.team_id == team_id, Assistant.deleted_at.is_(None))
    )
    if lock:
        query = query.with_for_update()
    assistant = await db.scalar(query)
    if assistant is None:
        raise AssistantNotFound()
    return assistant


async def list_owned(db: AsyncSession, *, team_id: int) -> list[Assistant]:
    query = (
        select(Assistant)
        .options(undefer(Assistant.draft))
        .where(Assistant.team_id == team_id, Assistant.deleted_at.is_(None))
        .order_by(Assistant.id)
    )
    return list(await db.scalars(query))


async def published_digests(db: AsyncSession, assistants: list[Assistant]) -> dict[int, str]:
    """The digest of each assistant's published version, to tell whether the draft differs."""
    ids = [a.id for a in assistants if a.published_version is not None]
    if not ids:
        return {}
    query = (
        select(AssistantVersion.assistant_id, AssistantVersion.digest)
        .join(
            Assistant,
            and_(
                Assistant.id == AssistantVersion.assistant_id,
                Assistant.published_version == AssistantVersion.number,
            ),
        )
        .where(AssistantVersion.assistant_id.in_(ids))
    )
    return {row.assistant_id: row.digest for row in await db.execute(query)}


async def update_assistant(
    db: AsyncSession, *, member: Member, assistant: Assistant, data: AssistantUpdate, vault: Vault
) -> Assistant:
    """Drafts are an Editor's; retention, transcripts, allowed websites and quotas change what guests
    get at once, so they need an Admin."""
    require(member, Action.EDIT)
    guarded = ("retention_days", "store_transcripts", "allowed_domains", "quotas")
    if any(getattr(data, name) is not None for name in guarded):
        require(member, Action.SHARE)
    await _audit_settings(db, member=member, assistant=assistant, data=data)
    named = {"name": assistant.name, "description": assistant.description}
    before = assistant.draft
    if data.name is not None:
        assistant.name = data.name
    if data.description is not None:
        assistant.description = data.description
    if data.retention_days is not None:
        assistant.retention_days = data.retention_days
    if data.store_transcripts is not None:
        assistant.store_transcripts = data.store_transcripts
    if data.allowed_domains is not None:
        assistant.allowed_domains = data.allowed_domains
    if data.quotas is not None:
        await _set_quotas(db, assistant=assistant, quotas=data.quotas)
    draft = _merge_draft(assistant.draft, data, vault)
    edited = draft_changes(before, draft)
    edited += [name for name, value in named.items() if value != getattr(assistant, name)]
    if edited:
        # Which fields, never their values: a key (or an instruction) does not belong in the log.
        await audit.record(
            db, member=member, action=AuditAction.DRAFT_EDITED, assistant_id=assistant.id, fields=", ".join(edited)
        )
    assistant.draft = draft
    assistant.draft_digest = config_digest(draft)
    assistant.updated_at = utcnow()
    await db.flush()
    return assistant


def draft_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """The draft's fields an edit changed: `knowledge`, `settings.language`, `engine.api_key`."""
    changed: list[str] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        if name == "engine" and isinstance(old, dict) and isinstance(new, dict):
            kinds = {PROVIDERS.find(Kind.REPLY, engine["type"]) for engine in (old, new)}
            providers = [provider for provider in kinds if provider is not None]
            changed += [f"engine.{field}" for field in secrets.changed_fields(providers, old, new)]
        elif name == "voice":
            old, new = voice_of(before), voice_of(after)
            changed += [f"voice.{key}" for key in sorted(old) if key != "speech_to_text" and old[key] != new[key]]
            stt = (old["speech_to_text"], new["speech_to_text"])
            kinds = {PROVIDERS.find(Kind.SPEECH_TO_TEXT, config["type"]) for config in stt}
            providers = [provider for provider in kinds if provider is not None]
            changed += [f"voice.speech_to_text.{field}" for field in secrets.changed_fields(providers, *stt)]
        elif name == "settings" and isinstance(old, dict) and isinstance(new, dict):
            changed += [f"settings.{key}" for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
        else:
            changed.append(name)
    return changed


async def _audit_settings(db: AsyncSession, *, member: Member, assistant: Assistant, data: AssistantUpdate) -> None:
    """One entry per setting that changes what guests get, with its new value."""
    kept = {
        "retention_days": assistant.retention_days,
        "store_transcripts": assistant.store_transcripts,
        "allowed_domains": assistant.allowed_domains,
    }
    given = {name: getattr(data, name) for name in kept if getattr(data, name) is not None}
    if any(name in given and given[name] != kept[name] for name in ("retention_days", "store_transcripts")):
        await audit.record(
            db,
            member=member,
            action=AuditAction.RETENTION,
            assistant_id=assistant.id,
            days=given.get("retention_days", kept["retention_days"]),
            store_transcripts=given.get("store_transcripts", kept["store_transcripts"]),
        )
    if "allowed_domains" in given and given["allowed_domains"] != kept["allowed_domains"]:
        websites = ", ".join(given["allowed_domains"]) or "any website"
        await audit.record(
            db, member=member, action=AuditAction.ALLOWED_WEBSITES, assistant_id=assistant.id, websites=websites
        )
    if data.quotas is not None:
        changed = {k: v for k, v in data.quotas.model_dump(exclude_unset=True).items() if getattr(assistant, k) != v}
        if changed:
            await audit.record(db, member=member, action=AuditAction.QUOTAS, assistant_id=assistant.id, **changed)


async def _set_quotas(db: AsyncSession, *, assistant: Assistant, quotas: Quotas) -> None:
    """Only the quotas given change, at once. A daily cap set from 0 first counts today so far."""
    given: dict[str, int] = quotas.model_dump(exclude_unset=True)
    started = {name for name, value in given.items() if value > 0 and getattr(assistant, name) == 0}
    for name, value in given.items():
        setattr(assistant, name, value)
    await start_counting(
        db, assistant_id=assistant.id, sessions="sessions_per_day" in started, tokens="tokens_per_day" in started
    )


async def publish(db: AsyncSession, *, member: Member, assistant: Assistant) -> AssistantVersion:
    require(member, Action.PUBLISH)
    problems = draft_problems(assistant.draft)
    if problems:
        raise DraftInvalid("The draft cannot be published: " + " ".join(problems), details=problems)
    latest = await db.scalar(
        select(func.max(AssistantVersion.number)).where(AssistantVersion.assistant_id == assistant.id)
    )
    config = dict(assistant.draft)
    if "documents" in config:
        # The version keeps its documents' text: replacing a file in the draft changes nothing for
        # guests until the next Publish. Equal fingerprints in the draft mean equal texts here.
        config["documents"] = await documents.ready_texts(db, assistant_id=assistant.id)
    version = AssistantVersion(
        assistant_id=assistant.id,
        number=(latest or 0) + 1,
        config=config,
        settings=assistant.draft["settings"],
        greeting=assistant.draft["greeting"] if assistant.draft.get("greeting_enabled", True) else "",
        starters=starters_of(assistant.draft),
        digest=assistant.draft_digest,
    )
    db.add(version)
    assistant.published_version = version.number
    assistant.updated_at = utcnow()
    await db.flush()
    await audit.record(
        db, member=member, action=AuditAction.PUBLISHED, assistant_id=assistant.id, version=version.number
    )
    return version


async def publish_if_changed(db: AsyncSession, *, member: Member, assistant: Assistant) -> AssistantVersion | None:
    """Publish, unless the draft is the published version already (a second click, a stale page):
    a version the same as the last would only lengthen the history. None when nothing was new."""
    require(member, Action.PUBLISH)
    digests = await published_digests(db, [assistant])
    if digests.get(assistant.id) == assistant.draft_digest:
        return None
    return await publish(db, member=member, assistant=assistant)


async def list_versions(db: AsyncSession, *, assistant: Assistant) -> list[AssistantVersion]:
    query = (
        select(AssistantVersion)
        .where(AssistantVersion.assistant_id == assistant.id)
        .order_by(AssistantVersion.number.desc())
    )
    return list(await db.scalars(query))


async def restore_version(db: AsyncSession, *, member: Member, assistant: Assistant, number: int) -> Assistant:
    """Copy a published version back into the draft; guests see it only after the next Publish."""
    require(member, Action.PUBLISH)
    query = (
        select(AssistantVersion)
        .options(undefer(AssistantVersion.config))
        .where(AssistantVersion.assistant_id == assistant.id, AssistantVersion.number == number)
    )
    version = await db.scalar(query)
    if version is None:
        raise NotFound(f"This assistant has no version {number}.")
    # Documents stay as the draft has them: a version's texts are not rows to restore (issue 24).
    restored = {key: value for key, value in version.config.items() if key != "documents"}
    if "documents" in assistant.draft:
        restored["documents"] = assistant.draft["documents"]
    assistant.draft = {**default_draft(), **restored}
    assistant.draft_digest = config_digest(assistant.draft)
    assistant.updated_at = utcnow()
    await db.flush()
    await audit.record(
        db, member=member, action=AuditAction.VERSION_RESTORED, assistant_id=assistant.id, version=number
    )
    return assistant


async def sessions_today(db: AsyncSession, *, assistant_ids: list[int]) -> dict[int, int]:
    """Guest sessions started since midnight UTC, per assistant (owner previews do not count)."""
    if not assistant_ids:
        return {}
    midnight = utcnow().replace(hour=0, minute=0, second=0, microsecond=0)
    query = (
        select(ChatSession.assistant_id, func.count())
        .where(
            ChatSession.assistant_id.in_(assistant_ids),
            ChatSession.started_at >= midnight,
            ChatSession.channel != Channel.PREVIEW,
        )
        .group_by(ChatSession.assistant_id)
    )
    return {assistant_id: count for assistant_id, count in (await db.execute(query)).all()}


async def set_status(db: AsyncSession, *, member: Member, assistant: Assistant, status: str) -> Assistant:
    require(member, Action.SHARE)
    if status != assistant.status:
        await audit.record(db, member=member, action=AuditAction.STATUS, assistant_id=assistant.id, status=status)
        assistant.status = status
        assistant.updated_at = utcnow()
        if status == Status.OFFLINE:
            await lifecycle.assistant_offline(db, assistant_id=assistant.id)
        await db.flush()
    return assistant


async def set_share_mode(
    db: AsyncSession, *, member: Member, assistant: Assistant, mode: str, public_link: ShareIn | None = None
) -> Assistant:
    """Public or private; with `public_link`, also the public link's access code and end date."""
    require(member, Action.SHARE)
    if public_link is not None:
        code = public_link.access_code
        # Removing a code that was never set changes nothing, and is not recorded.
        if "access_code" in public_link.model_fields_set and (code is not None or assistant.access_code_hash):
            assistant.access_code_hash = None if code is None else await codes.hash_code(code)
            # Whether a code is set, never the code.
            action = AuditAction.ACCESS_CODE_REMOVED if code is None else AuditAction.ACCESS_CODE_SET
            await audit.record(db, member=member, action=action, assistant_id=assistant.id)
        ends = public_link.public_link_expires_at
        if "public_link_expires_at" in public_link.model_fields_set and ends != assistant.public_link_expires_at:
            assistant.public_link_expires_at = ends
            await audit.record(
                db,
                member=member,
                action=AuditAction.PUBLIC_LINK_EXPIRY,
                assistant_id=assistant.id,
                ends=ends.isoformat() if ends else "never",
            )
        assistant.updated_at = utcnow()
    if mode != assistant.share_mode:
        await audit.record(db, member=member, action=AuditAction.SHARE_MODE, assistant_id=assistant.id, mode=mode)
        assistant.share_mode = mode
        assistant.updated_at = utcnow()
        if mode == ShareMode.PRIVATE:
            await lifecycle.made_private(db, assistant_id=assistant.id)
        await db.flush()
    return assistant


async def rotate_public_link(db: AsyncSession, *, member: Member, assistant: Assistant) -> Assistant:
    """A new public link; the widget id stays, so embedded widgets keep working."""
    require(member, Action.SHARE)
    await audit.record(db, member=member, action=AuditAction.PUBLIC_LINK_ROTATED, assistant_id=assistant.id)
    assistant.public_id = new_public_id()
    assistant.updated_at = utcnow()
    await db.flush()
    return assistant


async def rotate_widget_id(db: AsyncSession, *, member: Member, assistant: Assistant) -> Assistant:
    """A new widget id: every website's snippet must be updated; the public link stays."""
    require(member, Action.SHARE)
    await audit.record(db, member=member, action=AuditAction.WIDGET_ID_ROTATED, assistant_id=assistant.id)
    assistant.widget_id = new_public_id()
    assistant.updated_at = utcnow()
    await db.flush()
    return assistant


async def delete_assistant(db: AsyncSession, *, member: Member, assistant: Assistant) -> None:
    require(member, Action.SHARE)
    await audit.record(
        db, member=member, action=AuditAction.ASSISTANT_DELETED, assistant_id=assistant.id, name=assistant.name
    )
    # Marked deleted: the gate answers 404 at once; the purge erases its rows later (metrics/retention.py).
    assistant.deleted_at = utcnow()
    await lifecycle.assistant_deleted(db, assistant_id=assistant.id)
    await db.flush()
