"""S2ORC v2 full text (`content.text` + `content.annotations`) → the paper's format.

The layout is built from *blocks* (abstract, section headers, paragraphs, formulas) rather than
by labelling every character, which is what made the original slow and fragile:

* title first (from the papers join, else the first `title` span), then a blank line;
* the body starts at the abstract or the first header; without an abstract annotation, at the
  first paragraph after the title if that comes earlier (errata and notes have no abstract);
* `# Header` for the exact main-header vocabulary, `## Header` otherwise, case kept;
* in-text citations → `[bib_ref] cited title (≤12 words), First-author [/bib_ref]`;
* figure/table references → `[fig_ref] Figure N: caption (≤12 words) [/fig_ref]`;
* formulas → `[formula] ... [/formula]`; figure and table captions → `[fig] ... [/fig]` /
  `[table] ... [/table]` after the body;
* no author block, affiliations, venue or bibliography (only annotated blocks are emitted);
* a dropped span leaves a space, so words never glue; URLs stay (the `clean` stage removes them).

Offsets are code-point indices; Python `str` slicing is by code point, so they are used as is.
Pure Python, tuned for speed (docs/pubmed.md, "Measured"): keep it output-identical, the golden
files in tests/fixtures/pubmed/golden/s2orc pin every byte.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from dataclasses import dataclass, field
from itertools import repeat
from operator import contains, ge, itemgetter
from typing import Any, Callable

import orjson

from gap_replay.sources.pubmed.textutil import (
    first_words,
    has_words,
    is_main_header,
    short_caption,
    squash,
)
from gap_replay.textrules import remove_urls


class S2orcFormatError(ValueError):
    """The record is not an S2ORC row (the reason is the message, for the quarantine)."""


# Only these annotation types are read; the rest (authors, venues, bib authors' first names...)
# are never decoded, which is most of the JSON in a row.
USED_ANNOTATIONS = ("abstract", "title", "sectionheader", "paragraph", "formula", "bibref",
                    "bibentry", "bibtitle", "bibauthorlastname", "figure", "figurecaption",
                    "figureref", "tableref", "table")
LOOKUP_ANNOTATIONS = ("bibtitle", "bibauthorlastname", "figurecaption")
REF_ANNOTATIONS = ("bibref", "figureref", "tableref")
# decoded up front; the lookup and reference types only when (and if) they are needed
_EAGER_ANNOTATIONS = tuple(key for key in USED_ANNOTATIONS
                           if key not in LOOKUP_ANNOTATIONS and key not in REF_ANNOTATIONS)
_LAZY_ANNOTATIONS = LOOKUP_ANNOTATIONS + REF_ANNOTATIONS
_ABSTRACT_WORD = re.compile(r"^(?:Abstract|ABSTRACT)(?:[:.]\s*|\s+(?=[A-Z])|(?=[A-Z]))")
_FIGURE_HEADER = re.compile(r"^(fig(ure)?s?|tab(le)?s?)\.?\s*\d", re.I)


# (start, end, token or None to drop, kind: "bib", "fig" or "for"(mula)) of an inline reference
Ref = tuple[int, int, "str | None", str]


# (start, end, attributes) of an annotation: a plain tuple, which `zip` builds in C
Span = tuple[int, int, dict]


def _spans(raw: Any, text_len: int) -> list[Span]:
    """Decode one annotation value: a JSON string, an already-decoded list, or null."""
    if raw is None:
        return []
    if isinstance(raw, (str, bytes)):
        if not raw or raw == "null":
            return []
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise S2orcFormatError(f"annotation is not valid JSON: {exc}") from exc
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise S2orcFormatError(f"annotation is a {type(raw).__name__}, expected a list")
    fast = _well_formed_spans(raw, text_len)
    if fast is not None:
        return fast
    out: list[Span] = []
    append = out.append
    for item in raw:
        try:
            start = item["start"]
            end = item["end"]
            if type(start) is not int or type(end) is not int:
                start, end = int(start), int(end)  # offsets written as strings
        except (KeyError, TypeError, ValueError):
            continue  # not a span (null, a bare number, missing offsets): ignored
        if start < 0:
            start = 0
        if end > text_len:
            end = text_len
        if end <= start:
            continue
        attrs = item.get("attributes")
        append((start, end, attrs if type(attrs) is dict else _NO_ATTRS))
    out.sort(key=_start)  # stable; usually already sorted, which timsort checks in O(n)
    return out


_NO_ATTRS: dict = {}


def _well_formed_spans(items: list, text_len: int) -> list[Span] | None:
    """The common case of `_spans` with C-level checks instead of a Python loop per span:
    every item a dict with int offsets inside the text and a dict (or no) `attributes`.
    Returns None when any item is not like that; the careful loop then decides item by item,
    and for well-formed input both give the same spans."""
    try:
        starts = list(map(_get_start, items))
        ends = list(map(_get_end, items))
        attrs = list(map(dict.get, items, repeat("attributes"), repeat(_NO_ATTRS)))
    except (TypeError, KeyError, AttributeError):
        return None
    if not starts or not set(map(type, starts)) | set(map(type, ends)) <= _INT_ONLY:
        return None
    if min(starts) < 0 or max(ends) > text_len or any(map(ge, starts, ends)):
        return None
    if not set(map(type, attrs)) <= _DICT_ONLY:
        attrs = [a if type(a) is dict else _NO_ATTRS for a in attrs]
    out = list(zip(starts, ends, attrs))
    if starts != sorted(starts):
        out.sort(key=_start)
    return out


_INT_ONLY = frozenset((int,))
_get_start = itemgetter("start")
_get_end = itemgetter("end")
_DICT_ONLY = frozenset((dict,))


_start = itemgetter(0)


@dataclass
class AnnotatedRow:
    """One row's text and decoded annotations, with per-document caches of the tokens."""

    text: str
    ann: dict[str, list[Span]]
    _fig_cache: dict[str, tuple[str, str] | None] = field(default_factory=dict)
    _figures: dict[str, Span] | None = None
    _fig_tokens: dict[str, str | None] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=lambda: {"bib": 0, "fig": 0, "for": 0})

    raw: dict[str, Any] = field(default_factory=dict)
    _lookup: dict[str, tuple[list[int], list[int]]] = field(default_factory=dict)

    def spans(self, key: str) -> list[Span]:
        spans = self.ann.get(key)
        if spans is None:
            spans = self.ann[key] = _spans(self.raw.pop(key, None), len(self.text))
        return spans

    def inside(self, key: str, outer: Span) -> tuple[int, int] | None:
        """(start, end) of the first `key` span contained in `outer`."""
        return _first_inside(*self._lookup_arrays(key), outer[0], outer[1])

    def _lookup_arrays(self, key: str) -> tuple[list[int], list[int]]:
        found = self._lookup.get(key)
        if found is None:
            found = self._lookup[key] = self._prepare_lookup(key)
        return found

    def _prepare_lookup(self, key: str) -> tuple[list[int], list[int]]:
        """Sorted starts/ends of a lookup-only type (bib titles, bib authors, captions) without
        building a Span per item: most documents list many more than they cite."""
        raw = self.raw.get(key)
        if key not in self.ann and isinstance(raw, (str, bytes)) and raw not in ("", "null"):
            try:
                items = orjson.loads(raw)
                starts = list(map(_get_start, items))
                ends = list(map(_get_end, items))
                if (set(map(type, starts)) <= {int} and set(map(type, ends)) <= {int}
                        and starts == sorted(starts)):  # C-level checks; else the careful path
                    return starts, ends
            except (orjson.JSONDecodeError, TypeError, KeyError):
                pass  # the careful path below quarantines or skips what is malformed
        spans = self.spans(key)
        return [sp[0] for sp in spans], [sp[1] for sp in spans]

    # -- references ----------------------------------------------------------------------------
    def bib_token_of(self) -> Callable[[str], str | None]:
        """id → `[bib_ref] title, Author [/bib_ref]` (None: no entry or no title), made on first
        use and cached: papers cite the same entry many times, and list entries they never
        cite. The title and author arrays are read here, before any token is asked for, so a
        malformed annotation fails the row whether or not a cited entry needs it."""
        title_starts, title_ends = self._lookup_arrays("bibtitle")
        author_starts, author_ends = self._lookup_arrays("bibauthorlastname")
        entries: dict[str, tuple[int, int]] = {}
        for start, end, attrs in self.spans("bibentry"):
            key = str(attrs.get("id"))
            if key not in entries:  # the first entry wins for a repeated id
                entries[key] = (start, end)
        text = self.text
        tokens: dict[str, str | None] = {}

        def token_of(ref_id: str) -> str | None:
            if ref_id in tokens:
                return tokens[ref_id]
            entry = entries.get(ref_id)
            token = None
            if entry is not None:
                start, end = entry
                token = _bib_token_text(text, _first_inside(title_starts, title_ends, start, end),
                                        _first_inside(author_starts, author_ends, start, end))
            tokens[ref_id] = token
            return token

        return token_of

    def figures(self) -> dict[str, Span]:
        if self._figures is None:
            self._figures = {}
            for s in self.spans("figure") + self.spans("table"):
                fid = s[2].get("id")
                if isinstance(fid, str) and fid not in self._figures:
                    self._figures[fid] = s
        return self._figures

    def figure_name_caption(self, fig_id: str) -> tuple[str, str] | None:
        """('Figure 2', 'full caption') for a figure/table id, or None when it cannot be named."""
        if fig_id in self._fig_cache:
            return self._fig_cache[fig_id]
        result = None
        fig = self.figures().get(fig_id)
        if fig is not None:
            cap = self.inside("figurecaption", fig)
            fig_start, fig_end, fig_attrs = fig
            cap_start = cap[0] if cap else fig_start
            caption = self.text[cap[0]:cap[1]] if cap else self.text[fig_start:fig_end]
            prefix = self.text[fig_start:cap_start] if cap else ""
            name = _figure_name(prefix, fig_id, fig_attrs.get("type"))
            caption = squash(caption)
            # GROBID repeats the label number right before the caption ("\nFigure 2 :\n2[Left]...").
            m = _LEADING_NUMBER.match(caption)
            if m and name.endswith(" " + m.group(1)):
                caption = caption[m.end():]
            caption = caption.lstrip(".,:) ")
            result = (name, caption)
        self._fig_cache[fig_id] = result
        return result

    def fig_token(self, fig_id: str) -> str | None:
        if fig_id in self._fig_tokens:
            return self._fig_tokens[fig_id]
        named = self.figure_name_caption(fig_id)
        token = None
        if named is not None:
            name, caption = named
            short = short_caption(caption)
            token = (f"[fig_ref] {name}: {short} [/fig_ref]" if short
                     else f"[fig_ref] {name} [/fig_ref]")
        self._fig_tokens[fig_id] = token
        return token


