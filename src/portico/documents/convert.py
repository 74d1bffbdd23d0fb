"""A file as structured Markdown: headings, lists, tables, and a marker where each page begins.

Pure functions of bytes, run in a worker process (documents/pool.py): parsing a hostile file can
take long or grow large, and a process can be stopped and held to a memory limit where a thread
cannot. PDF through pypdf (text per page: PDFs carry no headings to read back), Word through
python-docx (headings, lists and tables from its styles), PowerPoint through python-pptx (a slide
is a page, its title a heading), Excel through openpyxl (a sheet a heading and a table); CSV, HTML,
Markdown and text with the standard library. Page markers are `<!-- page 2 -->` lines
(`<!-- slide 2 -->` for slides); engines/knowledge.py cites passages by them.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath

KINDS = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
# A zip-based file (DOCX, PPTX, XLSX) may unpack to at most this many bytes, and at most RATIO times
# its own size: a "zip bomb" of a few kilobytes that unpacks to gigabytes fails before it is read.
UNPACKED_MAX = 200 * 1024 * 1024
RATIO = 100
PAGE_MARKER = re.compile(r"^<!-- (page|slide) (\d+) -->$")


@dataclass(frozen=True)
class Converted:
    kind: str
    text: str
    pages: int | None


class ConversionFailed(Exception):
    """The file cannot be read: `code` for programs, `reason` for people."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)  # both, so that it crosses from a worker process whole
        self.code = code
        self.reason = reason


def kind_of(filename: str) -> str:
    kind = KINDS.get(PurePosixPath(filename.lower()).suffix)
    if kind is None:
        raise ConversionFailed(
            "document_type_unsupported",
            "This type of file cannot be read: upload PDF, Word (.docx), PowerPoint (.pptx), Excel (.xlsx), "
            "CSV, HTML, Markdown or plain text.",
        )
    return kind


def convert(filename: str, data: bytes, *, max_pages: int) -> Converted:
    kind = kind_of(filename)
    if not data:
        raise ConversionFailed("document_empty", "The file is empty.")
    readers = {
        "pdf": _pdf,
        "docx": _docx,
        "pptx": _pptx,
        "xlsx": _xlsx,
        "csv": _csv,
        "html": _html,
        "markdown": _markdown,
        "text": _markdown,
    }
    if kind in {"docx", "pptx", "xlsx"}:
        _check_zip(data, kind)
    try:
        text, pages = readers[kind](data, max_pages)
    except ConversionFailed:
        raise
    except MemoryError:
        raise ConversionFailed(
            "document_too_complex", "The file needs more memory to read than a document may use."
        ) from None
    except Exception:  # a malformed file breaks a parser in its own ways: it is the file's fault
        raise ConversionFailed(
            "document_unreadable", f"The file could not be read as {LABELS[kind]}: it may be damaged."
        ) from None
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    if not _without_markers(text).strip():
        raise ConversionFailed(
            "document_no_text", "No text was found in the file (a scan of pages holds only pictures of text)."
        )
    return Converted(kind, text + "\n", pages)


LABELS = {
    "pdf": "a PDF",
    "docx": "a Word file",
    "pptx": "a PowerPoint file",
    "xlsx": "an Excel file",
    "csv": "CSV",
    "html": "a web page",
    "markdown": "text",
    "text": "text",
}


def _without_markers(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not PAGE_MARKER.match(line))


def _too_many_pages(pages: int, max_pages: int) -> None:
    if pages > max_pages:
        raise ConversionFailed(
            "document_too_many_pages", f"The file has {pages} pages; a document may have at most {max_pages}."
        )


def _check_zip(data: bytes, kind: str) -> None:
    if not data.startswith(b"PK\x03\x04"):
        raise ConversionFailed("document_unreadable", f"The file is not {LABELS[kind]}, whatever its name says.")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile:
        raise ConversionFailed("document_unreadable", f"The file is not {LABELS[kind]}: it may be damaged.") from None
    if unpacked > UNPACKED_MAX or unpacked > RATIO * len(data):
        raise ConversionFailed(
            "document_bomb",
            "The file unpacks to far more than its size, as a file made to exhaust a server does; it was not read.",
        )


def _pdf(data: bytes, max_pages: int) -> tuple[str, int]:
    from pypdf import PdfReader

    if b"%PDF-" not in data[:1024]:
        raise ConversionFailed("document_unreadable", "The file is not a PDF, whatever its name says.")
    reader = PdfReader(io.BytesIO(data))
    if reader.is_encrypted and not reader.decrypt(""):
        raise ConversionFailed("document_encrypted", "The PDF is protected by a password; upload a copy without one.")
    pages = len(reader.pages)
    _too_many_pages(pages, max_pages)
    parts = []
    for number, page in enumerate(reader.pages, start=1):
        parts.append(f"<!-- page {number} -->\n\n{_pdf_page(page.extract_text() or '')}")
    return "\n\n".join(parts), pages


def _pdf_page(text: str) -> str:
    # Lines as the page lays them out; a blank line between paragraphs stays one.
    return "\n".join(line.rstrip() for line in text.splitlines()).strip()


def _docx(data: bytes, max_pages: int) -> tuple[str, None]:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    document = docx.Document(io.BytesIO(data))
    blocks: list[str] = []
    for item in document.iter_inner_content():
        if isinstance(item, Table):
            blocks.append(_table([[cell.text for cell in row.cells] for row in item.rows]))
        elif isinstance(item, Paragraph):
            blocks.append(_docx_paragraph(item.style.name if item.style is not None else "", item.text))
    return _join(blocks), None


