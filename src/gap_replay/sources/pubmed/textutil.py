"""Small layout helpers shared by the S2ORC, JATS and MEDLINE formatters: header lines,
squashing, captions. They only lay out what was extracted; text rules (URLs, citations, lists)
are the `clean` stage's (gap_replay.textrules, switched per source in the recipe)."""

from __future__ import annotations

import re

from gap_replay.textrules import remove_urls

# Section titles that open a main (`#`) section, compared whole (after numbering, case and
# punctuation are normalised); anything else is a `##` sub-section.
MAIN_HEADER_SET = frozenset(h.strip() for h in """
abstract, introduction, background, related work, literature review, methods, method,
materials and methods, material and methods, methods and materials, patients and methods,
subjects and methods, methodology, study design, experimental, experimental section,
experimental procedures, results, result, findings, results and discussion, analysis,
statistical analysis, discussion, discussion and conclusion, discussion and conclusions,
conclusion, conclusions, summary, conclusion and future work, conclusions and future work,
contributions, author contributions, strengths and limitations, limitations,
limitations and future work, future work, future research, future directions, funding,
funding statement, financial support, disclosure, disclosures, declarations,
declaration of interests, competing interests, conflict of interest, conflicts of interest,
ethics statement, ethical approval, ethics approval, acknowledgments, acknowledgements,
acknowledgment, acknowledgement, data availability, data availability statement, tables,
figures, appendix, appendices, supplementary material, case report, case presentation
""".replace("\n", " ").split(",") if h.strip())
_NUMBERING = re.compile(r"^\s*(?:(?:\d+(?:\.\d+)*|[ivxlc]+|[a-h])[.)]?\s+)", re.I)


_ROMAN = frozenset("i ii iii iv v vi vii viii ix x xi xii".split())
_KEY_TABLE = {c: " " for c in range(128) if not chr(c).isalpha()}  # ASCII non-letters → space
# The same table for ASCII titles as bytes: `bytes.translate` is a plain C table lookup, while
# `str.translate` with a sparse dict raises (and catches) a KeyError per distinct letter.
_ASCII_KEY_BYTES = bytes(c if c < 128 and chr(c).isalpha() else 32 for c in range(256))


def header_key(title: str) -> str:
    """'2.1 Materials & Methods:' → 'materials and methods' (numbering, case, punctuation)."""
    title = title.strip()
    if (title[:1].isdigit() or title[1:2] in (".", ")")
            or title.split(" ", 1)[0].rstrip(".)").lower() in _ROMAN):
        title = _NUMBERING.sub("", title)
    key = title.lower().replace("&", " and ")
    if key.isascii():
        key = key.encode("ascii").translate(_ASCII_KEY_BYTES).decode("ascii")
    else:
        key = key.translate(_KEY_TABLE)
    return " ".join(key.split())


def is_main_header(title: str) -> bool:
    """Exact vocabulary (not substring): 'Statistical analysis' is main, 'Treatment-related
    outcomes' is not."""
    return header_key(title) in MAIN_HEADER_SET


def header_line(title: str, level: int | None = None) -> str:
    """'# Title' for main sections, '## Title' otherwise; the title's case is kept."""
    title = " ".join(title.split()).rstrip(":").strip()
    if level is None:
        level = 1 if is_main_header(title) else 2
    return f"{'#' * min(level, 2)} {title}"


def squash(text: str) -> str:
    """One line: collapse every run of whitespace to a single space."""
    return " ".join(text.split())


def _url_only(word: str) -> bool:
    return (("://" in word or "www." in word or "WWW." in word)
            and not any(map(str.isalnum, remove_urls(word))))


def first_words(words: list[str], n: int) -> tuple[list[str], bool]:
    """The first `n` words and whether any were cut. A word that is only a URL is kept but not
    counted: the `clean` stage removes it, and `n` words remain (as when the formatters removed
    URLs themselves)."""
    if len(words) <= n:
        return words, False
    count = 0
    for i, word in enumerate(words):
        if not _url_only(word):
            count += 1
            if count > n:
                return words[:i], True
    return words, False


def truncate_words(text: str, n: int = 12) -> str:
    """At most `n` words (URLs not counted, see `first_words`), "..." when some were cut."""
    words, cut = first_words(text.split(), n)
    return " ".join(words) + ("..." if cut else "")


