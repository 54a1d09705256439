"""The text rules every source shares: URLs, markup residue, citations, lists, headers, whitespace.

One definition of each rule (the `clean` stage runs them; the guideline rejection preview runs
the same chain, and the PubMed formatters read `remove_urls` only to decide structure, never to
change their text); per-source differences are keyword options, never copies. Every rule is
a pure function, returns its input unchanged (the same object) when it has nothing to do, and
is idempotent. docs/pubmed.md "Text rules" describes them; tests/test_textrules.py pins what
each one must remove and what must survive.
"""

from __future__ import annotations

import re

# --- URLs -----------------------------------------------------------------------------------

# A URL: a scheme or a bare `www.` host, then everything up to whitespace, a quote, `<>`, or an
# unbalanced bracket (a balanced "(...)" inside stays part of it: Wikipedia-style paths), and
# never its trailing punctuation: the sentence keeps its full stop.
_URL_BODY = r"""(?:\b(?:https?|ftp)://|\bwww\.)
    (?:[^\s<>"'\[\]()]|\([^\s<>"'\[\]()]*\))*
    (?<![.,;:!?'])"""
_URL = re.compile(_URL_BODY, re.VERBOSE | re.IGNORECASE)
# `[link text](url)`: the text stays
_MD_LINK = re.compile(r"\[([^\]\n]+)\]\((?:https?|ftp)://[^)\s]*\)", re.IGNORECASE)
# a bracket left holding nothing but the removed URL(s), filler words and punctuation:
# "Open Science Framework (https://osf.io/x)" → "Open Science Framework"
_GONE = "\x00"
_EMPTIED_BRACKET = re.compile(
    r"[ \t]*(?:\((?:[\s.,;:]|see|available(?: online)? at|at|from|accessed|\x00)*\x00"
    r"(?:[\s.,;:]|\x00)*\)|\[(?:[\s.,;:]|\x00)*\x00(?:[\s.,;:]|\x00)*\])", re.IGNORECASE)
# the spaces before a removed URL go with it: "see URL." → "see.", "see URL now" → "see now"
_SPACE_GONE = re.compile(r"[ \t]*\x00")


def remove_urls(text: str, *, keep_link_text: bool = True) -> str:
    """Delete http(s)/ftp/`www.` URLs whole (ports, queries, fragments, `~`), keeping the
    sentence's punctuation; a markdown link keeps its text (`[NICE NG28](https://…)` → `NICE
    NG28`, or nothing without `keep_link_text`), and a bracket that only held the URL goes too
    (no "()" or "[]" left)."""
    if "://" not in text and "www." not in text and "WWW." not in text:
        return text
    text = _MD_LINK.sub(r"\1" if keep_link_text else _GONE, text)
    out = _URL.sub(_GONE, text)
    if _GONE not in out:
        return text
    out = _EMPTIED_BRACKET.sub(_GONE, out)
    out = _SPACE_GONE.sub("", out)
    return out.replace(_GONE, "")


# --- citations ------------------------------------------------------------------------------

# A numeric reference marker: [12] [3-5] [1, 4–6] [2,3; 7] (numbers, ranges, list separators).
_N = r"\d{1,3}"
_NUMERIC = rf"\[\s*{_N}(?:\s*[-–—]\s*{_N})?(?:\s*[,;]\s*{_N}(?:\s*[-–—]\s*{_N})?)*\s*\]"
# Author-year: (Smith et al., 2019) (Smith and Jones 2018; Lee 2020a) (WHO, 2021)
_NOT_NAME = (r"(?!(?:January|February|March|April|May|June|July|August|September|October|November"
             r"|December|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec|Spring|Summer|Autumn"
             r"|Fall|Winter|Table|Tables|Figure|Figures|Fig|Since|In|From|Until|Before|After|Year"
             r"|Version|Update|Updated|Revised|Published|Accessed)\b)")
