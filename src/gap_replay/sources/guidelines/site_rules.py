"""A guideline spec's site rules: the part of a page that is the guideline, or why none is.

These rules belong to extraction: they cut a page down to its article (start/stop anchors,
chrome lines, unwanted sections, title lines) with what the spec (`clean:` in its YAML) and the
source's hook say, and decide whether the page holds a guideline at all. They never apply the
shared text rules (URLs, HTML tags, citations, lists, symbols, headers, whitespace): those run
once, in the `clean` stage of `gap-replay process`, with the options of the recipe's
`sources.guidelines.clean` and the spec's `pdf_bullets` and `numbered_bullets` (passed as
`meta.clean_options`).
The length thresholds (`min_chars`, `min_lines`, `min_long_lines`) are measured on the text
those shared rules will make (`shared_rules_preview`), as before, so a page is rejected for
what it would become. Each rule fixes a defect of the original cleaner (docs/guidelines.md):

* truncate: stoppers turn on only after the start anchor (or after the body begins) and match
  whole headings, so a TOC line "References" near the top no longer cuts the document (defect 3);
* paragraph breaks and numeric lines ("≥ 140/90", "2.5") are kept (defect 4);
* lines that merely mention the title are kept (defect 10).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from gap_replay.sources.guidelines.hooks import Hook
from gap_replay.sources.guidelines.spec import CleanRules
from gap_replay.stages.clean import rule_chain
from gap_replay.textrules import demote_headers, normalize_headers

HEADING = re.compile(r"^(#{1,6})[ \t]+(?=\S)")


# The guideline recipe's shared rules without ftfy/NFC (gap_replay/recipe.yaml, sources.guidelines.clean).
PREVIEW_RULES = {"ftfy": False, "nfc": False, "html_tags": True, "symbols": True,
                 "whitespace": {"attach_punct": True, "headers_apart": True}}


def shared_rules_preview(text: str, rules: CleanRules) -> str:
    """What the `clean` stage's shared rules make of `text` with the guideline recipe (without
    ftfy/NFC; line breaks made LF as ftfy would): only to measure the rejection thresholds; the
    record keeps `text` itself."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    for _name, rule in rule_chain(PREVIEW_RULES, clean_options(rules)):
        text = rule(text)
    return text


def clean_options(rules: CleanRules) -> dict[str, dict]:
    """The spec's options for the shared rules (`pdf_bullets`, `numbered_bullets`), carried to
    the `clean` stage in `meta.clean_options` (empty: the recipe's options alone)."""
    lists = {name: True for name, on in (("pdf_bullets", rules.pdf_bullets),
                                         ("numbered", rules.numbered_bullets)) if on}
    return {"lists": lists} if lists else {}


def _forms(line: str) -> tuple[str, ...]:
    lower = " ".join(line.lower().split())
    no_hash = lower.lstrip("#").strip()
    no_number = re.sub(r"^[\d.]+\s*", "", no_hash)
    letters = " ".join(re.sub(r"[^a-z ]", "", no_hash).split())
    return lower, no_hash, no_number, no_number.rstrip(":").strip(), letters


def _entry(e: str) -> tuple[str, bool]:
    prefix = e.endswith("*")
    return " ".join(e.rstrip("*").lower().split()), prefix


def line_matches(line: str, entries: Iterable[str], *, prefix_always: bool = False) -> bool:
    """An entry matches a whole line (after lowercasing and removing `#`, numbering and a final
    colon); an entry ending in `*` matches a line prefix. `prefix_always` (removers) treats every
    entry as a prefix, as the original did for line removal. Anchors (starters, stoppers) never
    match a list item, so a table of contents cannot start or end the text."""
    forms = _forms(line)
    if not prefix_always:
        if line.lstrip().startswith(("- ", "* ", "+ ")):
            return False
        forms = forms[:4]
    for raw in entries:
        entry, prefix = _entry(raw)
        if not entry:
            continue
        for form in forms:
            if (prefix or prefix_always) and form.startswith(entry):
                return True
            if form == entry:
                return True
    return False


def _is_body_line(line: str) -> bool:
    return not line.lstrip().startswith("#") and len(line.split()) >= 8


def truncate(text: str, starters: Iterable[str] = (), removers: Iterable[str] = (),
             stoppers: Iterable[str] = ()) -> str:
    """Keep the text from the first starter heading, drop remover lines, end at a stopper.

    Fixed (docs/sources.md §3.1): a stopper only fires after the start anchor, or, with no anchor,
    once the body has begun (a line of 8+ words), so nav and TOC lines near the top cannot end
    the document; blank lines (paragraphs) and numeric lines are kept.
    """
    starters, removers, stoppers = list(starters), list(removers), list(stoppers)
    lines = text.split("\n")
    start = None
    if starters:
        for i, line in enumerate(lines):
            if line.strip() and line_matches(line, starters):
                start = i
                break
    armed = start is not None
    out: list[str] = []
    for i, line in enumerate(lines[start or 0:]):
        if not line.strip():
            out.append("")
            continue
        is_anchor = armed and i == 0
        if not is_anchor and removers and line_matches(line, removers, prefix_always=True):
            continue
        if armed and not is_anchor and stoppers and line_matches(line, stoppers):
            break
        if not re.search(r"\w", line):
            continue  # separator residue ("---", "•"); numeric lines have \w and stay
        out.append(line)
        if not armed and _is_body_line(line):
            armed = True
    return "\n".join(out).strip()