def short_caption(caption: str, n: int = 12) -> str:
    """First clause of a caption (when it is long), then at most `n` words."""
    caption = squash(caption)
    if len(caption) > 20:
        clause = caption[:clause_end(caption)].strip()
        if clause:
            caption = clause
    return truncate_words(caption.strip(" .,;:"), n)


def clause_end(text: str) -> int:
    """Where `_CLAUSE` first matches in `text` (len(text) when it does not). The rule is split
    in two searches that the regex engine can run fast (each starts with a character class or
    is a plain `find`), instead of trying the whole alternation at every character; the
    leftmost of the two is the regex's leftmost match, since the two branches never start
    at the same character."""
    m = _CLAUSE_PUNCT.search(text)
    end = m.start() if m else len(text)
    i = text.find("(", 1, end + 1)
    while i > 0:
        if text[i - 1].isspace():  # `\s` is `str.isspace` for a str pattern
            return i - 1
        i = text.find("(", i + 1, end + 1)
    return end


_CLOSE_TOKEN_PUNCT = re.compile(r"(\[/(?:bib_ref|fig_ref|formula)\]) +([.,;:)])")
_OPEN_TOKEN_PAREN = re.compile(r"\( +(\[(?:bib_ref|fig_ref|formula)\])")
# a clause ends at . ; : after two lower-case letters/digits ("Y. pestis", "e.g." do not end it)
_CLAUSE = re.compile(r"(?<=[a-z0-9)\]]{2})[.;:](?:\s|$)|\s[(]")
_CLAUSE_PUNCT = re.compile(r"[.;:](?<=[a-z0-9)\]]{2}[.;:])(?:\s|$)")  # `_CLAUSE`'s first branch


def has_words(line: str) -> bool:
    """Whether `line` keeps any text once the `clean` stage removed its URLs. The formatters
    keep URLs in the text (the stage removes them) but decide structure on what is left: a
    section holding only URLs is empty, a header of URLs only is no header."""
    return bool(remove_urls(line).strip())


def any_line_has_words(text: str) -> bool:
    """Whether some line of `text` has words (`has_words`): a formatted document that is blank
    or only URLs has none. Line by line, so the answer comes at the first line of words (the
    title, most often) instead of after removing every URL of a whole paper."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        if has_words(text[start:end]):
            return True
        start = end + 1
    return False


def tidy_lines(lines: list[str], token_punct: bool = True) -> str:
    """Join squashed lines: one blank line before and after every header, never two blank
    lines in a row. Plain `str` methods: regular expressions over long non-ASCII texts were
    the formatter's hot spot."""
    out: list[str] = []
    for line in lines:
        line = line.strip()
        if not line:
            if out and out[-1] != "":
                out.append("")
            continue
        if token_punct and "[/" in line:
            line = _OPEN_TOKEN_PAREN.sub(r"(\1", _CLOSE_TOKEN_PUNCT.sub(r"\1\2", line))
        if line.startswith("#") and out and out[-1] != "":
            out.append("")
        out.append(line)
        if line.startswith("#"):
            out.append("")
    while out and out[-1] == "":
        out.pop()
    return "\n".join(_drop_empty_sections(out))


def _level(line: str) -> int:
    """1-3 for a `#`, `##`, `###` header line, 0 otherwise."""
    if line.startswith("#"):
        n = len(line) - len(line.lstrip("#"))
        if n <= 3 and line[n:n + 1] == " ":
            return n
    return 0


def _drop_empty_sections(lines: list[str]) -> list[str]:
    """A header followed only by a header of the same or a higher level (or nothing) heads an
    empty section (e.g. supplementary material that was dropped, or a list of links): remove
    it. Lines of URLs only stay but are not section content (see `has_words`)."""
    keep: list[str] = []
    next_level = -1  # level of the next non-empty line, scanning backwards (-1: the end)
    for line in reversed(lines):
        level = _level(line)
        if level:
            if next_level == -1 or (next_level and next_level <= level):
                continue
            next_level = level
        elif line and has_words(line):
            next_level = 4  # body text (below every header level)
        elif next_level == 0:
            next_level = -1  # end of document
        keep.append(line)
    keep.reverse()
    out: list[str] = []
    for line in keep:  # collapse blank lines left behind
        if not line and (not out or not out[-1]):
            continue
        out.append(line)
    while out and not out[-1]:
        out.pop()
    return out


def tidy(text: str) -> str:
    return tidy_lines(text.split("\n"))