def _first_inside(starts: list[int], ends: list[int], o_start: int,
                  o_end: int) -> tuple[int, int] | None:
    """(start, end) of the first span (of `starts`/`ends`, sorted by start) that lies inside
    [o_start, o_end)."""
    i = bisect_left(starts, o_start)
    n = len(starts)
    while i < n and starts[i] < o_end:
        if ends[i] <= o_end:
            return starts[i], ends[i]
        i += 1
    return None


def _bib_token_text(text: str, title_span: tuple[int, int] | None,
                    author_span: tuple[int, int] | None) -> str | None:
    """The cited title cut to 12 words and the first author's surname; none for a title that is
    only URLs (URLs stay in the token for the `clean` stage and do not count as words)."""
    if not title_span:
        return None
    title = text[title_span[0]:title_span[1]]
    if not remove_urls(title).strip(" .,"):
        return None
    words, cut = first_words(title.split(), 12)
    title = " ".join(words).strip(" .,") + ("..." if cut else "")
    if not title:
        return None
    if author_span:
        author = " ".join(text[author_span[0]:author_span[1]].split())
        if author:
            return f"[bib_ref] {title}, {author} [/bib_ref]"
    return f"[bib_ref] {title} [/bib_ref]"


_LEADING_NUMBER = re.compile(r"(\d+)\s*")
_FIG_WORD = re.compile(r"^(fig(?:ure)?s?|tab(?:le)?s?|scheme|chart|plate|box)\.?\s*", re.I)


