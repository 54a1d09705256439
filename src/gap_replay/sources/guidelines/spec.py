"""Guideline source specs: one YAML per source in the top-level `guidelines/` folder.

A spec says *what* to fetch and *how to clean it*; the engine (`scrape.py`) does the rest.
Loading validates every key and names the file and the key path on error, so a broken spec
fails before any request is made. The schema is documented in docs/guidelines.md.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gap_replay.resources import spec_dir
from gap_replay.sources.guidelines.hooks import HOOKS, reads_non_html
from gap_replay.sources.guidelines.selectors import Alternatives

AUDIENCES = ("doctor", "patient", "both")
ARTICLE_FORMATS = ("html", "pdf", "json", "auto")
DISCOVERY_FORMATS = ("html", "json", "sitemap", "pdf_links")


class SpecError(ValueError):
    """A spec file that cannot be used; the message names the file and the key."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        super().__init__(f"{file}: {key}: {message}")
        self.file = str(file)
        self.key = key


# ---------------------------------------------------------------------------------------------
# the schema, as dataclasses with defaults
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pagination:
    """How a listing continues: a next-link selector, or an offset/page query parameter."""

    next: Alternatives = ()          # css selector(s) of the "next page" link (html listings)
    param: str | None = None         # query parameter advanced on each page (offset or page number)
    start: int = 0                   # first value of `param`
    step: int = 1                    # increment of `param` per page
    max_pages: int = 1000            # hard bound: a listing that never ends stops here


@dataclass(frozen=True)
class JsonListing:
    """Where the items of a JSON answer are and how an item becomes an article URL."""

    items: "str | tuple[str, ...]"    # path to the list of items ("value", "data.items")
    url: str                          # template over item fields: "https://x.org/item{ItemDefaultUrl}"
    fields: dict = field(default_factory=dict)   # hint name -> item path
    total: "str | tuple[str, ...] | None" = None   # path to the total count (stops offset paging)
    keep: dict = field(default_factory=dict)   # item path -> regex: keep items whose values match
                                               # all of them (MAGICapp: {language: "^en"})
    script: tuple[str, ...] = ()      # the JSON is the text of this element of an HTML page
                                      # (Next.js sites: "script#__NEXT_DATA__")
    # `items: "$"` is the answer itself (a catalogue that is a bare JSON list).
    # A path is "a.b.0" (a key containing dots, such as "@odata.count", is found as it is) or a
    # list of literal keys (["@odata.count"]).


@dataclass(frozen=True)
class DiscoveryStep:
    """One level of discovery: fetch pages, collect links; the last step's links are articles."""

    urls: tuple[str, ...] = ()       # start URLs: this step begins a chain (the first step always
                                     # does; a later step with urls starts a second listing, e.g.
                                     # CDC's disease A–Z beside its Stacks collection); steps
                                     # without urls follow the previous step's links
    expand: dict[str, tuple[str, ...]] = field(default_factory=dict)   # {name: values} for {name} in urls
    format: str = "html"             # html | json | sitemap | pdf_links
    links: Alternatives = ()         # css selector(s) of the links (html); alternatives in order
    include: tuple[str, ...] = ()    # regexes; a link is kept if it matches any (all kept when empty)
    exclude: tuple[str, ...] = ()    # regexes; a link is dropped if it matches any
    title: str | None = None         # "text": the link text becomes the article's title hint
    title_cut: tuple[str, ...] = ()  # cut the title hint at the first of these markers
    paginate: Pagination | None = None
    json: JsonListing | None = None


@dataclass(frozen=True)
class Sections:
    """Articles split over several pages (tabs, chapters): which links, in which order."""

    links: Alternatives                     # css selector(s) of the section links on the article page
    include_text: tuple[str, ...] = ()      # regexes on the link text; keep matching (all if empty)
    exclude_text: tuple[str, ...] = ()      # regexes on the link text; drop matching
    keep_text: tuple[str, ...] = ()         # regexes that override exclude_text ("Committee discussion")
    skip_first: bool = False                # the first link is the overview itself (NICE)
    strip_numbering: bool = True            # "1 Recommendations" -> "Recommendations"


