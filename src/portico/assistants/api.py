from __future__ import annotations

from fastapi import APIRouter, Response

from portico.access import links, qr
from portico.assistants import diff, service
from portico.assistants.deps import OwnedAssistant
from portico.assistants.schemas import (
    AssistantCreate,
    AssistantList,
    AssistantOut,
    AssistantUpdate,
    ChangeOut,
    DiffLineOut,
    DraftDiffOut,
    DraftOut,
    PublishOut,
    Quotas,
    ShareIn,
    StatusIn,
    VersionList,
    VersionOut,
    VoiceOut,
)
from portico.config import Settings
from portico.db import SessionDep
from portico.deps import SettingsDep, VaultDep
from portico.identity.deps import CurrentMember
from portico.models import Assistant
from portico.teams.schemas import AuditEntryOut

router = APIRouter(prefix="/assistants", tags=["assistants"])


def assistant_out(assistant: Assistant, *, settings: Settings, published_digest: str | None) -> AssistantOut:
    draft = assistant.draft
    return AssistantOut(
        id=assistant.id,
        public_id=assistant.public_id,
        name=assistant.name,
        description=assistant.description,
        status=assistant.status,  # type: ignore[arg-type]
        share_mode=assistant.share_mode,  # type: ignore[arg-type]
        published_version=assistant.published_version,
        has_unpublished_changes=published_digest != assistant.draft_digest,
        public_url=links.public_url(assistant, base_url=settings.base_url),
        widget_id=assistant.widget_id,
        has_access_code=assistant.access_code_hash is not None,
        public_link_expires_at=assistant.public_link_expires_at,
        retention_days=assistant.retention_days,
        store_transcripts=assistant.store_transcripts,
        allowed_domains=assistant.allowed_domains,
        quotas=Quotas(
            messages_per_session=assistant.messages_per_session,
            sessions_per_day=assistant.sessions_per_day,
            tokens_per_day=assistant.tokens_per_day,
        ),
        created_at=assistant.created_at,
        updated_at=assistant.updated_at,
        draft=DraftOut(
            instructions=draft["instructions"],
            greeting=draft["greeting"],
            greeting_enabled=draft.get("greeting_enabled", True),
            knowledge=draft["knowledge"],
            engine=service.engine_view(draft["engine"]),
            settings=draft["settings"],
            voice=VoiceOut.model_validate(service.voice_view(draft)),
            starters=service.starters_of(draft),
        ),
    )


async def _out(db: SessionDep, assistant: Assistant, settings: Settings) -> AssistantOut:
    digests = await service.published_digests(db, [assistant])
    return assistant_out(assistant, settings=settings, published_digest=digests.get(assistant.id))


@router.post("", status_code=201)
async def create_assistant(
    body: AssistantCreate, db: SessionDep, member: CurrentMember, settings: SettingsDep, vault: VaultDep
) -> AssistantOut:
    assistant = await service.create_assistant(db, member=member, data=body, vault=vault)
    return await _out(db, assistant, settings)


@router.get("")
async def list_assistants(db: SessionDep, member: CurrentMember, settings: SettingsDep) -> AssistantList:
    assistants = await service.list_owned(db, team_id=member.team_id)
    digests = await service.published_digests(db, assistants)
    return AssistantList(
        items=[assistant_out(a, settings=settings, published_digest=digests.get(a.id)) for a in assistants]
    )


@router.get("/{assistant_id}")
async def get_assistant(assistant: OwnedAssistant, db: SessionDep, settings: SettingsDep) -> AssistantOut:
    return await _out(db, assistant, settings)


@router.patch("/{assistant_id}")
async def update_assistant(
    body: AssistantUpdate,
    assistant: OwnedAssistant,
    member: CurrentMember,
    db: SessionDep,
    settings: SettingsDep,
    vault: VaultDep,
) -> AssistantOut:
    await service.update_assistant(db, member=member, assistant=assistant, data=body, vault=vault)
    return await _out(db, assistant, settings)