def _figure_name(prefix: str, fig_id: str, kind: str | None) -> str:
    is_table = kind == "table" or fig_id.startswith("tab")
    default = "Table" if is_table else "Figure"
    # the first non-blank line of the label, with ":", "(" and ")" turned into spaces
    label = next((line for line in prefix.split("\n") if line.strip()), "")
    label = squash(label.replace(":", " ").replace("(", " ").replace(")", " "))
    m = _FIG_WORD.match(label)
    if not m:
        return default
    word = m.group(1).lower()
    if word.startswith("fig"):
        word = "Figure"
    elif word.startswith("tab"):
        word = "Table"
    else:
        word = word.capitalize()
    rest = label[m.end():].strip(" .")
    return f"{word} {rest}".strip()


def _extend_brackets(text: str, start: int, end: int) -> tuple[int, int]:
    """'(Smith et al., 2019)' or '[12]' is replaced whole, brackets included: an opening
    bracket at most 3 characters before (only spaces/punctuation between) and a closing one at
    most 3 after are taken into the span. Each side is one anchored regex over its 3-character
    window, run only when the window has a bracket at all."""
    if text[start:start + 1] in "([" and text[end - 1:end] in ")]":
        return start, end  # GROBID already put the brackets in the span
    lo = start - 3 if start >= 3 else 0
    before = text[lo:start]
    if "(" in before or "[" in before:  # the regexes only run when a bracket is near
        m = _OPEN_BEFORE(text, lo, start)
        if m:
            start = m.start()
    after = text[end:end + 3]
    if ")" in after or "]" in after:
        m = _CLOSE_AFTER(text, end, end + 3)
        if m:
            end = m.end()
    return start, end