@dataclass(frozen=True)
class Article:
    """How one article page becomes text."""

    format: str = "html"                      # html | pdf | json (json needs a hook) | auto
    # auto: fetch the link; a PDF answer (Content-Type or %PDF body) is read as a PDF, anything
    # else as an HTML page (following `pdf_link` when the page has one)
    content: tuple[str, ...] = ("main", "article", "body")   # first selector that matches wins
    title: tuple[str, ...] = ("h1", "title")  # css selectors; "hint" = the title from discovery
    title_strip: tuple[str, ...] = ()         # regexes removed from the title
    drop: tuple[str, ...] = ()                # css selectors removed before extraction
    tables: str = "skip"                      # skip | flatten
    start_at: Alternatives = ()               # css selector(s): ignore content before this element
    stop_at_heading: tuple[str, ...] = ()     # regexes on heading text: stop extraction there
    stop_at_text: tuple[str, ...] = ()        # regexes on any block's text: stop extraction there
    strip_numbering: bool = False             # "1.2.3 Text" -> "Text" in headings and paragraphs
    overview: Alternatives = ()               # css selector(s) of the overview/lead paragraph(s)
    sections: Sections | None = None
    pdf_link: Alternatives = ()               # css selector(s) on an html page linking to the PDF
    require_title: bool = False               # no title found -> failure (GuidelineCentral)
    fallback: bool = True                     # content selector matched nothing -> trafilatura;
                                              # False: the page has no guideline (text "", rejected)
    canonical: bool = True                    # honour <link rel=canonical> for the record URL
    drop_query: bool = False                  # drop the query string from article URLs


@dataclass(frozen=True)
class CleanRules:
    """The spec's site rules (site_rules.py, at extraction); the shared text rules run later in
    the `clean` stage, `pdf_bullets` being the one option the spec passes on to them."""

    starters: tuple[str, ...] = ()            # text starts at the first heading matching one
    removers: tuple[str, ...] = ()            # lines starting with one are dropped
    stoppers: tuple[str, ...] = ()            # text ends at the first heading matching one (after the start)
    drop_lines_containing: tuple[str, ...] = ()
    drop_sections: tuple[str, ...] = ()       # regexes on heading text: drop heading + its body
    replace: tuple[tuple[str, str], ...] = ()  # (regex, replacement) applied to the whole text
    reject_if_contains: tuple[str, ...] = ()  # the article is rejected (kept in the state, not in raw)
    reject_if_line_matches: tuple[str, ...] = ()  # regexes; a line matching rejects the article
    min_words_per_line: int = 0               # drop non-heading, non-bullet lines with fewer words
    pdf_bullets: bool = False                 # PDF sub-bullets ("o ", "q ", "", "•") -> "- "
    numbered_bullets: bool = False            # "1. Text" lines -> "- Text"
    drop_title_lines: bool = False            # drop lines that merely repeat the title
    title_heading: bool = False               # start the text with "# Title"
    min_chars: int = 10
    min_lines: int = 0
    min_long_lines: int = 0                   # lines with more than `long_line_words` words
    long_line_words: int = 10


@dataclass(frozen=True)
class Spec:
    tag: str
    name: str
    audience: str
    license: str
    redistributable: bool
    base_url: str
    discovery: tuple[DiscoveryStep, ...]
    article: Article
    clean: CleanRules
    hook: str | None = None
    notes: str = ""
    rate: float | None = None
    path: str = ""
    redirect_hosts: tuple[str, ...] = ()  # other hosts a redirect may lead to (see follows_redirect)

    @property
    def host(self) -> str:
        from urllib.parse import urlsplit
        return urlsplit(self.base_url).netloc

    def follows_redirect(self, first: str, other: str) -> bool:
        """May a redirect from `first` lead to `other` (another host)? Yes within one site
        (www. aside, a host and its subdomains: www.who.int -> iris.who.int) and to the hosts
        listed in `redirect_hosts:`; anything else is recorded as a failure naming both URLs."""
        from urllib.parse import urlsplit

        def bare(url: str) -> str:  # host[:port], as the redirect names it
            return urlsplit(url).netloc.lower().rsplit("@", 1)[-1].removeprefix("www.")

        a, b = bare(first), bare(other)
        return (a == b or a.endswith("." + b) or b.endswith("." + a)
                or b in {h.lower().removeprefix("www.") for h in self.redirect_hosts})


