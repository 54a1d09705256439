"""PDF bytes to markdown-like text with pypdf: headings by font size, paragraphs by line spacing.

The original sent every PDF through a GROBID service and kept neither the title nor the URL.
Here pypdf's text visitor gives each text run with its position and font size; runs are grouped
into lines, lines larger than the body font become `#`/`##`/`###` headings, vertical gaps
separate paragraphs, bullet glyphs (including Symbol/ZapfDingbats/Wingdings bullets that plain
extraction turns into letters such as "q") become `- ` items, hyphenated line breaks are joined,
and running headers, footers and page numbers are dropped. Limits: multi-column pages come out in
content-stream order, tables as one line per row, and scanned PDFs (no text layer) yield nothing.
"""

from __future__ import annotations

import io
import logging
import re
from collections import Counter
from dataclasses import dataclass

from pypdf import PdfReader
from pypdf.errors import PdfReadError, PyPdfError

from gap_replay.http import FetchError

log = logging.getLogger(__name__)

# Bullet glyphs as pypdf decodes them: standard-encoding bullet (\x7f from reportlab), the usual
# Unicode bullets, the Symbol-font private-use bullets, and the PDF "o" sub-bullet.
_BULLET_GLYPHS = set("•\x7f·▪■□◆◇●○◦‣⁃–-*o\uf0b7\uf0a7\uf076\uf0d8\uf0fc")
# In dingbat fonts any single glyph drawn before indented text is a bullet ("q" is a Wingdings box).
# Not the Symbol font: its glyphs are also "≥", "±", "α", which must never be taken for bullets.
_DINGBAT_FONTS = ("wingdings", "zapfdingbats", "webdings", "dingbats")
_PAGE_NUMBER = re.compile(r"^(page\s*)?\d{1,4}(\s*(of|/)\s*\d{1,4})?$", re.IGNORECASE)
_JUNK_TITLES = re.compile(
    r"^(untitled|title|\((unspecified|anonymous)\)|document\s*\d*|slide \d+|powerpoint presentation"
    r"|microsoft (word|powerpoint)\b.*|.*\.(docx?|pptx?|pdf|indd|tex|qxd))$", re.IGNORECASE)
_SENTENCE_END = (".", ":", ";", "?", "!")
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi", re.IGNORECASE)
HEADER_FOOTER_ZONE = 0.075  # fraction of the page height at the top and bottom
# What pypdf raises on damaged files and content streams.
_PAGE_ERRORS = (PdfReadError, PyPdfError, ValueError, KeyError, TypeError, AttributeError, IndexError,
                ZeroDivisionError, AssertionError, RecursionError)


class PdfError(FetchError):
    """A PDF that cannot be turned into text; the message names the URL and what is wrong.

    A FetchError, so the scraper records it in the state as a failed URL (retried next run).
    """

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)


@dataclass
class PdfText:
    title: str
    text: str
    pages: int


@dataclass
class _Run:
    x: float
    y: float
    text: str
    size: float
    font: str


@dataclass
class _Line:
    page: int
    x: float
    y: float
    size: float
    text: str
    bullet: bool = False
    zone: bool = False  # in the header/footer band of its page
    bold: bool = False  # every run is set in a bold face


def extract_pdf(data: bytes, url: str) -> PdfText:
    """Text, title and page count of one PDF; raises PdfError for non-PDF, encrypted or broken input."""
    if not data.lstrip()[:5].startswith(b"%PDF"):
        kind = "an HTML page" if b"<html" in data[:512].lower() else f"{len(data)} bytes"
        raise PdfError(url, f"not a PDF (no %PDF header; got {kind})")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and not _decrypt_empty_password(reader):
            raise PdfError(url, "PDF is encrypted with a password; it cannot be read")
        n_pages = len(reader.pages)
        lines: list[_Line] = []
        broken_pages = 0
        for number, page in enumerate(reader.pages):
            try:
                lines.extend(_page_lines(page, number))
            except _PAGE_ERRORS as exc:  # one unreadable page does not lose the document
                broken_pages += 1
                log.warning("%s: page %d unreadable (%s: %s); skipped", url, number + 1,
                            type(exc).__name__, exc)
        if n_pages and broken_pages == n_pages:
            raise PdfError(url, f"broken PDF (no page could be read; {broken_pages} pages)")
        metadata_title = _metadata_title(reader)
    except PdfError:
        raise
    except _PAGE_ERRORS + (OSError,) as exc:
        raise PdfError(url, f"broken PDF ({type(exc).__name__}: {exc})") from exc
    if n_pages == 0:
        raise PdfError(url, "PDF has no pages")
    lines = _drop_headers_and_footers(lines, n_pages)
    blocks = _blocks(lines)
    text = _render(blocks)
    if not text:
        raise PdfError(url, "PDF has no text layer (scanned images?)")
    title = metadata_title or _first_heading(blocks) or blocks[0][1].removeprefix("- ")[:200]
    return PdfText(title=title, text=text, pages=n_pages)


