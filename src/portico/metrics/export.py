"""Streamed exports of Logs: CSV (a session a row) and JSON Lines (a session with its messages a line)."""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from portico.kit.spreadsheet import SafeWriter
from portico.metrics.logs import LogFilters, export_batches, message_dict

CSV_COLUMNS = [
    "session_id",
    "started_at",
    "ended_at",
    "user",
    "channel",
    "duration_seconds",
    "messages",
    "tokens_in",
    "tokens_out",
    "end_reason",
    "version",
    "rated_up",
    "rated_down",
    "ratings",
]


async def csv_lines(
    sessionmaker: async_sessionmaker[AsyncSession], *, assistant_id: int, filters: LogFilters
) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = SafeWriter(buffer)
    writer.writerow(CSV_COLUMNS)
    async for batch in export_batches(sessionmaker, assistant_id=assistant_id, filters=filters, with_messages=False):
        for row, _messages in batch:
            record = row.as_dict()
            writer.writerow(
                [
                    record["id"],
                    record["started_at"],
                    record["ended_at"] or "",
                    record["user"],
                    record["channel"],
                    record["duration_seconds"],
                    record["messages"],
                    record["tokens_in"],
                    record["tokens_out"],
                    record["end_reason"] or "",
                    record["version"],
                    record["rated_up"],
                    record["rated_down"],
                    # Each starts with its rating (up, down), so a comment never starts a cell.
                    "; ".join(str(rated) for rated in row.ratings),
                ]
            )
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.getvalue():
        yield buffer.getvalue()


async def jsonl_lines(
    sessionmaker: async_sessionmaker[AsyncSession], *, assistant_id: int, filters: LogFilters
) -> AsyncIterator[str]:
    async for batch in export_batches(sessionmaker, assistant_id=assistant_id, filters=filters, with_messages=True):
        yield "".join(
            json.dumps({**row.as_dict(), "messages": [message_dict(m) for m in messages]}, ensure_ascii=False) + "\n"
            for row, messages in batch
        )