_NAME = rf"(?:(?:van|von|de|der|den|da|di|le|la)\s)*{_NOT_NAME}[A-Z][A-Za-z'’\-]+"
_AUTHORS = rf"{_NAME}(?:\s+et\s+al\.?|\s+(?:and|&)\s+{_NAME})?"
_YEARS = r"(?:19|20)\d\d[a-z]?(?:\s*,\s*(?:19|20)\d\d[a-z]?)*"
_AUTHOR_YEAR = rf"\(\s*{_AUTHORS},?\s+{_YEARS}(?:\s*;\s*{_AUTHORS},?\s+{_YEARS})*\s*\)"
# Several markers in a row ("[2], [3], [4]" or "[2][3]") are one group, removed with the
# space before it, so no ",," or " ." is left behind. The patterns start at the bracket (a
# literal the regex engine scans for quickly) and `_remove_marked` takes the spaces before it:
# the same matches as a leading `[ \t]*`, which made the engine try every position (5x slower).
_GROUP_SEP = r"(?:\s*[,;]\s*|\s*)"
_NUMERIC_GROUP = re.compile(rf"{_NUMERIC}(?:{_GROUP_SEP}{_NUMERIC})*")
_AUTHOR_YEAR_GROUP = re.compile(_AUTHOR_YEAR)
_YEAR_CLOSE = re.compile(r"(?:19|20)\d\d[a-z]?\s*\)")
# after a marker: the end, whitespace, or punctuation; never a letter or digit ("cucurbit[7]uril",
# "Pyrimido [1, 2]benzimidazole", "[1,2,4]triazole")
_AFTER_OK = re.compile(r"$|[\s.,;:!?)\]'\"’”]")
# words that make a bracket right after them data, not a reference: units and statistics
_UNIT_WORDS = frozenset("""
years year yr yrs months month mo days day d weeks week wk wks hours hour h hrs min minutes s
sec seconds mg g kg µg ug ng mcg ml mL l L dl dL mmol mol µmol nmol mm cm m km mmhg mmHg iu IU
u U units unit kcal bpm ci CI iqr IQR sd SD se SE range median mean vs versus to
""".split())


_NUMBER_TOKEN = re.compile(r"[-+<>≤≥=~±−]*\d[\d.,:/]*%?")
_WORD_END = ".,;:)’'\"”"


def _is_data_context(before: str, is_range: bool) -> bool:
    """True when what precedes a bracket makes it a number's interval, a comparison or a name:
    "74 [66-82]", "55% [33-72]", "= [3]", "74 years [66-82]", "CB[7]"."""
    stripped = before.rstrip(" \t")
    if not stripped:
        return True  # a bracket opening a line is a list label or a heading number, not a marker
    tokens = stripped.rsplit(None, 2)
    token = tokens[-1]
    core = token.strip(_WORD_END + "([{")
    if stripped == before:  # attached: "children[7]" is a marker, "CB[7]", "Fe3O4[2]" are not
        last = token[-1]
        if last in _WORD_END:
            return False
        return not last.isalpha() or core.isupper() or any(c.isdigit() for c in core)
    if not (token[-1].isalnum() or token[-1] in _WORD_END):
        return True  # "=", "<", "±", "%", "(": a comparison, a statistic, a formula
    if not core or _NUMBER_TOKEN.fullmatch(core) or core in _UNIT_WORDS:
        return True  # "74 [66-82]", "vs [2]", "mg [10-14]"
    # "74 years [66-82]": a range right after a number and a short word
    return is_range and len(tokens) > 1 and len(core) <= 8 and bool(
        _NUMBER_TOKEN.fullmatch(tokens[-2].strip(_WORD_END + "([{")))


def _is_numeric_marker(m: re.Match) -> bool:
    text = m.string
    if not _AFTER_OK.match(text, m.end()):
        return False
    cit = m.group(0)
    is_range = any(c in cit for c in ",;-–—")
    return not _is_data_context(text[max(0, m.start() - 80):m.start()], is_range)


def _remove_marked(pattern: re.Pattern, text: str, is_marker=None) -> str:
    """Delete each match of `pattern` (for which `is_marker` holds) with the spaces and tabs
    right before it; the input object itself when nothing is deleted."""
    out: list[str] = []
    pos = 0  # end of the previous match: its spaces are never taken twice
    for m in pattern.finditer(text):
        if is_marker is not None and not is_marker(m):
            continue
        start = m.start()
        while start > pos and text[start - 1] in " \t":
            start -= 1
        out.append(text[pos:start])
        pos = m.end()
    if not out:
        return text
    out.append(text[pos:])
    return "".join(out)


