"""Documents under an assistant: upload (several files at once), list, read the extracted text,
replace, delete, and download the file itself when kept. A member's team only; Editors may."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Request, Response, UploadFile, status

from portico.assistants.deps import OwnedAssistant
from portico.config import Settings
from portico.db import SessionDep
from portico.deps import SettingsDep
from portico.documents import service
from portico.documents.errors import DocumentTooLarge
from portico.documents.pool import ConversionPool
from portico.documents.schemas import DocumentList, DocumentOut, DocumentText
from portico.identity.deps import CurrentMember
from portico.identity.roles import Action, require
from portico.schemas import Id

router = APIRouter(prefix="/assistants/{assistant_id}/documents", tags=["documents"])
CHUNK = 1024 * 1024


def _pool(request: Request, settings: Settings) -> ConversionPool:
    pool: ConversionPool | None = getattr(request.app.state, "documents_pool", None)
    if pool is None:
        pool = request.app.state.documents_pool = ConversionPool(settings.document_workers)
    return pool


async def _read(file: UploadFile, settings: Settings) -> service.Upload:
    """The file's bytes, refusing it once it passes the limit (413) rather than after reading it all."""
    name = service.clean_filename(file.filename or "")
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(CHUNK):
        size += len(chunk)
        if size > settings.document_max_bytes:
            raise DocumentTooLarge(
                f"{name} is larger than {settings.document_max_bytes / 1_000_000:g} MB, the most a document may be."
            )
        chunks.append(chunk)
    return service.Upload(name, b"".join(chunks))


@router.post("", status_code=status.HTTP_201_CREATED)
async def upload_documents(
    request: Request,
    db: SessionDep,
    member: CurrentMember,
    assistant: OwnedAssistant,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="One or more files (the field `files`, repeated).")],
) -> DocumentList:
    """Upload files as documents of the draft. Each is converted on its own: one that cannot be read
    is listed as `failed` with its reason; when none can, 422 with the reason."""
    require(member, Action.EDIT)
    uploads = [await _read(file, settings) for file in files]
    documents = await service.upload(
        db, member=member, assistant=assistant, uploads=uploads, settings=settings, pool=_pool(request, settings)
    )
    return DocumentList(documents=[DocumentOut.of(d) for d in documents])


@router.get("")
async def list_documents(db: SessionDep, assistant: OwnedAssistant) -> DocumentList:
    documents = await service.list_documents(db, assistant=assistant)
    return DocumentList(documents=[DocumentOut.of(d) for d in documents])


@router.get("/{document_id}")
async def get_document(db: SessionDep, assistant: OwnedAssistant, document_id: Id) -> DocumentText:
    """A document with the text the assistant reads from it."""
    document = await service.get_document(db, assistant=assistant, document_id=document_id, text=True)
    return DocumentText(**DocumentOut.of(document).model_dump(), text=document.text)


@router.put("/{document_id}")
async def replace_document(
    request: Request,
    db: SessionDep,
    member: CurrentMember,
    assistant: OwnedAssistant,
    settings: SettingsDep,
    document_id: Id,
    file: Annotated[UploadFile, File(description="The new file.")],
) -> DocumentOut:
    """A new file for the document; guests read the old text until the next Publish."""
    require(member, Action.EDIT)
    item = await _read(file, settings)
    document = await service.replace(
        db,
        member=member,
        assistant=assistant,
        document_id=document_id,
        item=item,
        settings=settings,
        pool=_pool(request, settings),
    )
    return DocumentOut.of(document)


@router.delete("/{document_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_document(db: SessionDep, member: CurrentMember, assistant: OwnedAssistant, document_id: Id) -> None:
    await service.delete(db, member=member, assistant=assistant, document_id=document_id)


@router.get("/{document_id}/original", response_class=Response)
async def download_original(db: SessionDep, assistant: OwnedAssistant, document_id: Id) -> Response:
    """The uploaded file, when PORTICO_DOCUMENT_KEEP_ORIGINALS kept it; never reachable by guests."""
    document, data = await service.original(db, assistant=assistant, document_id=document_id)
    return Response(
        data,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f"attachment; filename*=UTF-8''{_quoted(document.filename)}"},
    )


def _quoted(name: str) -> str:
    return quote(name, safe="")
