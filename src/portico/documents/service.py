"""Uploading, replacing and deleting an assistant's documents, within the limits (docs/design.md,
"Documents"). Each change rewrites the draft's list of document fingerprints, so the draft's digest
(and "unpublished changes") follows the documents; guests get them only with the next Publish."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from portico.assistants.service import config_digest
from portico.config import Settings
from portico.documents.convert import ConversionFailed, Converted, kind_of
from portico.documents.errors import DocumentFailed, DocumentNotFound, TooManyDocuments
from portico.documents.pool import ConversionPool
from portico.documents.store import fingerprints, ready_texts
from portico.engines.knowledge import split_document
from portico.identity import audit
from portico.identity.roles import Action, Member, require
from portico.models import Assistant, Document, utcnow
from portico.vocabulary import AuditAction, DocumentStatus

NAME_MAX = 255
TITLE_MAX = 200


@dataclass(frozen=True)
class Upload:
    filename: str
    data: bytes


def clean_filename(name: str) -> str:
    """The file's own name: no folders ("../../etc/passwd" is "passwd"), no control characters, at
    most 255 characters with its extension kept."""
    name = re.split(r"[/\\]", name or "")[-1]
    name = "".join(c for c in name if c.isprintable()).strip() or "document"
    if len(name) > NAME_MAX:
        suffix = PurePosixPath(name).suffix[:16]
        name = name[: NAME_MAX - len(suffix)] + suffix
    return name


def title_of(filename: str) -> str:
    return (PurePosixPath(filename).stem.strip() or filename)[:TITLE_MAX]


async def list_documents(db: AsyncSession, *, assistant: Assistant) -> list[Document]:
    query = select(Document).where(Document.assistant_id == assistant.id).order_by(Document.id)
    return list(await db.scalars(query))


async def get_document(db: AsyncSession, *, assistant: Assistant, document_id: int, text: bool = False) -> Document:
    query = select(Document).where(Document.assistant_id == assistant.id, Document.id == document_id)
    if text:
        query = query.options(undefer(Document.text))
    document = await db.scalar(query)
    if document is None:
        raise DocumentNotFound()
    return document


async def convert(item: Upload, *, settings: Settings, pool: ConversionPool) -> Converted | ConversionFailed:
    """The file as Markdown, or why it cannot be read. Called outside any transaction: a file may
    take up to PORTICO_DOCUMENT_TIMEOUT seconds, and on SQLite a transaction holds the write lock."""
    try:
        kind_of(item.filename)  # an unreadable type fails before it costs a worker
        return await pool.convert(
            item.filename, item.data, max_pages=settings.document_max_pages, seconds=settings.document_timeout
        )
    except ConversionFailed as failed:
        return failed


async def _chars_used(db: AsyncSession, *, assistant: Assistant, besides: int | None = None) -> int:
    query = select(func.coalesce(func.sum(Document.chars), 0)).where(
        Document.assistant_id == assistant.id, Document.status == DocumentStatus.READY
    )
    if besides is not None:
        query = query.where(Document.id != besides)
    return int(await db.scalar(query) or 0)


def _fill(document: Document, upload: Upload, converted: Converted, *, settings: Settings) -> None:
    document.filename = upload.filename
    document.title = title_of(upload.filename)
    document.kind = converted.kind
    document.size_bytes = len(upload.data)
    document.pages = converted.pages
    document.text = converted.text
    document.chars = len(converted.text)
    document.passages = len(split_document(document.title, converted.text))
    document.digest = hashlib.sha256(converted.text.encode()).hexdigest()
    document.status = DocumentStatus.READY
    document.error_code = None
    document.reason = ""
    document.original = upload.data if settings.document_keep_originals else None
    document.has_original = settings.document_keep_originals
    document.updated_at = utcnow()


def _too_long(used: int, converted: Converted, settings: Settings) -> ConversionFailed | None:
    if used + len(converted.text) <= settings.document_chars_per_assistant:
        return None
    return ConversionFailed(
        "document_chars_limit",
        f"The assistant's documents would hold more than {settings.document_chars_per_assistant:,} characters "
        "of text; delete or shorten some first.",
    )


async def upload(
    db: AsyncSession,
    *,
    member: Member,
    assistant: Assistant,
    converted: list[tuple[Upload, Converted | ConversionFailed]],
    settings: Settings,
) -> list[Document]:
    """The files as documents, each converted on its own: one that cannot be read is kept as
    failed with its reason, the others are ready. When none can be read, 422 with the reason."""
    require(member, Action.EDIT)
    count = await db.scalar(select(func.count()).where(Document.assistant_id == assistant.id)) or 0
    if count + len(converted) > settings.documents_per_assistant:
        raise TooManyDocuments(
            f"An assistant may have at most {settings.documents_per_assistant} documents; it has {count}, "
            f"and {len(converted)} more were sent."
        )
    used = await _chars_used(db, assistant=assistant)
    documents: list[Document] = []
    failures: list[tuple[Upload, ConversionFailed]] = []
    for item, result in converted:
        document = Document(assistant_id=assistant.id, created_at=utcnow())
        try:
            if isinstance(result, ConversionFailed):
                raise result
            if (too_long := _too_long(used, result, settings)) is not None:
                raise too_long
        except ConversionFailed as failed:
            failures.append((item, failed))
            document.filename, document.title = item.filename, title_of(item.filename)
            document.kind = item.filename.rpartition(".")[2].lower()[:16] if "." in item.filename else ""
            document.size_bytes, document.passages, document.chars = len(item.data), 0, 0
            document.status, document.error_code, document.reason = DocumentStatus.FAILED, failed.code, failed.reason
            document.text, document.digest, document.updated_at = "", "", utcnow()
            document.has_original = False
        else:
            _fill(document, item, result, settings=settings)
            used += document.chars
        documents.append(document)
    if len(failures) == len(converted):
        first, why = failures[0]
        raise DocumentFailed(
            why.code,
            f"{first.filename}: {why.reason}",
            details=[{"filename": u.filename, "code": f.code, "message": f.reason} for u, f in failures],
        )
    db.add_all(documents)
    await db.flush()
    for document in documents:
        await _audit(db, member=member, assistant=assistant, document=document, change="uploaded")
    await sync_draft(db, assistant=assistant)
    return documents


async def replace(
    db: AsyncSession,
    *,
    member: Member,
    assistant: Assistant,
    document_id: int,
    item: Upload,
    result: Converted | ConversionFailed,
    settings: Settings,
) -> Document:
    """A new file for a document: the draft reads the new text; a file that cannot be read leaves
    the document as it was (422)."""
    require(member, Action.EDIT)
    document = await get_document(db, assistant=assistant, document_id=document_id, text=True)
    if isinstance(result, ConversionFailed):
        raise DocumentFailed(result.code, f"{item.filename}: {result.reason}")
    used = await _chars_used(db, assistant=assistant, besides=document.id)
    if (too_long := _too_long(used, result, settings)) is not None:
        raise DocumentFailed(too_long.code, f"{item.filename}: {too_long.reason}")
    _fill(document, item, result, settings=settings)
    await db.flush()
    await _audit(db, member=member, assistant=assistant, document=document, change="replaced")
    await sync_draft(db, assistant=assistant)
    return document


async def delete(db: AsyncSession, *, member: Member, assistant: Assistant, document_id: int) -> None:
    require(member, Action.EDIT)
    document = await get_document(db, assistant=assistant, document_id=document_id)
    await _audit(db, member=member, assistant=assistant, document=document, change="deleted")
    await db.delete(document)
    await db.flush()
    await sync_draft(db, assistant=assistant)


async def original(db: AsyncSession, *, assistant: Assistant, document_id: int) -> tuple[Document, bytes]:
    """The uploaded file, for the team only, when it was kept (PORTICO_DOCUMENT_KEEP_ORIGINALS)."""
    document = await get_document(db, assistant=assistant, document_id=document_id)
    data = await db.scalar(select(Document.original).where(Document.id == document.id))
    if not document.has_original or data is None:
        raise DocumentNotFound("The file itself was not kept (PORTICO_DOCUMENT_KEEP_ORIGINALS is off).")
    return document, data


async def sync_draft(db: AsyncSession, *, assistant: Assistant) -> None:
    """The draft's `documents`: the ready documents' fingerprints, so its digest changes with them."""
    draft = {key: value for key, value in assistant.draft.items() if key != "documents"}
    ready = fingerprints(await ready_texts(db, assistant_id=assistant.id))
    if ready:
        draft["documents"] = ready
    assistant.draft = draft
    assistant.draft_digest = config_digest(draft)
    assistant.updated_at = utcnow()
    await db.flush()


async def _audit(db: AsyncSession, *, member: Member, assistant: Assistant, document: Document, change: str) -> None:
    # A draft edit, as the audit log's actions stand (no migration of their list): which file, how.
    await audit.record(
        db,
        member=member,
        action=AuditAction.DRAFT_EDITED,
        assistant_id=assistant.id,
        fields="documents",
        document=document.filename,
        change=change,
    )
