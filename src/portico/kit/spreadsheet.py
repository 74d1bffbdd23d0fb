"""CSV that is safe to open in a spreadsheet.

Guests and owners type the names and text that exports carry. A cell starting with `=`, `+`, `-`
or `@` (or a tab or carriage return, which some spreadsheets skip before looking) is read as a
formula by Excel, LibreOffice and Google Sheets, so `=HYPERLINK(...)` in a user's name would run
when the owner opens the file. As OWASP recommends, such a cell gets a leading `'`, which makes
it text; numbers are written as numbers, so a negative number stays one.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


class SafeWriter:
    """`csv.writer`, with every text cell made safe."""

    def __init__(self, stream: TextIO) -> None:
        self._writer = csv.writer(stream)

    def writerow(self, row: Iterable[Any]) -> None:
        self._writer.writerow([safe_cell(value) for value in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)