# ---------------------------------------------------------------------------------------------
# loading and validation
# ---------------------------------------------------------------------------------------------
class _Reader:
    """Typed access to one mapping of a spec file; every error names file and key path."""

    def __init__(self, file: str, prefix: str, data: Any) -> None:
        self.file, self.prefix = file, prefix
        if not isinstance(data, dict):
            raise SpecError(file, prefix or "(top level)", f"expected a mapping, got {type(data).__name__}")
        self.data = data
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}" if self.prefix else name

    def error(self, name: str, message: str) -> SpecError:
        return SpecError(self.file, self.key(name), message)

    def raw(self, name: str, default: Any = None) -> Any:
        self.used.add(name)
        return self.data.get(name, default)

    def str(self, name: str, default: Any = ..., choices: tuple[str, ...] | None = None) -> Any:
        value = self.raw(name, None)
        if value is None:
            if default is ...:
                raise self.error(name, "is required")
            return default
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be a non-empty string, got {value!r}")
        if choices and value not in choices:
            raise self.error(name, f"must be one of {', '.join(choices)}; got {value!r}")
        return value

    def bool(self, name: str, default: Any = ...) -> Any:
        value = self.raw(name, None)
        if value is None:
            if default is ...:
                raise self.error(name, "is required (true or false)")
            return default
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {value!r}")
        return value

    def int(self, name: str, default: int) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.error(name, f"must be a non-negative integer, got {value!r}")
        return value

    def number(self, name: str, default: Any = None) -> Any:
        value = self.raw(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise self.error(name, f"must be a positive number, got {value!r}")
        return float(value)

    def strings(self, name: str, regex: bool = False, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        value = self.raw(name, None)
        if value is None:
            return default
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, f"must be a string or a list of strings, got {value!r}")
        if regex:
            for i, pattern in enumerate(value):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise self.error(f"{name}[{i}]", f"invalid regular expression {pattern!r}: {exc}")
        return tuple(value)

    def path(self, name: str, default: Any = ..., value: Any = ...) -> Any:
        """A JSON path: a dotted string, or a list of literal keys (kept as a tuple)."""
        if value is ...:
            value = self.raw(name, None)
        if value is None:
            if default is ...:
                raise self.error(name, "is required")
            return default
        if isinstance(value, str) and value.strip():
            return value
        if (isinstance(value, list) and value
                and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)):
            return tuple(str(v) for v in value)
        raise self.error(name, f"must be a dotted path string or a list of keys, got {value!r}")

    def selector(self, name: str, default: Any = None) -> Any:
        """One CSS selector, or a list of alternatives tried in order (selectors.py): a tuple."""
        value = self.raw(name, None)
        if value is None:
            return default
        if isinstance(value, list):
            if not value:
                raise self.error(name, "a list of selector alternatives must not be empty")
            for i, item in enumerate(value):
                _check_selector(self, f"{name}[{i}]", item)
            return tuple(value)
        _check_selector(self, name, value)
        return (value,)

    def selectors(self, name: str, default: tuple[str, ...] = ()) -> tuple[str, ...]:
        values = self.strings(name, default=default)
        for i, value in enumerate(values):
            if value != "hint":
                _check_selector(self, f"{name}[{i}]", value)
        return values

    def child(self, name: str) -> "_Reader | None":
        value = self.raw(name, None)
        return None if value is None else _Reader(self.file, self.key(name), value)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.error(unknown[0], f"unknown key (allowed here: {', '.join(sorted(self.used))})")


def _check_selector(reader: _Reader, name: str, value: Any) -> None:
    import soupsieve

    if not isinstance(value, str) or not value.strip():
        raise reader.error(name, f"must be a CSS selector string, got {value!r}")
    try:
        soupsieve.compile(value)
    except Exception as exc:  # soupsieve raises SelectorSyntaxError (a subclass of Exception)
        raise reader.error(name, f"invalid CSS selector {value!r}: {exc}") from None


def _expand_values(reader: _Reader, name: str, values: Any) -> tuple[str, ...]:
    """`A-Z` and `998-1043` ranges, or explicit lists; `except:` entries removed."""
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        raise reader.error(name, "must be a range string ('A-Z', '1-10') or a list")
    out: list[str] = []
    for v in values:
        v = str(v)
        m = re.fullmatch(r"([A-Za-z])-([A-Za-z])|(\d+)-(\d+)", v)
        if m and m.group(1):
            out.extend(chr(c) for c in range(ord(m.group(1)), ord(m.group(2)) + 1))
        elif m:
            out.extend(str(i) for i in range(int(m.group(3)), int(m.group(4)) + 1))
        else:
            out.append(v)
    return tuple(out)


def _load_pagination(r: _Reader) -> Pagination:
    p = Pagination(next=r.selector("next", ()), param=r.str("param", None), start=r.int("start", 0),
                   step=r.int("step", 1), max_pages=r.int("max_pages", 1000))
    r.finish()
    if bool(p.next) == bool(p.param):
        raise r.error("next", "give exactly one of `next` (a selector) or `param` (a query parameter)")
    return p


