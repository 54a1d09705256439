"""`clean`: shared text normalisation, every rule a pure function switchable per source.

Order (docs/sources.md §3.2, with the original's defects fixed): ftfy, NFC, URLs, HTML tags, citation
markers, bullet lists, symbol glyphs, section headers, whitespace. All but the first two are
gap_replay.textrules, the same functions the PubMed formatters call; a source whose acquisition
already applied a rule turns it off in the recipe (`sources.<s>.clean`), so no rule runs twice.
A rule's value there is true/false or a mapping of its keyword options (`whitespace:
{attach_punct: true}`); a document may add options of its own in `meta.clean_options` (a
guideline spec's `pdf_bullets`), which win over the recipe's for the rules that are on.
`html_tags` and `symbols` are off unless the recipe turns them on. Unlike the original it never
deletes `<...>` spans that are not HTML tags (clinical thresholds such as "p < 0.05 ... > 2"),
never deletes data in brackets (intervals, `[3H]thymidine`, `[Ca2+]i`, `CB[7]`, the corpus'
`[bib_ref]` tokens), only rewrites real bullet glyphs, and keeps paragraph breaks and
numeric-only lines.
"""

from __future__ import annotations

import re
import unicodedata
from functools import partial
from typing import Any, Callable

import ftfy
import ftfy.fixes
from ftfy.chardata import HTML_ENTITY_RE

from gap_replay.document import Document
from gap_replay.recipe import CLEAN_OFF_BY_DEFAULT, CLEAN_OPTIONS, Recipe
from gap_replay.stages.base import Stage
from gap_replay.textrules import (
    normalize_headers,
    normalize_lists,
    normalize_whitespace,
    remove_citations,
    remove_html_tags,
    remove_symbols,
    remove_urls,
)

__all__ = ["CleanStage", "RULES", "clean_text", "fix_encoding", "normalize_headers",
           "normalize_lists", "normalize_unicode", "normalize_whitespace", "remove_citations",
           "remove_html_tags", "remove_symbols", "remove_urls"]

# --- ftfy / NFC ---------------------------------------------------------------------------

# ftfy is exact but slow (~1 ms for an abstract). Most text provably cannot change under it:
# ftfy acts only on HTML entities, CR/LS/PS/NEL line breaks, control and C1 characters, curly
# quotes, ligatures, full-width forms, surrogates and mojibake; and mojibake of UTF-8 always
# shows a UTF-8 lead byte right before a continuation byte (or a space or "?" where one was
# lost) in one of the codepages ftfy tries. Both character sets are computed from those
# codepages and ftfy's own tables below. Text with none of these skips ftfy; text whose only
# finding is curly quotes gets ftfy's own quote fixer; all else goes through ftfy.
# An "&" matters only as part of an entity ftfy's unescape_html would decode (its own
# HTML_ENTITY_RE), so "R&D" or "Smith & Jones" (most papers) no longer sends a text to ftfy.
# tests/test_stages_clean.py and tests/test_speed_equivalence.py check the equivalence, including
# mojibake made with every codepage and entities that only NFC completes ("&amp\u037e").
_ASCII_FTFY_TRIGGERS = re.compile(r"[\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _ftfy_precheck() -> tuple[re.Pattern, re.Pattern, re.Pattern, re.Pattern]:
    import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-windows-* codecs)
    from ftfy import chardata

    def decoded(byte_values, encodings=chardata.CHARMAP_ENCODINGS) -> set[str]:
        chars: set[str] = set()
        for enc in encodings:
            for b in byte_values:
                chars.update(bytes([b]).decode(enc, errors="ignore"))
        return chars

    leads = decoded(range(0xC2, 0xF5))
    conts = decoded(range(0x80, 0xC0))
    # a no-break space lost to a plain space after a lead byte: the Latin-1/cp1252 failure mode
    # ftfy's restore_byte_a0 targets (other codepages' lead chars such as "–" or "β" before a
    # space are ordinary text)
    space_leads = decoded([0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9, 0xE0, 0xE1, 0xE2, 0xE3, 0xF0],
                          ("latin-1", "sloppy-windows-1252"))
    quotes = {chr(c) for c in (0x02BC, *range(0x2018, 0x2020))}
    acted_on = (set(map(chr, chardata.CONTROL_CHARS)) | set(map(chr, chardata.LIGATURES))
                | set(map(chr, chardata.WIDTH_MAP)) | set(map(chr, range(0x80, 0xA0)))
                | {"\u2028", "\u2029", "\u0085", "\ufeff", "\ufffd"} | quotes)
    plain_ranges = [(0xA0, 0x24F), (0x370, 0x4FF), (0x2010, 0x205E), (0x2070, 0x209F),
                    (0x20A0, 0x20C0), (0x2100, 0x22FF), (0x2460, 0x24FF), (0x25A0, 0x25FF)]
    plain = {chr(c) for lo, hi in plain_ranges for c in range(lo, hi + 1)} - acted_on

    def cls(chars: set[str]) -> str:
        return "".join(re.escape(c) for c in sorted(chars))

    needs_ftfy = re.compile(f"[^\\t\\n\\x20-\\x7e{cls(plain | quotes)}]")
    # two patterns, not one alternation: two scans are 2x faster than one trying both per character
    mojibake = re.compile(f"[{cls(leads)}][{cls(conts | {'?'})}]")
    lost_a0 = re.compile(f"[{cls(space_leads)}] ")
    curly = re.compile(f"[{cls(quotes)}]")
    return needs_ftfy, mojibake, lost_a0, curly