def _decrypt_empty_password(reader: PdfReader) -> bool:
    """Permission-only encryption (empty user password) is common and readable."""
    try:
        return bool(reader.decrypt(""))
    except (PyPdfError, NotImplementedError, ValueError):
        return False


def _metadata_title(reader: PdfReader) -> str:
    try:
        raw = (reader.metadata or {}).get("/Title")
    except (PyPdfError, ValueError, TypeError):
        return ""
    title = " ".join(str(raw or "").split())
    return "" if not title or _JUNK_TITLES.match(title) else title


# -- runs and lines --------------------------------------------------------------------------------
def _page_lines(page, number: int) -> list[_Line]:
    runs: list[_Run] = []

    def visit(text, cm, tm, font_dict, font_size):
        if not text or not text.strip():
            return
        # Position of the run: the text matrix origin mapped through the current transformation.
        x = tm[4] * cm[0] + tm[5] * cm[2] + cm[4]
        y = tm[4] * cm[1] + tm[5] * cm[3] + cm[5]
        scale = (tm[3] ** 2 + tm[2] ** 2) ** 0.5 * (cm[3] ** 2 + cm[2] ** 2) ** 0.5
        font = str((font_dict or {}).get("/BaseFont", "")) if font_dict else ""
        for part in text.split("\n"):
            if part.strip():
                runs.append(_Run(x, y, part, round(float(font_size) * (scale or 1.0), 1), font))

    page.extract_text(visitor_text=visit)
    height = float(page.mediabox.height)
    bottom = float(page.mediabox.bottom)
    lines: list[_Line] = []
    current: list[_Run] = []
    for run in runs:
        if current and abs(run.y - current[0].y) > 0.5 * max(run.size, current[0].size, 1.0):
            lines.append(_make_line(current, number, height, bottom))
            current = []
        current.append(run)
    if current:
        lines.append(_make_line(current, number, height, bottom))
    return [line for line in lines if line.text]


def _make_line(runs: list[_Run], page: int, height: float, bottom: float) -> _Line:
    runs = sorted(runs, key=lambda r: r.x)
    first = runs[0]
    bullet = False
    if len(runs) > 1 and _is_bullet_run(first, runs[1]):
        bullet = True
        runs = runs[1:]
    parts: list[str] = []
    for run in runs:
        piece = run.text.strip() if not parts else run.text
        if parts and not parts[-1].endswith(" ") and not piece.startswith(" "):
            parts.append(" ")
        parts.append(piece)
    text = " ".join("".join(parts).split())
    if not bullet and len(text) > 2 and text[0] in "•\x7f▪■●\uf0b7" and text[1] == " ":
        bullet, text = True, text[2:].strip()  # bullet and text in one run
    text_runs = [r for r in runs if r.text.strip()]
    size = Counter(r.size for r in text_runs for _ in r.text).most_common(1)[0][0] if text_runs else first.size
    rel_y = runs[0].y - bottom
    zone = rel_y < height * HEADER_FOOTER_ZONE or rel_y > height * (1 - HEADER_FOOTER_ZONE)
    bold = bool(text_runs) and all(_BOLD_FONT.search(r.font) for r in text_runs)
    return _Line(page=page, x=runs[0].x, y=runs[0].y, size=size, text=text, bullet=bullet, zone=zone,
                 bold=bold)


def _is_bullet_run(run: _Run, following: _Run) -> bool:
    glyph = run.text.strip()
    if len(glyph) != 1 or following.x - run.x < 0.3 * run.size:
        return False
    return glyph in _BULLET_GLYPHS or any(name in run.font.lower() for name in _DINGBAT_FONTS)


def _drop_headers_and_footers(lines: list[_Line], n_pages: int) -> list[_Line]:
    """Drop page numbers and running headers/footers: lines in the top or bottom band of a page
    that are page numbers, repeat on several pages, or are set smaller than the body text."""
    def key(line: _Line) -> str:
        return re.sub(r"\d+", "#", line.text.lower())

    repeats = Counter(key(line) for line in lines if line.zone)
    pages_needed = 2 if n_pages > 1 else 10**9
    body_size = _body_size(lines)
    kept = []
    for line in lines:
        if line.zone and (_PAGE_NUMBER.match(line.text) or repeats[key(line)] >= pages_needed
                          or line.size < 0.9 * body_size):
            continue
        kept.append(line)
    return kept