def _load_step(r: _Reader, index: int) -> DiscoveryStep:
    fmt = r.str("format", "html", DISCOVERY_FORMATS)
    urls = r.strings("urls")
    if index == 0 and not urls:
        raise r.error("urls", "the first discovery step needs start URLs")
    expand_raw = r.raw("expand", None) or {}
    if not isinstance(expand_raw, dict):
        raise r.error("expand", "must be a mapping {name: values}")
    expand = {k: _expand_values(r, f"expand.{k}", v) for k, v in expand_raw.items()}
    except_raw = r.raw("expand_except", None) or {}
    for k, v in except_raw.items():
        drop = set(_expand_values(r, f"expand_except.{k}", v))
        expand[k] = tuple(x for x in expand.get(k, ()) if x not in drop)
    pag = r.child("paginate")
    jr = r.child("json")
    listing = None
    if jr is not None:
        fields = jr.raw("fields", None) or {}
        if not isinstance(fields, dict):
            raise jr.error("fields", "must map hint names to item paths")
        fields = {k: jr.path(f"fields.{k}", value=v) for k, v in fields.items()}
        keep = jr.raw("keep", None) or {}
        if not isinstance(keep, dict) or not all(isinstance(v, str) for v in keep.values()):
            raise jr.error("keep", "must map item paths to regular expressions")
        for name, pattern in keep.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise jr.error(f"keep.{name}", f"invalid regular expression {pattern!r}: {exc}")
        listing = JsonListing(items=jr.path("items"), url=jr.str("url"), fields=fields,
                              total=jr.path("total", None), keep=dict(keep),
                              script=jr.selectors("script"))
        jr.finish()
    step = DiscoveryStep(
        urls=urls, expand=expand, format=fmt, links=r.selector("links", ()),
        include=r.strings("include", regex=True), exclude=r.strings("exclude", regex=True),
        title=r.str("title", None, ("text",)), title_cut=r.strings("title_cut"),
        paginate=_load_pagination(pag) if pag else None, json=listing)
    r.finish()
    if fmt == "html" and not step.links:
        raise r.error("links", "an html discovery step needs a `links` selector")
    if fmt == "json" and not step.json:
        raise r.error("json", "a json discovery step needs `json: {items, url}`")
    for name in step.expand:
        if not any("{" + name + "}" in u for u in urls):
            raise r.error(f"expand.{name}", f"no start URL contains {{{name}}}")
    return step


def _load_article(r: _Reader) -> Article:
    sec = r.child("sections")
    sections = None
    if sec is not None:
        sections = Sections(links=sec.selector("links", ()), include_text=sec.strings("include_text", True),
                            exclude_text=sec.strings("exclude_text", True),
                            keep_text=sec.strings("keep_text", True),
                            skip_first=sec.bool("skip_first", False),
                            strip_numbering=sec.bool("strip_numbering", True))
        if not sections.links:
            raise sec.error("links", "is required")
        sec.finish()
    art = Article(
        format=r.str("format", "html", ARTICLE_FORMATS),
        content=r.selectors("content", Article.content),
        title=r.selectors("title", Article.title),
        title_strip=r.strings("title_strip", regex=True),
        drop=r.selectors("drop"),
        tables=r.str("tables", "skip", ("skip", "flatten")),
        start_at=r.selector("start_at", ()),
        stop_at_heading=r.strings("stop_at_heading", regex=True),
        stop_at_text=r.strings("stop_at_text", regex=True),
        strip_numbering=r.bool("strip_numbering", False),
        overview=r.selector("overview", ()),
        sections=sections,
        pdf_link=r.selector("pdf_link", ()),
        require_title=r.bool("require_title", False), fallback=r.bool("fallback", True),
        canonical=r.bool("canonical", True),
        drop_query=r.bool("drop_query", False),
    )
    r.finish()
    return art