def remove_citations(text: str, *, author_year: bool = True) -> str:
    """Delete reference markers in citation position and nothing else.

    Removed: numeric brackets (`[1]`, `[1-3]`, `[1, 4, 7]`, `[12–15]`, runs such as
    `[2], [3], [4]`) attached to a word or a sentence end, with the space before them; with
    `author_year`, `(Smith et al., 2019)` style groups. Kept: any bracket after a number, `%`,
    a comparison or a unit ("74 [66-82] years", "55% [33-72]", "(3 [1] vs 1 [1] [P < 0.0001])"),
    a bracket a letter or digit follows ("cucurbit[7]uril", "Pyrimido [1, 2]benzimidazole"),
    an index on an upper-case or digit-bearing word ("CB[7]"), and every bracket holding
    anything but numbers ("[95% CI 1.2-3.4]", "[3H]", "[Ca2+]i", "[bib_ref]"). Spacing around
    is never touched elsewhere ("P = .004" stays).
    """
    if "[" in text:
        text = _remove_marked(_NUMERIC_GROUP, text, _is_numeric_marker)
    if author_year and "(" in text and _YEAR_CLOSE.search(text):
        text = _remove_marked(_AUTHOR_YEAR_GROUP, text)
    return text


# --- markup residue (HTML tags, symbol-font glyphs) -----------------------------------------

_HTML_TAGS = ("a|abbr|b|br|div|em|font|h[1-6]|hr|i|img|li|ol|p|span|strong|sub|sup|table|tbody|td|"
              "th|thead|tr|u|ul|blockquote|code|pre|small|big|section|article|nav|label|center")
_HTML_TAG = re.compile(rf"</?(?:{_HTML_TAGS})(?:\s+[a-zA-Z-]+(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>",
                       re.IGNORECASE)
_SYMBOLS = re.compile("[\ue000-\uf8ff\ufffd]")


def remove_html_tags(text: str) -> str:
    """Remove leftover HTML tags by name only: `p < 0.05 in A and B > C` is not a tag."""
    if "<" not in text:
        return text
    return _HTML_TAG.sub("", text)


def remove_symbols(text: str) -> str:
    """Private-use glyphs (Symbol/Wingdings residue of PDFs), U+FFFD and `**` bold markers."""
    if not text.isascii():
        text = _SYMBOLS.sub("", text)
    if "**" in text:
        text = text.replace("**", "")
    return text


# --- lists ----------------------------------------------------------------------------------

# Real bullet glyphs (•, ◦, ▪, ■, □, ◆, ●, ‣, ∙, ⁃, and Symbol/Wingdings private-use bullets)
_BULLET_GLYPHS = "•◦▪■□◆●‣∙⁃\uf0b7\uf0a7\uf076\uf0d8"
_GLYPH_BULLET = re.compile(rf"^([ \t]*)[{_BULLET_GLYPHS}][ \t]*(?=\S)", re.MULTILINE)
_HAS_GLYPH = re.compile(f"[{_BULLET_GLYPHS}]")
# markdown "* " / "+ " at a line start; never a letter ("often" stays "often") or "5 * 3"
_MARKDOWN_BULLET = re.compile(r"^([ \t]*)[*+][ \t]+(?=\S)", re.MULTILINE)
# PDF sub-bullets "o " / "q " (Wingdings rendered as letters), only before a capital, digit or "("
_PDF_SUBBULLET = re.compile(r"^([ \t]*)[oq][ \t]+(?=[A-Z(0-9])", re.MULTILINE)


# numbered items "1. Text" / "12) Text" (1-3 digits, never a decimal such as "2.5 mg")
_NUMBERED_ITEM = re.compile(r"^([^\S\n]*)\d{1,3}[.)][^\S\n]+(?=\S)", re.MULTILINE)


def normalize_lists(text: str, *, pdf_bullets: bool = False, numbered: bool = False) -> str:
    """Rewrite bullet markers at the start of a line as `- `; `pdf_bullets` also rewrites the
    letter bullets PDF extraction leaves ("o Take twice daily"), `numbered` the numbers of
    numbered items ("1. Text": a site whose numbering carries no meaning)."""
    if _HAS_GLYPH.search(text):
        text = _GLYPH_BULLET.sub(r"\1- ", text)
    if "* " in text or "+ " in text or "*\t" in text or "+\t" in text:
        text = _MARKDOWN_BULLET.sub(r"\1- ", text)
    if pdf_bullets:
        text = _PDF_SUBBULLET.sub(r"\1- ", text)
    if numbered:
        text = _NUMBERED_ITEM.sub(r"\1- ", text)
    return text


# --- headers --------------------------------------------------------------------------------

_HEADER = re.compile(r"^(#{1,})[ \t]+(?=\S)", re.MULTILINE)
_HEADER_AFTER_NL = re.compile(r"\n(#+)([ \t]+)(?=\S)")  # `_HEADER` after a newline