def drop_sections(text: str, patterns: Iterable[str]) -> str:
    """Drop each heading whose text matches a pattern, with its body and sub-headings."""
    regexes = [re.compile(p, re.I) for p in patterns]
    if not regexes:
        return text
    out: list[str] = []
    dropping_level = 0
    for line in text.split("\n"):
        m = HEADING.match(line)
        if m:
            level = len(m.group(1))
            if dropping_level and level > dropping_level:
                continue
            dropping_level = 0
            if any(r.search(line[m.end():].strip()) for r in regexes):
                dropping_level = level
                continue
        if not dropping_level:
            out.append(line)
    return "\n".join(out)


def _short_line(line: str, min_words: int) -> bool:
    s = line.strip()
    return bool(s) and not HEADING.match(s) and len(s.split()) < min_words


def _title_line(line: str, title: str) -> bool:
    """A line that merely repeats the title (or a prefix of it), not a sentence mentioning it."""
    s = line.strip().lstrip("#").strip().lower()
    return bool(s) and bool(title) and title.lower().startswith(s) and len(s) >= 0.5 * len(title)


@dataclass
class SiteText:
    text: str                       # the article as extracted and cut by the site rules
    rejected: str | None = None     # why the page has no usable guideline (the record is kept
                                    # in the state for `guidelines clean`, not written to raw)
    removed: dict[str, int] = field(default_factory=dict)   # characters removed, per rule


def apply_site_rules(raw_text: str, title: str, rules: CleanRules, hook: Hook | None = None) -> SiteText:
    """raw_text → the article's text, or a rejection reason. Pure: same input, same output.

    `removed` says how many characters each rule took out, so a rule change can be checked
    against what it costs (`guidelines clean` prints the totals).
    """
    removed: dict[str, int] = {}
    text = raw_text.replace("\r\n", "\n")

    def step(name: str, new: str) -> str:
        delta = len(text) - len(new)
        if delta > 0:
            removed[name] = removed.get(name, 0) + delta
        return new

    for pattern, repl in rules.replace:
        text = step("replace", re.sub(pattern, repl, text))
    for needle in rules.reject_if_contains:
        if needle in text:
            return SiteText("", f"contains {needle!r}", removed)
    for pattern in rules.reject_if_line_matches:
        if re.search(pattern, text, re.M):
            return SiteText("", f"a line matches {pattern!r}", removed)
    text = step("truncate", truncate(text, rules.starters, rules.removers, rules.stoppers))
    text = step("drop_sections", drop_sections(text, rules.drop_sections))
    lines = text.split("\n")
    if rules.drop_lines_containing:
        lines = [l for l in lines if not any(n in l for n in rules.drop_lines_containing)]
        text = step("drop_lines_containing", "\n".join(lines))
    if rules.min_words_per_line:
        lines = [l for l in lines if not _short_line(l, rules.min_words_per_line)
                 or l.lstrip().startswith(("- ", "• "))]
        text = step("min_words_per_line", "\n".join(lines))
    if rules.drop_title_lines and title:
        lines = [l for l in lines if not _title_line(l, title)]
        text = step("drop_title_lines", "\n".join(lines))
    text = "\n".join(lines)
    if hook is not None:
        text = step("hook", hook.clean(text, title))
    if rules.title_heading and title:
        first = text.lstrip().split("\n", 1)[0].lstrip("#").strip()
        if first.lower() != title.lower():
            text = f"# {title}\n\n{demote_headers(normalize_headers(text, max_level=6))}"
    shared = shared_rules_preview(text, rules)
    if len(shared) < rules.min_chars:
        return SiteText("", f"shorter than {rules.min_chars} characters", removed)
    nonblank = [l for l in shared.split("\n") if l.strip()]
    if len(nonblank) < rules.min_lines:
        return SiteText("", f"fewer than {rules.min_lines} lines", removed)
    if rules.min_long_lines:
        long_lines = sum(1 for l in nonblank if len(l.split()) > rules.long_line_words)
        if long_lines < rules.min_long_lines:
            return SiteText("", f"fewer than {rules.min_long_lines} lines of more than "
                                f"{rules.long_line_words} words", removed)
    return SiteText(text, None, removed)