def _docx_paragraph(style: str, text: str) -> str:
    text = text.strip()
    if not text:
        return ""
    level = re.fullmatch(r"Heading (\d)", style)
    if style == "Title":
        return f"# {text}"
    if level:
        return "#" * min(int(level.group(1)), 6) + " " + text
    if style.startswith("List Number"):
        return f"1. {text}"
    if style.startswith("List"):
        return f"- {text}"
    return text


def _join(blocks: Iterable[str]) -> str:
    """Blocks as Markdown: list items of one list on consecutive lines, all else apart."""
    out: list[str] = []
    for block in blocks:
        if not block:
            continue
        if out and re.match(r"(?:-|1\.) ", block) and re.match(r"(?:-|1\.) ", out[-1].splitlines()[-1]):
            out[-1] += "\n" + block
        else:
            out.append(block)
    return "\n\n".join(out)


def _table(rows: list[list[str]]) -> str:
    rows = [[_cell(value) for value in row] for row in rows if any(str(v).strip() for v in row)]
    if not rows:
        return ""
    width = max(len(row) for row in rows)
    rows = [row + [""] * (width - len(row)) for row in rows]
    lines = ["| " + " | ".join(rows[0]) + " |", "|" + " --- |" * width]
    lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(lines)


def _cell(value: object) -> str:
    return " ".join(str("" if value is None else value).split()).replace("|", "\\|")


def _pptx(data: bytes, max_pages: int) -> tuple[str, int]:
    from pptx import Presentation

    deck = Presentation(io.BytesIO(data))
    slides = list(deck.slides)
    _too_many_pages(len(slides), max_pages)
    parts = []
    for number, slide in enumerate(slides, start=1):
        blocks = [f"<!-- slide {number} -->"]
        title = slide.shapes.title
        if title is not None and title.text_frame.text.strip():
            blocks.append("## " + " ".join(title.text_frame.text.split()))
        for shape in slide.shapes:
            if shape == title:
                continue
            if shape.has_text_frame:
                lines = [p.text.strip() for p in shape.text_frame.paragraphs if p.text.strip()]
                blocks.append("\n".join(f"- {line}" for line in lines) if len(lines) > 1 else "\n".join(lines))
            elif getattr(shape, "has_table", False) and shape.has_table:
                blocks.append(_table([[cell.text for cell in row.cells] for row in shape.table.rows]))
        parts.append(_join(blocks))
    return "\n\n".join(parts), len(slides)


def _xlsx(data: bytes, max_pages: int) -> tuple[str, None]:
    from openpyxl import load_workbook  # type: ignore[import-untyped]  # ships no types

    book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    blocks = []
    for sheet in book.worksheets:
        rows = [list(row) for row in sheet.iter_rows(values_only=True)]
        table = _table([[_cell(v) for v in row] for row in rows])
        if table:
            blocks.append(f"## {sheet.title}\n\n{table}")
    book.close()
    return "\n\n".join(blocks), None


def _text(data: bytes) -> str:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConversionFailed("document_unreadable", "The file is not UTF-8 text; save it as UTF-8.") from None
    if "\x00" in text:
        raise ConversionFailed("document_unreadable", "The file is not text, whatever its name says.")
    return text


def _markdown(data: bytes, max_pages: int) -> tuple[str, None]:
    return _text(data), None


def _csv(data: bytes, max_pages: int) -> tuple[str, None]:
    text = _text(data)
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t") if text.strip() else csv.excel
    return _table(list(csv.reader(io.StringIO(text), dialect))), None


def _html(data: bytes, max_pages: int) -> tuple[str, None]:
    parser = _HtmlToMarkdown()
    parser.feed(_text(data))
    parser.close()
    return parser.markdown(), None


class _HtmlToMarkdown(HTMLParser):
    """Headings, paragraphs, list items and tables of a page; scripts, styles and the like never
    read (nor run: this only reads text)."""

    SKIP = {"script", "style", "noscript", "template", "head", "svg", "iframe", "object"}
    BLOCKS = {"p", "div", "section", "article", "br", "header", "footer", "main", "blockquote", "pre"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self.current: list[str] = []
        self.prefix = ""
        self.skipping = 0
        self.rows: list[list[str]] | None = None
        self.cell: list[str] | None = None

    def _flush(self) -> None:
        text = " ".join("".join(self.current).split())
        if text:
            self.blocks.append(self.prefix + text)
        self.current, self.prefix = [], ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif self.skipping:
            return
        elif tag == "table":
            self._flush()
            self.rows = []
        elif tag == "tr" and self.rows is not None:
            self.rows.append([])
        elif tag in {"td", "th"} and self.rows is not None:
            self.cell = []
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.prefix = "#" * int(tag[1]) + " "
        elif tag == "li":
            self._flush()
            self.prefix = "- "
        elif tag in self.BLOCKS:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif self.skipping:
            return
        elif tag == "table" and self.rows is not None:
            self.blocks.append(_table(self.rows))
            self.rows = None
        elif tag in {"td", "th"} and self.rows is not None and self.cell is not None:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None
        elif re.fullmatch(r"h[1-6]", tag) or tag == "li" or tag in self.BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.cell is not None:
            self.cell.append(data)
        else:
            self.current.append(data)

    def markdown(self) -> str:
        self._flush()
        return _join(self.blocks)
