"""Names for private links, pasted or uploaded: one name per line, or CSV rows of name,max_sessions."""

from __future__ import annotations

import csv
import io

from pydantic import ValidationError

from portico.access.schemas import LinkIn
from portico.errors import InvalidRequest


def parse_link_rows(text: str, *, default_max_sessions: int = 0, source: str = "line") -> list[LinkIn]:
    items = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not row[0].strip():
            continue
        if number == 1 and [c.strip().lower() for c in row[:2]] == ["name", "max_sessions"]:
            continue
        cap = row[1].strip() if len(row) > 1 and row[1].strip() else str(default_max_sessions)
        if not cap.isdigit():
            raise InvalidRequest(f"{source} {number}: max_sessions must be a whole number, not '{cap}'.")
        try:
            items.append(LinkIn(name=row[0], max_sessions=int(cap)))
        except ValidationError as exc:
            error = exc.errors()[0]
            raise InvalidRequest(f"{source} {number}: {error['loc'][0]}: {error['msg']}.") from None
    if not items:
        raise InvalidRequest("There are no names in it: write one name per line.")
    return items
