"""Guideline text cleaning: per-source rules from the spec, then the common rules.

Every rule is a pure function on text. Each fixes a defect of the original cleaner (sources.md
§3 and §9); the tests feed the exact strings the original mangled:

* bullets: only real bullet glyphs followed by a space become `- `; a line starting with the
  letter "o" ("often", "obesity") is never rewritten (defect 1);
* citations: only reference markers in citation position go (gap_replay.textrules: `[12]`,
  `[1, 3]`, `[1–5]`, author-year groups); `p<0.05 … >2`, `[3H]`, `[Ca2+]i`, intervals stay;
  HTML tags are removed only when they are real tag names (defect 2);
* truncate: stoppers turn on only after the start anchor (or after the body begins) and match
  whole headings, so a TOC line "References" near the top no longer cuts the document (defect 3);
* paragraph breaks and numeric lines ("≥ 140/90", "2.5") are kept (defect 4);
* headings always get a blank line before them and levels are shifted from the true minimum,
  including a heading on the first line (defect 8);
* parentheses (doses), " ," commas and lines that merely mention the title are kept (defect 10);
* WikiDoc: an "X overview" page supersedes only X's known microchapters, never "Xyz ..." or
  "X in pregnancy" (defect 9).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable

from gap_replay.sources.guidelines.spec import CleanRules
from gap_replay.textrules import (  # noqa: F401  (re-exported: callers import them from here)
    demote_headers,
    normalize_headers,
    normalize_lists,
    normalize_whitespace,
    remove_citations,
    remove_urls,
)

# ---------------------------------------------------------------------------------------------
# common rules
# ---------------------------------------------------------------------------------------------
HTML_TAGS = ("a|abbr|b|br|div|em|font|h[1-6]|hr|i|img|li|ol|p|span|strong|sub|sup|table|tbody|td|"
             "th|thead|tr|u|ul|blockquote|code|pre|small|big|section|article|nav|label|center")
HTML_TAG = re.compile(rf"</?(?:{HTML_TAGS})(?:\s+[a-zA-Z-]+(?:=(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*\s*/?>",
                      re.I)
NUMBERED_LINE = re.compile(r"^(\s*)\d{1,3}[.)]\s+(?=\S)", re.M)
PRIVATE_USE = re.compile("[\ue000-\uf8ff\ufffd]")
HEADING = re.compile(r"^(#{1,6})[ \t]+(?=\S)")

# the names this module's callers and tests know, for the shared rules
normalize_headings = normalize_headers
demote_headings = demote_headers


def remove_html_tags(text: str) -> str:
    """Remove leftover HTML tags by name only: `p < 0.05 in A and B > C` is not a tag."""
    return HTML_TAG.sub("", text)


def normalize_bullets(text: str, pdf_bullets: bool = False) -> str:
    """Bullet glyphs, `* ` and `+ ` at a line start become `- ` (textrules.normalize_lists);
    with `pdf_bullets` also the PDF sub-bullets `o `/`q ` before a capital, digit or "("."""
    return normalize_lists(text, pdf_bullets=pdf_bullets)


def remove_weird_chars(text: str) -> str:
    """Private-use glyphs (Symbol/Wingdings residue) and U+FFFD; `**` bold markers."""
    text = PRIVATE_USE.sub("", text)
    return text.replace("**", "")


def normalize_spacing(text: str) -> str:
    """The guideline whitespace: paragraph breaks kept, a blank line around every heading, a
    space-separated `,` `;` `.` `)` attached to its word (never a decimal: "P = .004")."""
    return normalize_whitespace(text, attach_punct=True, headers_apart=True)


def common_clean(text: str, pdf_bullets: bool = False) -> str:
    """The common rules (sources.md §3.2, rebuilt; gap_replay.textrules) in order. They run
    here, once, at acquisition; the recipe turns the same rules off for guidelines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = remove_urls(text)
    text = remove_html_tags(text)
    text = remove_citations(text)
    text = normalize_bullets(text, pdf_bullets)
    text = remove_weird_chars(text)
    text = normalize_headings(text)
    return normalize_spacing(text)


# ---------------------------------------------------------------------------------------------
# per-source rules
# ---------------------------------------------------------------------------------------------
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

    Fixed (sources.md §3.1): a stopper only fires after the start anchor, or, with no anchor,
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
class CleanResult:
    text: str
    rejected: str | None = None     # why the article has no usable text (kept in raw, text "")
    removed: dict[str, int] = field(default_factory=dict)   # characters removed, per rule