# `[^\w...]|_` is "not alphanumeric" (`\w` is `str.isalnum` plus "_"). The last opening bracket
# of the window followed only by non-alphanumerics up to the span; the first closing bracket
# after the span with only non-alphanumerics before it.
_OPEN_BEFORE = re.compile(r"[(\[](?:[^\w(\[]|_)*\Z").search
_CLOSE_AFTER = re.compile(r"(?:[^\w)\]]|_)*[)\]]").match


def _all_refs(article: AnnotatedRow) -> list[Ref]:
    """Every inline replacement (start, end, token or None to drop, kind) of the document, sorted,
    overlaps resolved (the earlier, longer span wins). One loop per reference kind (in the
    order bibref, figureref, tableref, formula, which the stable sort below relies on), so the
    per-reference work has no kind tests."""
    text = article.text
    refs: list[Ref] = []
    append = refs.append
    extend = _extend_brackets
    bibrefs = article.spans("bibref")
    token_of = article.bib_token_of() if bibrefs else None
    for start, end, attrs in bibrefs:
        ref_id = attrs.get("ref_id")
        token = token_of(ref_id) if ref_id and isinstance(ref_id, str) else None
        if not (text[start:start + 1] in "([" and text[end - 1:end] in ")]"):
            start, end = extend(text, start, end)  # (the test is extend's own first line)
        append((start, end, token, "bib"))
    fig_token = article.fig_token
    for key in ("figureref", "tableref"):
        for start, end, attrs in article.spans(key):
            ref_id = attrs.get("ref_id")
            if not ref_id or not isinstance(ref_id, str):
                continue
            token = fig_token(ref_id)
            if token is not None:
                # "(Figure 2)" is replaced whole, but only when both brackets are there
                s2, e2 = extend(text, start, end)
                if s2 < start and e2 > end:
                    start, end = s2, e2
                append((start, end, token, "fig"))
            # an unresolved figure/table reference keeps its own words ("Table 1")
    for start, end, _attrs in article.spans("formula"):
        body = squash(text[start:end])
        append((start, end, f"[formula] {body} [/formula]" if body else None, "for"))
    refs.sort(key=_start)  # stable: at equal starts the earlier type (bibref) wins
    merged: list[Ref] = []
    last_end = -1
    for ref in refs:
        if ref[0] < last_end:
            continue
        merged.append(ref)
        last_end = ref[1]
    return merged