def _load_clean(r: _Reader) -> CleanRules:
    replace_raw = r.raw("replace", None) or []
    replace: list[tuple[str, str]] = []
    if not isinstance(replace_raw, list):
        raise r.error("replace", "must be a list of {pattern, with}")
    for i, item in enumerate(replace_raw):
        if not isinstance(item, dict) or set(item) - {"pattern", "with"} or "pattern" not in item:
            raise r.error(f"replace[{i}]", "must be {pattern: REGEX, with: TEXT}")
        try:
            re.compile(item["pattern"])
        except re.error as exc:
            raise r.error(f"replace[{i}].pattern", f"invalid regular expression: {exc}")
        replace.append((item["pattern"], str(item.get("with", ""))))
    rules = CleanRules(
        starters=r.strings("starters"), removers=r.strings("removers"), stoppers=r.strings("stoppers"),
        drop_lines_containing=r.strings("drop_lines_containing"),
        drop_sections=r.strings("drop_sections", regex=True), replace=tuple(replace),
        reject_if_contains=r.strings("reject_if_contains"),
        reject_if_line_matches=r.strings("reject_if_line_matches", regex=True),
        min_words_per_line=r.int("min_words_per_line", 0),
        pdf_bullets=r.bool("pdf_bullets", False), numbered_bullets=r.bool("numbered_bullets", False),
        drop_title_lines=r.bool("drop_title_lines", False), title_heading=r.bool("title_heading", False),
        min_chars=r.int("min_chars", 10), min_lines=r.int("min_lines", 0),
        min_long_lines=r.int("min_long_lines", 0), long_line_words=r.int("long_line_words", 10),
    )
    r.finish()
    return rules


def _hosts(r: _Reader) -> tuple[str, ...]:
    hosts = r.raw("redirect_hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h and "/" not in h for h in hosts):
        raise r.error("redirect_hosts", "must be a list of host names, e.g. [iris.who.int]")
    return tuple(hosts)


def parse_spec(data: Any, file: str | Path) -> Spec:
    """Validate one spec mapping; `file` is only used in error messages."""
    file = str(file)
    r = _Reader(file, "", data)
    tag = r.str("tag")
    if not re.fullmatch(r"[a-z][a-z0-9_]*", tag):
        raise r.error("tag", f"must be lower-case letters, digits and _; got {tag!r}")
    stem = Path(file).stem
    if stem not in ("<string>", tag) and Path(file).suffix in (".yaml", ".yml"):
        raise r.error("tag", f"{tag!r} does not match the file name {Path(file).name!r}")
    base_url = r.str("base_url")
    if not re.match(r"https?://[^/]+", base_url):
        raise r.error("base_url", f"must be an http(s) URL, got {base_url!r}")
    steps_raw = r.raw("discovery", None)
    if not isinstance(steps_raw, list) or not steps_raw:
        raise r.error("discovery", "must be a non-empty list of steps")
    steps = tuple(_load_step(_Reader(file, f"discovery[{i}]", s), i) for i, s in enumerate(steps_raw))
    art_r = r.child("article")
    article = _load_article(art_r) if art_r else Article()
    clean_r = r.child("clean")
    rules = _load_clean(clean_r) if clean_r else CleanRules()
    hook = r.str("hook", None)
    spec = Spec(tag=tag, name=r.str("name"), audience=r.str("audience", choices=AUDIENCES),
                license=r.str("license"), redistributable=r.bool("redistributable"),
                base_url=base_url, discovery=steps, article=article, clean=rules, hook=hook,
                notes=r.str("notes", ""), rate=r.number("rate"), path=file,
                redirect_hosts=_hosts(r))
    r.finish()
    if hook is not None and hook not in HOOKS:
        raise r.error("hook", f"unknown hook {hook!r}; known: {', '.join(sorted(HOOKS)) or 'none'}")
    if article.format == "json":
        if hook is None or not reads_non_html(hook):
            raise SpecError(file, "article.format",
                            "json articles need a `hook` with to_html() that turns them into HTML")
    return spec


def load_spec(path: str | Path) -> Spec:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "(yaml)"
        raise SpecError(path, where, f"invalid YAML: {exc}") from None
    return parse_spec(data, path)


def specs_folder() -> Path:
    return spec_dir("guidelines")


def load_specs(folder: str | Path | None = None) -> dict[str, Spec]:
    """All specs in `folder` (default: the installed/checkout `guidelines/`), by tag, sorted."""
    folder = Path(folder) if folder else specs_folder()
    specs = {}
    for path in sorted(folder.glob("*.yaml")):
        spec = load_spec(path)
        specs[spec.tag] = spec
    return specs


def get_spec(tag: str, folder: str | Path | None = None) -> Spec:
    folder = Path(folder) if folder else specs_folder()
    path = folder / f"{tag}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise KeyError(f"no guideline spec {tag!r} in {folder} (known: {known})")
    return load_spec(path)
