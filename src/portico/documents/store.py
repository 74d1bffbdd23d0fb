"""The documents' rows as the assistants service reads them at Publish and the preview reads them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from portico.models import Document
from portico.vocabulary import DocumentStatus


async def ready_texts(db: AsyncSession, *, assistant_id: int) -> list[dict[str, Any]]:
    """The ready documents as a version keeps them: id, title, digest and the extracted Markdown."""
    query = (
        select(Document)
        .options(undefer(Document.text))
        .where(Document.assistant_id == assistant_id, Document.status == DocumentStatus.READY)
        .order_by(Document.id)
    )
    return [{"id": d.id, "title": d.title, "digest": d.digest, "text": d.text} for d in await db.scalars(query)]


def fingerprints(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the draft holds of its documents (no text): enough for its digest to change with them."""
    return [{"id": d["id"], "title": d["title"], "digest": d["digest"]} for d in documents]
