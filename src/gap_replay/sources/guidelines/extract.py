"""HTML → markdown-ish text, read from the DOM (never from markdown re-parsed with regexes).

Headings become `#`/`##`/`###` by their tag level, paragraphs are separated by blank lines,
list items become `- ` (indented two spaces per nesting level), tables are skipped or flattened
one row per line, and superscript citation markers are dropped. A heading always starts its own
block, so it can never be glued to the previous line (docs/sources.md §3.3, defect 8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

from gap_replay.sources.guidelines.selectors import Match, select_alternatives
from gap_replay.sources.guidelines.spec import Article

HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
BLOCKS = {"p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote",
          "figure", "figcaption", "form", "fieldset", "address", "center", "details", "summary",
          "dl", "dt", "dd", "pre", "hr", "nav", "body", "html", "ul", "ol", "li", "table"}
INVISIBLE = ("script", "style", "noscript", "template", "svg", "iframe", "button", "input",
             "select", "textarea", "head", "link", "meta")
CITATION_SUP = re.compile(r"^[\s\d,–\-\[\]]+$")
NUMBERING = re.compile(r"^\s*\d+(?:\.\d+)*\.?\s+(?=\S)")
SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2009\u202f]+")


class _Stop(Exception):
    """Raised inside the walk when a stop rule fires."""


@dataclass
class Extracted:
    title: str = ""
    text: str = ""
    overview: str = ""
    language: str = ""
    canonical: str = ""
    pdf_link: str = ""
    pages: int = 0                     # PDF page count (0 for HTML)
    links: list[tuple[str, str]] = field(default_factory=list)
    # which selector alternative matched, by spec key ("content", "title", "pdf_link", ...):
    # 0 = the first (expected) shape, >0 = a fallback; a key is absent when nothing matched
    matched: dict[str, int] = field(default_factory=dict)
    extraction: str = ""               # how the text was got: selector | fallback | pdf (article.py)


def parse_html(body: bytes | str) -> BeautifulSoup:
    """Parse leniently (lxml's HTML parser recovers from malformed markup)."""
    return BeautifulSoup(body, "lxml")


def _clean_inline(text: str) -> str:
    return SPACES.sub(" ", text).strip()


class _Walker:
    def __init__(self, rules: Article, start: Tag | None) -> None:
        self.rules = rules
        self.start = start
        self.started = start is None
        self.blocks: list[tuple[str, str]] = []   # (kind, text): kind = h1..h6 | p | li | tr
        self.inline: list[str] = []
        self.stop_heading = [re.compile(p, re.I) for p in rules.stop_at_heading]
        self.stop_text = [re.compile(p, re.I) for p in rules.stop_at_text]

    # -- emission --------------------------------------------------------------------------------
    def flush(self) -> None:
        if self.inline:
            text = _clean_inline("".join(self.inline))
            self.inline = []
            # text on separate <br> lines stays on separate lines of one paragraph
            text = "\n".join(_clean_inline(t) for t in text.split("\n") if _clean_inline(t))
            if text:
                self.emit("p", text)

    def emit(self, kind: str, text: str) -> None:
        if not self.started:
            return
        if self.rules.strip_numbering and kind in ("p", "h1", "h2", "h3", "h4", "h5", "h6"):
            text = NUMBERING.sub("", text)
        if any(p.search(text) for p in self.stop_text):
            raise _Stop
        if kind.startswith("h") and any(p.search(text) for p in self.stop_heading):
            raise _Stop
        self.blocks.append((kind, text))

    # -- the walk --------------------------------------------------------------------------------
    def walk(self, node: Tag, depth: int = 0) -> None:
        for child in node.children:
            if isinstance(child, Comment):
                continue
            if isinstance(child, NavigableString):
                if self.started:
                    self.inline.append(str(child))
                continue
            if not isinstance(child, Tag):
                continue
            self.element(child, depth)

    def text_of(self, node: Tag) -> str:
        parts: list[str] = []
        for piece in node.descendants:
            if isinstance(piece, Comment) or not isinstance(piece, NavigableString):
                if isinstance(piece, Tag) and piece.name == "br":
                    parts.append("\n")
                continue
            parent = piece.parent
            if parent is not None and parent.name == "sup" and CITATION_SUP.match(piece):
                continue
            if any(p.name in INVISIBLE for p in piece.parents if isinstance(p, Tag)):
                continue
            parts.append(str(piece))
        return "\n".join(_clean_inline(t) for t in "".join(parts).split("\n") if _clean_inline(t))

    def element(self, el: Tag, depth: int) -> None:
        name = el.name
        if el is self.start:
            self.flush()
            self.started = True
        if name in INVISIBLE:
            return
        if name == "br":
            self.inline.append("\n")
            return
        if name == "sup" and CITATION_SUP.match(el.get_text()):
            return
        if name in HEADINGS:
            self.flush()
            text = _clean_inline(self.text_of(el).replace("\n", " "))
            if text:
                self.emit(name, text)
            return
        if name == "table":
            self.flush()
            if self.rules.tables == "flatten":
                for row in el.find_all("tr"):
                    cells = [_clean_inline(self.text_of(c).replace("\n", " "))
                             for c in row.find_all(["td", "th"])]
                    cells = [c for c in cells if c]
                    if cells:
                        self.emit("tr", "; ".join(cells))
            return
        if name in ("ul", "ol"):
            self.flush()
            for item in el.find_all("li", recursive=False):
                self.list_item(item, depth)
            return
        if name == "li":  # a stray <li> outside a list
            self.flush()
            self.list_item(el, depth)
            return
        if name in BLOCKS:
            self.flush()
            self.walk(el, depth)
            self.flush()
            return
        # inline element (a, b, em, span, ...): its text joins the current paragraph
        self.walk(el, depth)

    def list_item(self, item: Tag, depth: int) -> None:
        """One `- ` line for the item's own text; nested lists follow, indented."""
        if item is self.start or (not self.started and self.start is not None
                                  and item.find(lambda t: t is self.start)):
            self.started = True
        nested = [c for c in item.find_all(["ul", "ol"], recursive=False)]
        for sub in nested:
            sub.extract()
        text = _clean_inline(self.text_of(item).replace("\n", " "))
        if text:
            self.emit(f"li{depth}", text)
        for sub in nested:
            for child in sub.find_all("li", recursive=False):
                self.list_item(child, depth + 1)


def render_blocks(blocks: list[tuple[str, str]]) -> str:
    """Blocks → text: blank line between blocks, list items and table rows kept together."""
    out: list[str] = []
    prev = ""
    for kind, text in blocks:
        if kind.startswith("li"):
            line = "  " * int(kind[2:] or 0) + "- " + text
            sep = "\n" if prev.startswith("li") else "\n\n"
        elif kind == "tr":
            line = text
            sep = "\n" if prev == "tr" else "\n\n"
        elif kind in HEADINGS:
            line = "#" * HEADINGS[kind] + " " + text
            sep = "\n\n"
        else:
            line, sep = text, "\n\n"
        out.append((sep if out else "") + line)
        prev = kind
    return "".join(out).strip()


def select_first(soup: BeautifulSoup | Tag, selectors: tuple[str, ...]) -> Tag | None:
    match = select_alternatives(soup, selectors)
    return match.first if match else None


def _has_text(el: Tag) -> bool:
    return bool(_clean_inline(el.get_text(" ")))


def _has_href(el: Tag) -> bool:
    return bool((el.get("href") or "").strip())


def match_title(soup: BeautifulSoup, rules: Article, hint: str = "") -> tuple[str, int | None]:
    """The title and the index of the `title` alternative that gave it ("hint" counts too)."""
    for index, sel in enumerate(rules.title):
        if sel == "hint":
            if hint:
                return _strip_title(hint, rules), index
            continue
        found = soup.select_one(sel)
        if found is not None and _has_text(found):
            return _strip_title(_clean_inline(found.get_text(" ")), rules), index
    return "", None


def _strip_title(title: str, rules: Article) -> str:
    for pattern in rules.title_strip:
        title = re.sub(pattern, "", title).strip()
    return title


def extract_title(soup: BeautifulSoup, rules: Article, hint: str = "") -> str:
    return match_title(soup, rules, hint)[0]


def extract_content(soup: BeautifulSoup, rules: Article,
                    matched: dict[str, int] | None = None) -> str:
    """The content root's text; empty when no content selector matches.

    `matched`, when given, receives the index of the `content` (and `start_at`) alternative used.
    """
    found = select_alternatives(soup, rules.content)
    if found is None:
        return ""
    root = found.first
    if matched is not None:
        matched["content"] = found.index
    for sel in rules.drop:
        for el in root.select(sel):
            el.decompose()
    start = None
    if rules.start_at:
        start_match = select_alternatives(root, rules.start_at)
        if start_match is not None:
            start = start_match.first
            if matched is not None:
                matched["start_at"] = start_match.index
    walker = _Walker(rules, start)
    try:
        walker.walk(root)
        walker.flush()
    except _Stop:
        walker.inline = []
    return render_blocks(walker.blocks)


def _note(out: Extracted, key: str, match: Match | None) -> Match | None:
    if match is not None:
        out.matched[key] = match.index
    return match


def extract_page(body: bytes | str, url: str, rules: Article, hint_title: str = "") -> Extracted:
    """Title, overview, PDF link, section links and content of one page; `out.matched` says
    which selector alternative each came from."""
    soup = parse_html(body)
    out = Extracted()
    html_tag = soup.find("html")
    if isinstance(html_tag, Tag):
        out.language = (html_tag.get("lang") or html_tag.get("xml:lang") or "").strip().lower()
    canon = soup.find("link", rel="canonical")
    if isinstance(canon, Tag) and canon.get("href"):
        out.canonical = urljoin(url, canon["href"].strip())
    out.title, title_index = match_title(soup, rules, hint_title)
    if title_index is not None:
        out.matched["title"] = title_index
    overview = _note(out, "overview", select_alternatives(soup, rules.overview, _has_text))
    if overview:
        out.overview = " ".join(_clean_inline(e.get_text(" ")) for e in overview.elements)
    link = _note(out, "pdf_link", select_alternatives(soup, rules.pdf_link, _has_href))
    if link:
        out.pdf_link = urljoin(url, link.first["href"].strip())
    if rules.sections:
        found = _note(out, "sections.links",
                      select_alternatives(soup, rules.sections.links, _has_href))
        for a in found.elements if found else ():
            out.links.append((urljoin(url, a["href"].strip()), _clean_inline(a.get_text(" "))))
    out.text = extract_content(soup, rules, out.matched)
    return out
