"""Documents under an assistant: upload (several files at once), list, read the extracted text,
replace, delete, and download the file itself when kept. A member's team only; Editors may."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, File, Request, Response, UploadFile, status
from sqlalchemy.ext.asyncio import AsyncSession

from portico.assistants import service as assistants
from portico.assistants.deps import OwnedAssistant
from portico.config import Settings
from portico.db import SessionDep, writer_lock
from portico.deps import BearerToken, SettingsDep
from portico.documents import service
from portico.documents.errors import DocumentTooLarge
from portico.documents.pool import ConversionPool
from portico.documents.schemas import DocumentList, DocumentOut, DocumentText
from portico.identity.deps import CurrentMember, current_member
from portico.identity.roles import Action, Member, require
from portico.schemas import Id

router = APIRouter(prefix="/assistants/{assistant_id}/documents", tags=["documents"])
# Uploading and replacing convert files for up to PORTICO_DOCUMENT_TIMEOUT seconds each, which must
# not happen inside the request's transaction (on SQLite it holds the one write lock, and every
# guest's message would wait): these routes check who is asking in a short transaction of their own,
# convert, then write in another. The assembly mounts them beside the owner API, not under it.
uploads = APIRouter(prefix="/api/v1/assistants/{assistant_id}/documents", tags=["documents"])
CHUNK = 1024 * 1024


@asynccontextmanager
async def _transaction(request: Request) -> AsyncIterator[AsyncSession]:
    """A transaction of this request's own, committed when the block ends without an error."""
    async with writer_lock(request.app.state.engine), request.app.state.sessionmaker() as db:
        yield db
        await db.commit()


async def editor(request: Request, token: BearerToken, assistant_id: Id) -> Member:
    """The token's member, who may edit this assistant's draft (another team's assistant: 404)."""
    async with _transaction(request) as db:
        member = await current_member(request, db, token)
        await assistants.get_owned(db, team_id=member.team_id, assistant_id=assistant_id)
        require(member, Action.EDIT)
    return member


Editor = Annotated[Member, Depends(editor)]


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


@uploads.post("", status_code=status.HTTP_201_CREATED)
async def upload_documents(
    request: Request,
    member: Editor,
    assistant_id: Id,
    settings: SettingsDep,
    files: Annotated[list[UploadFile], File(description="One or more files (the field `files`, repeated).")],
) -> DocumentList:
    """Upload files as documents of the draft. Each is converted on its own: one that cannot be read
    is listed as `failed` with its reason; when none can, 422 with the reason."""
    items = [await _read(file, settings) for file in files]
    pool = _pool(request, settings)
    converted = [(item, await service.convert(item, settings=settings, pool=pool)) for item in items]
    async with _transaction(request) as db:
        assistant = await assistants.get_owned(db, team_id=member.team_id, assistant_id=assistant_id)
        documents = await service.upload(db, member=member, assistant=assistant, converted=converted, settings=settings)
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


@uploads.put("/{document_id}")
async def replace_document(
    request: Request,
    member: Editor,
    assistant_id: Id,
    settings: SettingsDep,
    document_id: Id,
    file: Annotated[UploadFile, File(description="The new file.")],
) -> DocumentOut:
    """A new file for the document; guests read the old text until the next Publish."""
    item = await _read(file, settings)
    result = await service.convert(item, settings=settings, pool=_pool(request, settings))
    async with _transaction(request) as db:
        assistant = await assistants.get_owned(db, team_id=member.team_id, assistant_id=assistant_id)
        document = await service.replace(
            db, member=member, assistant=assistant, document_id=document_id, item=item, result=result, settings=settings
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
