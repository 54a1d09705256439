"""`clean`: shared text normalisation, every rule a pure function switchable per source.

Order (docs/sources.md §3.2, with the original's defects fixed): ftfy, NFC, URLs, HTML tags, citation
markers, bullet lists, symbol glyphs, section headers, whitespace. All but the first two are
gap_replay.textrules. Sources only extract (the PubMed formatters keep URLs), so every rule runs
here, once; a source turns off the rules it does not want in the recipe (`sources.<s>.clean`).
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

# ftfy is exact but slow (~1 ms for an abstract, ~10 ms for a paper). Most text provably cannot
# change under ftfy.fix_text with the default config, so it skips ftfy; text whose only finding is
# curly quotes gets ftfy's own quote fixer; all else goes through ftfy. The argument, fixer by
# fixer (ftfy 6.x: __init__.fix_and_explain, _fix_encoding_one_step_and_explain, fixes.py):
# - unescape_html acts only on its own HTML_ENTITY_RE (checked: "R&D" alone does not go to ftfy);
# - remove_terminal_escapes, remove_control_chars, fix_c1_controls, fix_latin_ligatures,
#   fix_character_width, fix_line_breaks, uncurl_quotes and fix_surrogates act only on ESC,
#   CONTROL_CHARS, C1, LIGATURES, WIDTH_MAP, CR/LS/PS/NEL, the quote regexes and surrogates:
#   none of them is "plain" (below) and the ASCII ones are _ASCII_FTFY_TRIGGERS;
# - fix_encoding changes text only by encoding the whole text (or, in decode_inconsistent_utf8, a
#   UTF8_DETECTOR_RE match) in one of CHARMAP_ENCODINGS and decoding the bytes as UTF-8, after
#   restore_byte_a0 (a lead byte, then a space where A0 was) and replace_lossy_sequences (a lead
#   byte, then "?" or the 0x1A of U+FFFD). Valid UTF-8 with a byte >= 0x80 has a lead byte right
#   before a continuation byte (0xC0 too: utf-8-variants decodes C0 80), so the text needs a
#   lead char before a continuation char or "?" (_MOJIBAKE_PAIR) or before the space of an
#   ALTERED_UTF8_RE pattern (_MOJIBAKE_LOST_A0), both sets decoded from every codepage ftfy
#   tries (restore_byte_a0 skips macroman; UTF8_DETECTOR_RE's chars are in these sets, its
#   spaces are the lost-A0 case, and its match is fixed by the same whole-text step). A char no
#   codepage can encode makes the whole-text encode impossible and is in no UTF8_DETECTOR_RE
#   match, so its presence never enables a fix; the latin-1-as-windows-1252 branch changes only
#   C1 chars; nothing here depends on ftfy's is_bad heuristic;
# - normalization="NFC": "plain" chars are starters that NFC keeps alone, and fix_encoding
#   sends text that is not NFC as a whole (a starter composing with the one before it, such as
#   Hangul jamo) to ftfy. A text of starters that is NFC has no composing pair, nor has any
#   piece of it, so NFC is the identity on every line and max_decode_length segment fix_text
#   cuts (the splitting cannot matter otherwise: each check above is per char or per adjacent
#   pair, and a match never spans "\n"). The NFC check runs on the stretches (below): every char
#   there is a starter, no canonical composition starts with an ASCII char or a curly quote,
#   and each non-ASCII char keeps the char before it unless that one is ASCII.
# So "plain" is computed, not listed: every assigned char that is not a control, surrogate,
# private-use or noncharacter (planes 0-3 and 14), not in ftfy's tables and NFC-stable; chars a
# codepage can encode are plain too, as the pair checks cover them. ftfy's config is its default.
# tests/test_stages_clean.py and tests/test_speed_equivalence.py check the equivalence: mojibake
# made with every codepage, entities that only NFC completes, and random mixes of every kind of
# char above with plain chars from every block.
_ASCII_FTFY_TRIGGERS = re.compile(r"[\r\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _char_class(chars: set[str] | list[int]) -> str:
    """A regex class body for `chars` (or sorted code points) as ranges of consecutive ones."""
    points = chars if isinstance(chars, list) else sorted(map(ord, chars))
    starts = [p for i, p in enumerate(points) if i == 0 or points[i - 1] != p - 1]
    ends = [p for i, p in enumerate(points) if i + 1 == len(points) or points[i + 1] != p + 1]
    return "".join(re.escape(chr(lo)) if lo == hi else f"{re.escape(chr(lo))}-{re.escape(chr(hi))}"
                   for lo, hi in zip(starts, ends))


def _nfc_inert(candidates: range) -> list[int]:
    """Assigned text chars that are starters NFC keeps as they are (not control, private, surrogate)."""
    category, combining, is_nfc = unicodedata.category, unicodedata.combining, unicodedata.is_normalized
    return [cp for cp, c in zip(candidates, map(chr, candidates))
            if category(c) not in ("Cn", "Co", "Cs", "Cc") and not combining(c) and is_nfc("NFC", c)]


def _ftfy_precheck() -> tuple[re.Pattern, ...]:
    import ftfy.bad_codecs  # noqa: F401  (registers the sloppy-windows-* codecs)
    from ftfy import chardata

    def decoded(byte_values, encodings=chardata.CHARMAP_ENCODINGS) -> set[str]:
        chars: set[str] = set()
        for enc in encodings:
            for b in byte_values:
                chars.update(bytes([b]).decode(enc, errors="ignore"))
        return chars

    leads = decoded(range(0xC0, 0xF5))
    conts = decoded(range(0x80, 0xC0))
    # ALTERED_UTF8_RE's lead bytes before a space, in the codepages restore_byte_a0 runs for:
    # two-byte leads then the space; E2/E3/F0 then the space then a continuation (its other
    # patterns have a lead right before a continuation, which _MOJIBAKE_PAIR finds)
    a0_codepages = [e for e in chardata.CHARMAP_ENCODINGS if e != "macroman"]
    space_leads = decoded([0xC2, 0xC3, 0xC5, 0xCE, 0xD0, 0xD9], a0_codepages)
    space_leads_long = decoded([0xE2, 0xE3, 0xF0], a0_codepages)
    quotes = {chr(c) for c in (0x02BC, *range(0x2018, 0x2020))}
    acted_on = (set(chardata.CONTROL_CHARS) | set(chardata.LIGATURES) | set(chardata.WIDTH_MAP)
                | set(range(0x80, 0xA0)) | {0x2028, 0x2029, 0x85, 0xFEFF, 0xFFFD})
    # planes 4-13 are unassigned and 15-16 private use: chars there go to ftfy
    plain = [cp for cp in _nfc_inert(range(0xA0, 0x40000)) + _nfc_inert(range(0xE0000, 0xE1000))
             if cp not in acted_on]  # quotes stay in: the fast path uncurls them as ftfy does

    # the checks below run on _SUSPECTS' stretches only: every char they start at must be one
    assert not _PRINTABLE_ASCII.search("".join(leads | conts | space_leads | space_leads_long | quotes))
    needs_ftfy = re.compile(f"[^{_PRINTABLE}{_char_class(plain)}]")
    # separate patterns, not alternations: a scan for one class is 2x faster than one trying two
    mojibake = re.compile(f"[{_char_class(leads)}][{_char_class(conts | {'?'})}]")
    lost_a0 = re.compile(f"[{_char_class(space_leads)}] ")
    lost_a0_long = re.compile(f"[{_char_class(space_leads_long)}] [{_char_class(conts)}]")
    curly = re.compile(f"[{_char_class(quotes)}]")
    return needs_ftfy, mojibake, lost_a0, lost_a0_long, curly


# Every check but the entity one starts at a char outside printable ASCII, tab and newline, and
# looks at most two chars on ("?", or a space and a continuation char): one scan collects those
# stretches (runs of such chars joined by single spaces or "?", the space or "?" after them too),
# and the checks run on the stretches joined by "\n", which no check crosses. On papers this is
# one scan of the text instead of six.
# (the pattern starts with one char class, not a repeat: the engine then skips ahead in C, 3x faster)
_PRINTABLE = r"\t\n\x20-\x7e"  # printable ASCII, tab and newline: a class body
_SUSPECTS = re.compile(f"[^{_PRINTABLE}][^{_PRINTABLE}]*(?:[ ?][^{_PRINTABLE}]*)*")
_PRINTABLE_ASCII = re.compile(f"[{_PRINTABLE}]")
_NEEDS_FTFY, _MOJIBAKE_PAIR, _MOJIBAKE_LOST_A0, _MOJIBAKE_LOST_A0_LONG, _HAS_CURLY = _ftfy_precheck()


def fix_encoding(text: str) -> str:
    """Repair mojibake, HTML entities, odd line breaks and quotes with ftfy (same output, fast).
    The result is NFC, as `normalize_unicode` makes it (the chain skips that rule after this one)."""
    if "&" in text and HTML_ENTITY_RE.search(text):
        return _ftfy(text)
    suspects = "\n".join(_SUSPECTS.findall(text))
    if not suspects:
        return text
    if (_ASCII_FTFY_TRIGGERS.search(suspects) or _NEEDS_FTFY.search(suspects)
            or _MOJIBAKE_PAIR.search(suspects) or _MOJIBAKE_LOST_A0.search(suspects)
            or _MOJIBAKE_LOST_A0_LONG.search(suspects)
            or not unicodedata.is_normalized("NFC", suspects)):  # starters that compose
        return _ftfy(text)
    return ftfy.fixes.uncurl_quotes(text) if _HAS_CURLY.search(suspects) else text


def _ftfy(text: str) -> str:
    # ftfy composes each segment it fixes; a segment cut inside a line longer than its
    # max_decode_length may start with a combining mark, so the whole is checked once more
    return normalize_unicode(ftfy.fix_text(text))


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
        if not _is_on(rules, name) or (name == "nfc" and _is_on(rules, "ftfy")):
            continue  # (fix_encoding's output is NFC already)
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