_NEEDS_FTFY, _MOJIBAKE_PAIR, _MOJIBAKE_LOST_A0, _HAS_CURLY = _ftfy_precheck()


def fix_encoding(text: str) -> str:
    """Repair mojibake, HTML entities, odd line breaks and quotes with ftfy (same output, fast)."""
    if _ASCII_FTFY_TRIGGERS.search(text) or ("&" in text and HTML_ENTITY_RE.search(text)):
        return ftfy.fix_text(text)
    if text.isascii():
        return text
    if _NEEDS_FTFY.search(text) or _MOJIBAKE_PAIR.search(text) or _MOJIBAKE_LOST_A0.search(text):
        return ftfy.fix_text(text)
    fixed = ftfy.fixes.uncurl_quotes(text) if _HAS_CURLY.search(text) else text
    fixed = unicodedata.normalize("NFC", fixed)
    if "&" in fixed and HTML_ENTITY_RE.search(fixed):  # NFC completed an entity: ftfy's next pass
        return ftfy.fix_text(text)
    return fixed


def normalize_unicode(text: str) -> str:
    """Compose to NFC so the same text always has the same code points (dedup, tokens)."""
    if text.isascii() or unicodedata.is_normalized("NFC", text):
        return text
    return unicodedata.normalize("NFC", text)


# URLs, markup, citations, lists, headers and whitespace: the one shared library (textrules)

RULES: dict[str, Callable[..., str]] = {
    "ftfy": fix_encoding,
    "nfc": normalize_unicode,
    "urls": remove_urls,
    "html_tags": remove_html_tags,
    "citations": remove_citations,
    "lists": normalize_lists,
    "symbols": remove_symbols,
    "headers": normalize_headers,
    "whitespace": normalize_whitespace,
}

Chain = list[tuple[str, Callable[[str], str]]]


def _is_on(rules: dict[str, Any] | None, name: str) -> bool:
    if rules is None or name not in rules:
        return name not in CLEAN_OFF_BY_DEFAULT
    return rules[name] is not False


def rule_chain(rules: dict[str, Any] | None, extra: dict[str, dict] | None = None) -> Chain:
    """The enabled rules in the fixed order above, each bound to its options (the recipe's
    mapping, then `extra`, a document's `meta.clean_options`)."""
    for name, options in (extra or {}).items():
        unknown = set(options) - set(CLEAN_OPTIONS.get(name, ()))
        if unknown:
            raise ValueError(f"meta.clean_options.{name}: unknown option {sorted(unknown)[0]!r}; "
                             f"use one of {', '.join(CLEAN_OPTIONS.get(name, ())) or 'none'}")
    chain: Chain = []
    for name, rule in RULES.items():
        if not _is_on(rules, name):
            continue
        options = dict(rules[name]) if rules and isinstance(rules.get(name), dict) else {}
        options.update((extra or {}).get(name, {}))
        chain.append((name, partial(rule, **options) if options else rule))
    return chain


def clean_text(text: str, rules: dict[str, Any] | None = None) -> str:
    """Apply the enabled rules in the fixed order above (the default ones when `rules` is None)."""
    for _name, rule in rule_chain(rules):
        text = rule(text)
    return text


class CleanStage(Stage):
    """Rewrites `text` with the source's rules; drops documents that clean down to nothing.

    `changes()` counts, per source and rule, the documents the rule changed (for stats.json),
    so a rule that suddenly rewrites everything shows up.
    """

    name = "clean"

    def __init__(self, rules_by_source: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.rules_by_source = rules_by_source
        self._chains = {src: rule_chain(rules) for src, rules in rules_by_source.items()}
        self._with_options: dict[tuple[str, str], Chain] = {}
        self._changed: dict[str, dict[str, int]] = {}

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> CleanStage:
        """Every source's `clean` rules (always on: a source turns single rules off)."""
        return cls({s: recipe.clean_rules(s) for s in recipe.sources})

    def changes(self) -> dict[str, dict[str, int]]:
        return {src: dict(sorted(c.items())) for src, c in sorted(self._changed.items())}

    def _chain(self, doc: Document) -> Chain:
        extra = doc.meta.get("clean_options")
        if not extra:
            chain = self._chains.get(doc.source)
            if chain is None:
                chain = self._chains[doc.source] = rule_chain(None)
            return chain
        key = (doc.source, repr(sorted((k, sorted(v.items())) for k, v in extra.items())))
        chain = self._with_options.get(key)
        if chain is None:
            chain = self._with_options[key] = rule_chain(self.rules_by_source.get(doc.source), extra)
        return chain

    def process(self, doc: Document) -> Document | None:
        text = doc.text
        changed = self._changed.setdefault(doc.source, {})
        for name, rule in self._chain(doc):
            new = rule(text)
            if new is not text and new != text:
                changed[name] = changed.get(name, 0) + 1
            text = new
        if not text:
            self.drop(doc, "empty_after_clean")
            return None
        doc.text = text
        return doc