@router.delete("/{assistant_id}", status_code=204)
async def delete_assistant(assistant: OwnedAssistant, member: CurrentMember, db: SessionDep) -> Response:
    await service.delete_assistant(db, member=member, assistant=assistant)
    return Response(status_code=204)


@router.get("/{assistant_id}/draft/diff")
async def draft_diff(assistant: OwnedAssistant, db: SessionDep) -> DraftDiffOut:
    """What a Publish would change for guests (the draft against the published version), and who
    edited the draft since the last Publish. Secrets are never shown: "API key changed" at most."""
    found = await diff.draft_diff(db, assistant=assistant)
    return DraftDiffOut(
        published_version=found.published_version,
        has_changes=found.has_changes,
        changes=[
            ChangeOut(
                field=change.field,
                label=change.label,
                lines=[DiffLineOut(kind=line.kind, text=line.text, count=line.count) for line in change.lines],
                before=change.before,
                after=change.after,
                note=change.note,
            )
            for change in found.changes
        ],
        edits=[AuditEntryOut(**entry.as_dict()) for entry in found.edits],
    )


@router.post("/{assistant_id}/duplicate", status_code=201)
async def duplicate_assistant(
    assistant: OwnedAssistant, member: CurrentMember, db: SessionDep, settings: SettingsDep
) -> AssistantOut:
    """A copy of the draft, knowledge, starters and settings as a new unpublished, Offline assistant
    ("Copy of ..."), with its own public link and widget id; no versions, links, Logs or access code."""
    duplicate = await service.duplicate_assistant(db, member=member, assistant=assistant)
    return await _out(db, duplicate, settings)


@router.post("/{assistant_id}/publish", status_code=201)
async def publish(assistant: OwnedAssistant, member: CurrentMember, db: SessionDep) -> PublishOut:
    version = await service.publish(db, member=member, assistant=assistant)
    return PublishOut(version=version.number, published_at=version.published_at)


@router.get("/{assistant_id}/versions")
async def list_versions(assistant: OwnedAssistant, db: SessionDep) -> VersionList:
    versions = await service.list_versions(db, assistant=assistant)
    return VersionList(
        items=[
            VersionOut(version=v.number, published_at=v.published_at, current=v.number == assistant.published_version)
            for v in versions
        ]
    )


@router.put("/{assistant_id}/status")
async def set_status(
    body: StatusIn, assistant: OwnedAssistant, member: CurrentMember, db: SessionDep, settings: SettingsDep
) -> AssistantOut:
    await service.set_status(db, member=member, assistant=assistant, status=body.status)
    return await _out(db, assistant, settings)


@router.put("/{assistant_id}/share")
async def set_share(
    body: ShareIn, assistant: OwnedAssistant, member: CurrentMember, db: SessionDep, settings: SettingsDep
) -> AssistantOut:
    await service.set_share_mode(db, member=member, assistant=assistant, mode=body.mode, public_link=body)
    return await _out(db, assistant, settings)


@router.post("/{assistant_id}/public-link/rotate")
async def rotate_public_link(
    assistant: OwnedAssistant, member: CurrentMember, db: SessionDep, settings: SettingsDep
) -> AssistantOut:
    await service.rotate_public_link(db, member=member, assistant=assistant)
    return await _out(db, assistant, settings)


@router.get("/{assistant_id}/public-link/qr", response_class=Response, responses=qr.RESPONSES)
async def public_link_qr(assistant: OwnedAssistant, settings: SettingsDep) -> Response:
    """The public link's QR code as SVG (owner-only, like the link's other settings)."""
    return qr.response(links.public_url(assistant, base_url=settings.base_url))


@router.post("/{assistant_id}/widget-id/rotate")
async def rotate_widget_id(
    assistant: OwnedAssistant, member: CurrentMember, db: SessionDep, settings: SettingsDep
) -> AssistantOut:
    """A new widget id: websites must update their snippet. The public link is not affected."""
    await service.rotate_widget_id(db, member=member, assistant=assistant)
    return await _out(db, assistant, settings)