def _body_size(lines: list[_Line]) -> float:
    sizes = Counter()
    for line in lines:
        sizes[line.size] += len(line.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


# -- blocks: headings, paragraphs, list items ----------------------------------------------------
def _render(blocks: list[tuple[str, str]]) -> str:
    """Blank line between blocks; consecutive list items stay on adjacent lines."""
    out: list[str] = []
    for i, (kind, text) in enumerate(blocks):
        if i:
            out.append("\n" if kind == "li" and blocks[i - 1][0] == "li" else "\n\n")
        out.append(text)
    return "".join(out).strip()


def _blocks(lines: list[_Line]) -> list[tuple[str, str]]:
    if not lines:
        return []
    body_size = _body_size(lines)
    heading_sizes = sorted({line.size for line in lines if line.size >= body_size * 1.12}, reverse=True)
    level = {size: min(i + 1, 3) for i, size in enumerate(heading_sizes)}
    gaps = [a.y - b.y for a, b in zip(lines, lines[1:])
            if a.page == b.page and a.size == b.size == body_size and 0 < a.y - b.y < 4 * body_size]
    # In-paragraph line spacing: the lower quartile of gaps (paragraph gaps are the larger ones).
    leading = sorted(gaps)[len(gaps) // 4] if gaps else body_size * 1.2
    leading = min(max(leading, body_size), body_size * 1.6)
    widths = sorted(len(line.text) for line in lines if line.size == body_size and not line.bullet)
    full_width = widths[int(len(widths) * 0.9)] if widths else 0
    bold_level = min(len(heading_sizes) + 1, 3)
    bold_heading = _bold_headings(lines, body_size, leading)
    blocks: list[list[str]] = []  # [kind, text]
    kind = ""  # "h", "p", "li" for the open block
    list_x = 0.0
    prev: _Line | None = None
    for i, line in enumerate(lines):
        heading = level.get(line.size) if line.size in level else (bold_level if bold_heading[i] else None)
        if heading:
            same_heading = (kind == "h" and prev is not None and prev.size == line.size
                            and line.size in level
                            and prev.page == line.page and 0 < prev.y - line.y < 1.8 * line.size)
            if same_heading:
                blocks[-1][1] += " " + line.text
            else:
                blocks.append(["h", "#" * heading + " " + line.text])
            kind = "h"
        elif line.bullet:
            if kind != "li":
                list_x = line.x
            nested = line.x > list_x + 8  # indented further than the list's first item
            blocks.append(["li", ("  - " if nested else "- ") + line.text])
            kind = "li"
        elif kind in ("p", "li") and prev is not None and _continues(prev, line, leading, kind,
                                                                      full_width):
            blocks[-1][1] = _join(blocks[-1][1], line.text)
        else:
            blocks.append(["p", line.text])
            kind = "p"
        prev = line
    return [(k, t) for k, t in blocks]


def _bold_headings(lines: list[_Line], body_size: float, leading: float) -> list[bool]:
    """Short, all-bold body-size lines standing on their own ("Dosing", "Key points") are headings;
    a bold sentence or a bold paragraph of several lines is not."""
    def close(a: _Line, b: _Line) -> bool:
        return a.page == b.page and 0 < a.y - b.y <= 1.2 * leading + 0.5

    out = []
    for i, line in enumerate(lines):
        candidate = (line.bold and not line.bullet and abs(line.size - body_size) < 0.6
                     and 1 <= len(line.text.split()) <= 12
                     and not line.text.endswith((".", ",", ";", ":"))
                     and (line.text[:1].isupper() or line.text[:1].isdigit()))
        if candidate:
            before = lines[i - 1] if i else None
            after = lines[i + 1] if i + 1 < len(lines) else None
            if before is not None and before.bold and close(before, line):
                candidate = False  # inside a bold paragraph
            if after is not None and after.bold and close(line, after):
                candidate = False
        out.append(candidate)
    return out


def _continues(prev: _Line, line: _Line, leading: float, kind: str, full_width: int) -> bool:
    """Whether `line` continues the open paragraph or list item rather than starting a new one.

    A new block starts after a gap larger than the line spacing, or after a short line that ends
    a sentence (PDFs without paragraph spacing), or at a page break unless the sentence runs on.
    """
    if line.page != prev.page:
        return not prev.text.endswith(_SENTENCE_END) and line.text[:1].islower()
    gap = prev.y - line.y
    if gap <= 0 or gap > 1.2 * leading + 0.5:
        return False
    if prev.text.endswith(_SENTENCE_END) and len(prev.text) < 0.7 * full_width:
        return False
    if kind == "li":
        return line.x > prev.x - 2 or not prev.bullet
    return True


_HYPHEN_BREAK = re.compile(r"(\w)-$")


def _join(block: str, text: str) -> str:
    """Join a wrapped line; 'manage-' + 'ment' becomes 'management', 'out-of-' + 'office' keeps its hyphens."""
    last_word = block.rsplit(" ", 1)[-1]
    if _HYPHEN_BREAK.search(block) and text[:1].islower():
        # A word that already has a hyphen ("out-of-") was split at one of its own hyphens.
        return (block if last_word.count("-") > 1 else block[:-1]) + text
    return block + " " + text


def _first_heading(blocks: list[tuple[str, str]]) -> str:
    for kind, text in blocks:
        if kind == "h":
            return text.lstrip("#").strip()
    return ""
