"""HTML → markdown-ish text, read from the DOM (never from markdown re-parsed with regexes).

Headings become `#`/`##`/`###` by their tag level, paragraphs are separated by blank lines,
list items become `- ` (indented two spaces per nesting level), tables are skipped or flattened
one row per line, and superscript citation markers are dropped. A heading always starts its own
block, so it can never be glued to the previous line (sources.md §3.3, defect 8).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urljoin

from bs4 import BeautifulSoup, Comment, NavigableString, Tag

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
    for sel in selectors:
        found = soup.select_one(sel)
        if found is not None:
            return found
    return None


def extract_title(soup: BeautifulSoup, rules: Article, hint: str = "") -> str:
    for sel in rules.title:
        if sel == "hint":
            if hint:
                title = hint
                break
            continue
        found = soup.select_one(sel)
        if found is not None and _clean_inline(found.get_text(" ")):
            title = _clean_inline(found.get_text(" "))
            break
    else:
        return ""
    for pattern in rules.title_strip:
        title = re.sub(pattern, "", title).strip()
    return title


def extract_content(soup: BeautifulSoup, rules: Article) -> str:
    """The content root's text; empty when no content selector matches."""
    root = select_first(soup, rules.content)
    if root is None:
        return ""
    for sel in rules.drop:
        for el in root.select(sel):
            el.decompose()
    start = root.select_one(rules.start_at) if rules.start_at else None
    walker = _Walker(rules, start)
    try:
        walker.walk(root)
        walker.flush()
    except _Stop:
        walker.inline = []
    return render_blocks(walker.blocks)


def extract_page(body: bytes | str, url: str, rules: Article, hint_title: str = "") -> Extracted:
    soup = parse_html(body)
    out = Extracted()
    html_tag = soup.find("html")
    if isinstance(html_tag, Tag):
        out.language = (html_tag.get("lang") or html_tag.get("xml:lang") or "").strip().lower()
    canon = soup.find("link", rel="canonical")
    if isinstance(canon, Tag) and canon.get("href"):
        out.canonical = urljoin(url, canon["href"].strip())
    out.title = extract_title(soup, rules, hint_title)
    if rules.overview:
        out.overview = " ".join(_clean_inline(e.get_text(" ")) for e in soup.select(rules.overview)
                                if _clean_inline(e.get_text(" ")))
    if rules.pdf_link:
        link = soup.select_one(rules.pdf_link)
        if isinstance(link, Tag) and link.get("href"):
            out.pdf_link = urljoin(url, link["href"].strip())
    if rules.sections:
        for a in soup.select(rules.sections.links):
            if a.get("href"):
                out.links.append((urljoin(url, a["href"].strip()), _clean_inline(a.get_text(" "))))
    out.text = extract_content(soup, rules)
    return out
