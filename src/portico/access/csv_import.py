"""Names for private links, pasted or uploaded: one name per line, or CSV rows of name,max_sessions.

The rule for commas (written beside the box on the Share page): a line's last comma-separated field
is its cap only when it is a whole number; otherwise the whole line is the name, so "Smith, John"
is one person. "Smith, John, 3" is Smith, John with a cap of 3; a blank last field ("Ann,") takes
the default cap. Every bad line is reported at once, and nothing is created while one is bad.
"""

from __future__ import annotations

import csv
import io
import re

from pydantic import ValidationError

from portico.access.schemas import MAX_SESSIONS_CAP, LinkIn
from portico.errors import InvalidRequest

# A number the owner meant as a cap but which is not one (negative, a fraction): refused, not
# taken as part of the name.
NUMBERISH = re.compile(r"[+-]?\d[\d,._ ]*")
SHOWN_ERRORS = 20
NAME_PROBLEMS = {
    "string_too_short": "the name is empty.",
    "string_too_long": "the name has more than 200 characters.",
}
NAME_UNSTORABLE = "the name holds characters that cannot be stored (control characters)."
# Characters no name holds: a file with them is a binary file, not a list of names.
BINARY = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f\ufffd]")


def decode_upload(data: bytes) -> str:
    """An uploaded file as text: UTF-8 (with or without its BOM), and no control characters."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidRequest(
            "This file is not text in UTF-8. Save the list as CSV UTF-8 (or plain text) and upload it again."
        ) from None
    if BINARY.search(text):
        raise InvalidRequest(
            "This file holds characters that no name has (it looks like a binary file, not a list of names). "
            "Upload a CSV or text file with one name per line."
        )
    return text


def parse_link_rows(text: str, *, default_max_sessions: int = 0, source: str = "Line") -> list[LinkIn]:
    items: list[LinkIn] = []
    errors: list[str] = []
    for number, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if not row or not ",".join(row).strip():
            continue
        if number == 1 and [c.strip().lower() for c in row] == ["name", "max_sessions"]:
            continue
        name, cap = ",".join(row), default_max_sessions
        last = row[-1].strip() if len(row) > 1 else None
        if last == "":
            name = ",".join(row[:-1])
        elif last is not None and last.isdigit():
            name, cap = ",".join(row[:-1]), int(last)
            if cap > MAX_SESSIONS_CAP:
                errors.append(f"{source} {number}: the cap {last} is over {MAX_SESSIONS_CAP:,}.")
                continue
        elif last is not None and NUMBERISH.fullmatch(last):
            errors.append(f"{source} {number}: the cap must be a whole number from 0 (unlimited), not '{last[:20]}'.")
            continue
        try:
            items.append(LinkIn(name=name, max_sessions=cap))
        except ValidationError as exc:
            errors.append(f"{source} {number}: {NAME_PROBLEMS.get(exc.errors()[0]['type'], NAME_UNSTORABLE)}")
    if errors:
        more = f" ({len(errors) - SHOWN_ERRORS} more lines are wrong too.)" if len(errors) > SHOWN_ERRORS else ""
        raise InvalidRequest(
            f"{len(errors)} line{'s' if len(errors) != 1 else ''} to fix, nothing was created: "
            + " ".join(errors[:SHOWN_ERRORS])
            + more,
            details={"lines": errors},
        )
    if not items:
        raise InvalidRequest("There are no names in it: write one name per line.")
    return items
