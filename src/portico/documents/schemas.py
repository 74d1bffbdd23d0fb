from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from portico.models import Document
from portico.vocabulary import DocumentStatus


class DocumentOut(BaseModel):
    id: int
    title: str = Field(description="What sources name: the file's name without its extension.")
    filename: str
    kind: str = Field(description="pdf, docx, pptx, xlsx, csv, html, markdown or text.")
    size_bytes: int
    pages: int | None = Field(description="Pages (slides for PowerPoint); null for files without pages.")
    passages: int = Field(description="The passages the assistant finds answers in.")
    chars: int
    status: DocumentStatus
    error_code: str | None = Field(description="Why a failed document failed, for programs.")
    reason: str = Field(description="Why a failed document failed, in a sentence.")
    has_original: bool = Field(description="Whether the uploaded file was kept, for the team to download.")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, document: Document) -> DocumentOut:
        return cls(
            id=document.id,
            title=document.title,
            filename=document.filename,
            kind=document.kind,
            size_bytes=document.size_bytes,
            pages=document.pages,
            passages=document.passages,
            chars=document.chars,
            status=DocumentStatus(document.status),
            error_code=document.error_code,
            reason=document.reason,
            has_original=document.has_original,
            created_at=document.created_at,
            updated_at=document.updated_at,
        )


class DocumentText(DocumentOut):
    text: str = Field(description="The extracted Markdown the assistant reads, with `<!-- page N -->` markers.")


class DocumentList(BaseModel):
    documents: list[DocumentOut]