_BLOCK_SEP = "\x00"


def _render_paragraphs(article: AnnotatedRow, spans: list[Span], refs: list[Ref]) -> list[str]:
    """Render every text block in one pass over the sorted blocks and references: each
    reference becomes its token (or a space when dropped), whitespace runs collapse, and a
    token is followed by a space unless punctuation comes next. Each block is joined from its
    own pieces (mostly narrow strings) rather than one wide document-sized string."""
    text = article.text
    counts = article.counts
    blocks: list[str] = []
    punct, space = _PUNCT, _SPACE  # locals: this loop runs once per reference
    j, n = 0, len(refs)
    for bstart, bend, _attrs in spans:
        pieces: list[str] = []  # a fresh list: the fixes below never reach the previous block
        append = pieces.append
        while j < n and refs[j][0] < bstart:
            j += 1
        pos = bstart
        space_before = True
        k = j
        while k < n:
            rstart, rend, token, kind = refs[k]
            if rstart >= bend:
                break
            k += 1
            if rend > bend:
                continue
            seg = text[pos:rstart]
            if seg:
                append(seg)
                space_before = seg[-1] in space
            nxt = text[rend:rend + 1]
            if nxt in space:
                space_after = False  # the text's own space follows...
                if text[rend + 1:rend + 2] in punct:
                    rend += 1  # ...unless punctuation comes next: "[/bib_ref] ." → "[/bib_ref]."
            else:
                space_after = nxt not in punct  # no space before a punctuation mark
            if token:
                counts[kind] += 1
                if not space_before:
                    append(" ")
                append(token)
                if space_after:
                    append(" ")
                space_before = space_after
            elif space_after and not space_before:
                append(" ")  # a dropped span never glues two words
                space_before = True
            elif not space_after and pieces and pieces[-1][-1:] == " " and text[rend:rend + 1] in punct:
                pieces[-1] = pieces[-1].rstrip()  # "search [39], x" → "search, x"
            if not token and pieces and pieces[-1].rstrip()[-1:] in _OPENERS:
                # "( [12] )" with the citation dropped: drop the empty brackets too
                after = text[rend:rend + 2].lstrip()[:1]
                if after and after in _CLOSERS:
                    pieces[-1] = pieces[-1].rstrip()[:-1].rstrip()
                    rend = text.index(after, rend) + 1
                    space_before = False
            pos = rend
        append(text[pos:bend])
        blocks.append("".join(pieces))
        j = k  # blocks never overlap: every reference before k starts before the next block
    if any(map(contains, blocks, repeat(_BLOCK_SEP))):
        # blocks were once split on this separator: a text containing it keeps that behaviour
        blocks = (_BLOCK_SEP.join(blocks) + _BLOCK_SEP).split(_BLOCK_SEP)[: len(spans)]
    return [_tidy_block(block) for block in blocks]


def _tidy_block(part: str) -> str:
    """Whitespace squashed (`strip` when there is no run to collapse: cheaper), bullets turned
    into dashes."""
    if "\n" in part or "  " in part or "\t" in part or "\r" in part:
        part = _squash_block(part)
    else:
        part = part.strip()
    if "\u2022" in part:
        part = part.replace("\u2022", "-")
    return part


def _squash_block(part: str) -> str:
    """`" ".join(part.split())` without a string per word in the common case: an ASCII block
    whose only whitespace is the plain space (each other character `str.split` splits ASCII on
    is ruled out by a memchr scan) just has its runs of spaces replaced."""
    if part.isascii() and not any(map(part.__contains__, _ASCII_OTHER_SPACE)):
        while "  " in part:
            part = part.replace("  ", " ")
        return part.strip(" ")
    return " ".join(part.split())