def clean_article(raw_text: str, title: str, rules: CleanRules, hook=None) -> CleanResult:
    """raw_text → cleaned text, or a rejection reason. Pure: same input, same output.

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
            return CleanResult("", f"contains {needle!r}", removed)
    for pattern in rules.reject_if_line_matches:
        if re.search(pattern, text, re.M):
            return CleanResult("", f"a line matches {pattern!r}", removed)
    text = step("truncate", truncate(text, rules.starters, rules.removers, rules.stoppers))
    text = step("drop_sections", drop_sections(text, rules.drop_sections))
    lines = text.split("\n")
    if rules.drop_lines_containing:
        lines = [l for l in lines if not any(n in l for n in rules.drop_lines_containing)]
        text = step("drop_lines_containing", "\n".join(lines))
    if rules.numbered_bullets:
        lines = [NUMBERED_LINE.sub(r"\1- ", l) for l in lines]
    if rules.min_words_per_line:
        lines = [l for l in lines if not _short_line(l, rules.min_words_per_line)
                 or l.lstrip().startswith(("- ", "• "))]
        text = step("min_words_per_line", "\n".join(lines))
    if rules.drop_title_lines and title:
        lines = [l for l in lines if not _title_line(l, title)]
        text = step("drop_title_lines", "\n".join(lines))
    text = "\n".join(lines)
    if hook is not None and hasattr(hook, "clean"):
        text = step("hook", hook.clean(text, title))
    if rules.title_heading and title:
        first = text.lstrip().split("\n", 1)[0].lstrip("#").strip()
        if first.lower() != title.lower():
            text = f"# {title}\n\n{demote_headings(normalize_headings(text, max_level=6))}"
    text = step("common", common_clean(text, rules.pdf_bullets))
    if len(text) < rules.min_chars:
        return CleanResult("", f"shorter than {rules.min_chars} characters", removed)
    nonblank = [l for l in text.split("\n") if l.strip()]
    if len(nonblank) < rules.min_lines:
        return CleanResult("", f"fewer than {rules.min_lines} lines", removed)
    if rules.min_long_lines:
        long_lines = sum(1 for l in nonblank if len(l.split()) > rules.long_line_words)
        if long_lines < rules.min_long_lines:
            return CleanResult("", f"fewer than {rules.min_long_lines} lines of more than "
                                   f"{rules.long_line_words} words", removed)
    return CleanResult(text, None, removed)


# ---------------------------------------------------------------------------------------------
# WikiDoc: "X overview" supersedes X's microchapters, and nothing else
# ---------------------------------------------------------------------------------------------
MICROCHAPTERS = (
    "historical perspective", "classification", "pathophysiology", "causes",
    "differentiating {x} from other diseases", "differential diagnosis",
    "epidemiology and demographics", "risk factors", "screening",
    "natural history, complications and prognosis", "natural history", "complications", "prognosis",
    "diagnostic study of choice", "history and symptoms", "physical examination",
    "laboratory findings", "electrocardiogram", "chest x ray", "x ray", "ct", "mri",
    "echocardiography or ultrasound", "echocardiography", "ultrasound", "other imaging findings",
    "other diagnostic studies", "biopsy", "treatment", "medical therapy", "surgery",
    "interventions", "primary prevention", "secondary prevention", "cost-effectiveness of therapy",
    "future or investigational therapies", "diagnostic criteria", "case study one",
    "case study two", "case study three", "resident survival guide",
)


def microchapter_names(subject: str) -> set[str]:
    """The lower-cased page names WikiDoc uses for the microchapters of `subject`."""
    s = " ".join(subject.lower().split())
    names = set()
    for chapter in MICROCHAPTERS:
        if "{x}" in chapter:
            names.add(chapter.replace("{x}", s))
        else:
            names.add(f"{s} {chapter}")
    return names


def wikidoc_superseded(names: Iterable[str]) -> set[str]:
    """Names to drop because an "X overview" page covers them: only X's known microchapters.

    The original deleted every page whose name merely *started with* X, so "Asthma overview"
    removed "Asthmatic bronchitis" and "Asthma in pregnancy" (sources.md §2.17, defect 9).
    """
    all_names = {" ".join(n.split()): n for n in names}
    lowered = {k.lower(): v for k, v in all_names.items()}
    drop: set[str] = set()
    for key in lowered:
        if key.endswith(" overview"):
            subject = key[: -len(" overview")].strip()
            for chapter in microchapter_names(subject):
                if chapter in lowered and chapter != key:
                    drop.add(lowered[chapter])
    return drop


def wikidoc_overview_title(name: str) -> str:
    """"Asthma overview" → "Asthma" (the overview page stands for its subject)."""
    return re.sub(r"\s+overview\s*$", "", name, flags=re.I).strip() or name