def normalize_headers(text: str, max_level: int = 3) -> str:
    """Shift markdown headers so the shallowest becomes `#` and cap depth at `max_level`.

    Only `#`s followed by a space and text are headers (not "#1 cause" or hashtags); a header
    on the first line counts like any other.
    """
    if "#" not in text:
        return text
    # a pattern that starts at "\n" lets the regex engine skip to line starts (a `^` in MULTILINE
    # mode is tried at every character); "\n" + text makes the first line one of them
    found = _HEADER_AFTER_NL.findall("\n" + text)
    if not found:
        return text
    shift = min(len(hashes) for hashes, _ in found) - 1
    if shift == 0 and all(len(hashes) <= max_level and space == " " for hashes, space in found):
        return text  # nothing to rewrite (the common case: formatted papers)
    return _HEADER_AFTER_NL.sub(lambda m: "\n" + "#" * min(len(m.group(1)) - shift, max_level) + " ",
                                "\n" + text)[1:]


def demote_headers(text: str) -> str:
    """One level down for every header (room for a title header above them)."""
    return _HEADER.sub(lambda m: "#" + m.group(0), text)


# --- whitespace -----------------------------------------------------------------------------

# runs of 2+ spaces after a character, or any other horizontal space (single spaces are left
# alone: fast); a list item's indentation ("  - sub-item") is not a run to collapse
_HSPACE = re.compile(r"(?<=\S)[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]{2,}"
                     r"|[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_ODD_SPACE = re.compile(r"[\u00a0\u2000-\u200a\u202f\u205f\u3000]")
_TRAILING = re.compile(r"[ \t]+\n")
_LEADING = re.compile(r"\n[ \t]+(?![ \t]|[-*+•\d])")  # list items keep their indentation
_BLANKS = re.compile(r"\n{3,}")
# a space-separated , ; : ) ] joins its word; a "." only at a word end, never "P = .004"
_SPACE_BEFORE_PUNCT = re.compile(r"(?<=\S)[ \t]+([,;:)\]](?=\s|$)|\.(?=\s|$))")
_HEADER_LINE = re.compile(r"^#{1,6}[ \t]+\S")


def normalize_whitespace(text: str, *, attach_punct: bool = False,
                         headers_apart: bool = False) -> str:
    """Collapse runs of spaces, strip line ends, keep at most one blank line between paragraphs.

    `attach_punct` joins a space-separated `,` `;` `:` `)` or sentence-final `.` to its word
    (extraction residue "word , word"); a decimal such as ".004" never moves. `headers_apart`
    puts one blank line before and after every header line.
    """
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    # cheap substring checks first: most text has nothing to collapse
    if "  " in text or "\t" in text or (not text.isascii() and _ODD_SPACE.search(text)):
        text = _HSPACE.sub(" ", text)
    if attach_punct and " " in text:
        text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    if "\n" in text:
        # tabs are spaces by now: what is left to find sits next to a newline
        trailing, leading, blanks = _around_newlines(text)
        if trailing:
            text = _TRAILING.sub("\n", text)
        if leading:
            text = _LEADING.sub("\n", text)
        if headers_apart and "#" in text:
            text = _headers_apart(text)
        if trailing or leading or headers_apart:  # "\n \n\n" is three newlines now
            blanks = "\n\n\n" in text
        if blanks:
            text = _BLANKS.sub("\n\n", text)
    return text.strip()


def _around_newlines(text: str) -> tuple[bool, bool, bool]:
    """Whether `text` has a space before a newline, a space after one, three newlines in a row.
    A walk from newline to newline (a C `find` for one char each) is ~6x faster than three
    scans for two-char substrings when lines are long, as in papers; text of short lines gets
    the three scans."""
    trailing = leading = blanks = False
    budget = len(text) >> 6  # newlines to walk before the scans are cheaper
    find = text.find
    i = find("\n")
    while i >= 0:
        budget -= 1
        if budget < 0:
            return " \n" in text, "\n " in text, "\n\n\n" in text
        if text[i - 1:i] == " ":
            trailing = True
        nxt = text[i + 1:i + 3]
        if nxt[:1] == " ":
            leading = True
        elif nxt == "\n\n":
            blanks = True
        i = find("\n", i + 1)
    return trailing, leading, blanks


def _headers_apart(text: str) -> str:
    out: list[str] = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        header = bool(_HEADER_LINE.match(line))
        if header and out and out[-1] != "":
            out.append("")
        out.append(line)
        if header and i + 1 < len(lines) and lines[i + 1] != "":
            out.append("")
    return "\n".join(out)