_ASCII_OTHER_SPACE = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # with " ": what split() splits ASCII on
_PUNCT = frozenset(".,;:)")
_SPACE = frozenset(" \n\t")
_OPENERS = frozenset("([")
_CLOSERS = frozenset(")]")


def _body_start(article: AnnotatedRow) -> int:
    """Where the body begins: the abstract or the first header, whichever comes first (an
    abstract at offset 0 counts). Without an abstract annotation, the first paragraph after the
    title may come first: an erratum or a short note has no abstract and its paragraphs sit
    before its only header (or there is none), so they are body, not a title page."""
    candidates = [s[0] for key in ("abstract", "sectionheader") for s in article.spans(key)[:1]]
    if not article.spans("abstract"):
        title = article.spans("title")[:1]
        after = title[0][1] if title else 0
        candidates += [s[0] for s in article.spans("paragraph") if s[0] >= after][:1]
    return min(candidates) if candidates else 0


def _title(article: AnnotatedRow) -> str:
    for s in article.spans("title"):  # a title may be annotated twice: the first one wins
        title = squash(article.text[s[0]:s[1]])
        if title:
            return title
    return ""


def _blocks(article: AnnotatedRow) -> list[tuple[str, Span]]:
    """Ordered, non-overlapping (kind, span) blocks of the body."""
    body_start = _body_start(article)
    stop = min((s[0] for s in article.spans("bibentry")), default=len(article.text))
    # GROBID writes figure and table blocks after the body: the body stops at the first one
    # that follows a paragraph.
    first_par = next((s[0] for s in article.spans("paragraph") if s[0] >= body_start), None)
    if first_par is not None:
        stop = min([stop] + [s[0] for key in ("figure", "table") for s in article.spans(key)
                             if s[0] > first_par])
    # (start, -end, arrival, kind, span): a plain tuple sort orders by start, longer first, then
    # arrival order (what a stable sort on (start, -end) gives) without a key call per block
    raw: list[tuple[int, int, int, str, Span]] = []
    for kind in ("abstract", "sectionheader", "paragraph", "formula"):
        for s in article.spans(kind):
            if body_start <= s[0] < stop:
                raw.append((s[0], -s[1], len(raw), kind, s))
    if not any(block[3] == "paragraph" for block in raw):
        # No paragraph annotations: take the text between the body start and the first
        # figure or bibliography entry, minus the annotated headers.
        end = min([stop] + [s[0] for s in article.spans("figure") if s[0] > body_start])
        raw.append((body_start, -end, len(raw), "paragraph", (body_start, end, {})))
    raw.sort()
    blocks: list[tuple[str, Span]] = []
    for _start, _neg_end, _arrival, kind, span in raw:
        if blocks and span[0] < blocks[-1][1][1]:
            prev_kind, (prev_start, prev_end, prev_attrs) = blocks[-1]
            if prev_kind == "paragraph" and kind == "sectionheader" and span[0] > prev_start:
                # a header inside a (fallback) paragraph splits it
                blocks[-1] = (prev_kind, (prev_start, span[0], prev_attrs))
                blocks.append((kind, span))
                if span[1] < prev_end:
                    blocks.append(("paragraph", (span[1], prev_end, {})))
            # anything else overlapping is nested in the previous block and rendered inline
            continue
        blocks.append((kind, span))
    return blocks


def format_s2orc(record: dict, title: str | None = None) -> tuple[str, dict]:
    """Format one S2ORC v2 row; returns (text, info) where info has `title`, counts of tokens."""
    content = record.get("content")
    if not isinstance(content, dict):
        raise S2orcFormatError("no 'content' object (not an S2ORC v2 row)")
    text = content.get("text")
    if not isinstance(text, str) or not text.strip():
        raise S2orcFormatError("empty content.text")
    annotations = content.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise S2orcFormatError("content.annotations is not an object")
    text_len = len(text)
    get = annotations.get
    ann = {key: _spans(get(key), text_len) for key in _EAGER_ANNOTATIONS}
    article = AnnotatedRow(text=text, ann=ann, raw={key: get(key) for key in _LAZY_ANNOTATIONS})
    title = squash(title or "") or _title(article)

    items: list[tuple[int, str]] = []  # (header level or 0 for text, line)
    add = items.append
    figure_header = _FIGURE_HEADER.match
    header_seen_abstract = False
    refs = _all_refs(article)
    blocks = _blocks(article)
    rendered_blocks = iter(_render_paragraphs(
        article, [span for kind, span in blocks if kind in ("abstract", "paragraph")], refs))
    for kind, span in blocks:
        if kind == "sectionheader":
            header = squash(text[span[0]:span[1]])
            # structure is decided on the header's words without its URLs (what `clean` leaves:
            # a header of URLs only is no header, a main header stays one with a URL after it);
            # the line keeps the URLs for that stage
            words = remove_urls(header)
            if words is not header:  # remove_urls returns its input when there is no URL
                words = squash(words)
            if words and not figure_header(words):
                # `header_line` without its own squash: the header is squashed already
                head = header.rstrip(":").strip()
                level = 1 if is_main_header(words.rstrip(":").strip()) else 2
                add((level, f"{'#' * level} {head}"))
            continue
        if kind == "formula":
            body = squash(text[span[0]:span[1]])
            if body:
                add((0, f"[formula] {body} [/formula]"))
            continue
        rendered = next(rendered_blocks)
        if kind == "abstract" and rendered and not header_seen_abstract:
            header_seen_abstract = True
            rendered = _ABSTRACT_WORD.sub("", rendered)
            add((1, "# Abstract"))
        # never start a block with a dangling token or punctuation left by a mis-parse
        rendered = rendered.lstrip(":;,.) ")
        if rendered:
            add((0, rendered))
    captions = _captions(article)
    out = _layout(title, items, captions)
    formulas = sum(1 for kind, _ in blocks if kind == "formula")
    info = {"title": title, "bib_refs": article.counts["bib"], "fig_refs": article.counts["fig"],
            "formulas": formulas + article.counts["for"], "figures": len(captions)}
    return out, info


def _layout(title: str, items: list[tuple[int, str]], captions: list[str]) -> str:
    """Title, blank line, body (a blank line around each header; a header whose section is
    empty, i.e. followed by a header of the same or a higher level or by nothing, is dropped),
    then the captions after a blank line. A text block of URLs only is kept but is no section's
    content (textutil.has_words); only the blocks right after a header are asked."""
    out: list[str] = [title, ""] if title else []
    n = len(items)
    for i, (level, line) in enumerate(items):
        if level > 0:
            j = i + 1
            while j < n and items[j][0] == 0 and not has_words(items[j][1]):
                j += 1
            nxt = items[j][0] if j < n else -1
            if nxt == -1 or (nxt and nxt <= level):
                continue
            if out and out[-1]:
                out.append("")
            out.append(line)
            out.append("")
        else:
            out.append(line)
    if captions:
        if out and out[-1]:
            out.append("")
        out.extend(captions)
    while out and not out[-1]:
        out.pop()
    return "\n".join(out)


def _captions(article: AnnotatedRow) -> list[str]:
    out = []
    seen: set[str] = set()
    for fig_id, span in sorted(article.figures().items(), key=lambda kv: kv[1][0]):
        named = article.figure_name_caption(fig_id)
        if named is None:
            continue
        name, caption = named
        if name in ("Figure", "Table") and not caption[:1].isupper():
            continue  # no label and a caption that starts mid-sentence: a mis-parsed block
        if not caption or "continued" in caption.lower() or name + caption in seen:
            continue
        seen.add(name + caption)
        tag = "table" if fig_id.startswith("tab") or span[2].get("type") == "table" else "fig"
        out.append(f"[{tag}] {name}: {caption} [/{tag}]")
    return out
