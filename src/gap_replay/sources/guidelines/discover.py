"""Discovery: a spec's listing steps → article links (canonical, deduplicated, in site order).

Each step fetches pages (the start URLs, or the previous step's links), collects links with a
CSS selector (html), an item template (json), `<loc>` entries (sitemap) or link annotations
(pdf_links), and follows pagination until a page yields nothing new or `max_pages`. A listing
page that fails is recorded in the state (and retried next run); discovery continues.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator
from urllib.parse import urljoin, urlsplit, urlunsplit

from lxml import etree

from gap_replay.http import FetchError
from gap_replay.sources.guidelines.extract import parse_html
from gap_replay.sources.guidelines.selectors import select_alternatives
from gap_replay.sources.guidelines.spec import DiscoveryStep, Spec
from gap_replay.urls import canonical_url

log = logging.getLogger(__name__)

TRACKING = re.compile(r"^(utm_[a-z]+|fbclid|gclid|mc_cid|mc_eid)$", re.I)


@dataclass
class Link:
    url: str
    title: str = ""
    fields: dict[str, str] = field(default_factory=dict)


def article_key(url: str, drop_query: bool = False) -> str:
    """The canonical form of an article URL: lower-case host, no fragment, no trailing slash,
    no tracking parameters (or no query at all with `drop_query`)."""
    parts = urlsplit(canonical_url(url))
    if drop_query:
        query = ""
    else:
        query = "&".join(p for p in parts.query.split("&") if p and not TRACKING.match(p.split("=")[0]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


_MISSING = object()


def _child(data: Any, key: str) -> Any:
    if isinstance(data, dict):
        return data.get(key, _MISSING)
    if isinstance(data, list) and key.isdigit() and int(key) < len(data):
        return data[int(key)]
    return _MISSING


def dotted(data: Any, path: "str | list[str] | tuple[str, ...]") -> Any:
    """A value in nested dicts/lists; None when absent.

    `path` is a list of keys (taken literally: `["@odata.count"]`), or a string split at dots
    (`a.b.0.c`) where a key that itself contains dots wins: `"@odata.count"` finds the key
    `@odata.count` (OData's total) before trying `@odata` → `count`.
    """
    if isinstance(path, (list, tuple)):
        for key in path:
            data = _child(data, str(key))
            if data is _MISSING:
                return None
        return data
    value = _child(data, path)
    if value is not _MISSING:
        return value
    parts = path.split(".")
    for i in range(1, len(parts)):   # longest literal head first: "a.b" before "a"
        head = ".".join(parts[:len(parts) - i])
        child = _child(data, head)
        if child is not _MISSING:
            found = dotted(child, ".".join(parts[len(parts) - i:]))
            if found is not None:
                return found
    return None


def fill_template(template: str, item: dict) -> str | None:
    """`https://x.org{Path}` with values from the item; None if a value is missing."""
    missing = False

    def repl(m: re.Match) -> str:
        nonlocal missing
        value = dotted(item, m.group(1))
        if value is None or value == "":
            missing = True
            return ""
        return str(value)

    out = re.sub(r"\{([^{}]+)\}", repl, template)
    return None if missing else out


def with_param(url: str, name: str, value: int) -> str:
    """Set one query parameter, keeping the others (and their encoding) as they are."""
    parts = urlsplit(url)
    items = [p for p in parts.query.split("&") if p]
    new = f"{name}={value}"
    for i, p in enumerate(items):
        if p.split("=", 1)[0] == name:
            items[i] = new
            break
    else:
        items.append(new)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "&".join(items), parts.fragment))


def expand_urls(step: DiscoveryStep) -> list[str]:
    if not step.expand:
        return list(step.urls)
    names = list(step.expand)
    out = []
    for url in step.urls:
        for combo in itertools.product(*(step.expand[n] for n in names)):
            u = url
            for n, v in zip(names, combo):
                u = u.replace("{" + n + "}", v)
            out.append(u)
    return out


def pdf_link_uris(data: bytes) -> list[str]:
    """URIs of the link annotations of a PDF, in page order (the SPOR link list)."""
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(data))
    uris = []
    for page in reader.pages:
        for annot in page.get("/Annots") or []:
            obj = annot.get_object()
            action = obj.get("/A")
            if action is not None:
                uri = action.get_object().get("/URI")
                if uri:
                    uris.append(str(uri))
    return uris


def _usable_link(a) -> bool:
    href = (a.get("href") or "").strip()
    return bool(href) and not href.startswith(("#", "javascript:", "mailto:"))


SAFE_XML = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class Discoverer:
    """Run a spec's discovery steps with a fetch function; yields article Links lazily."""

    def __init__(self, spec: Spec, fetch: Callable[[str], Any],
                 on_failure: Callable[[str, FetchError], None]) -> None:
        self.spec = spec
        self.fetch = fetch
        self.on_failure = on_failure
        self.pages = 0
        # (spec key, alternative index) -> listing pages where that alternative matched, e.g.
        # ("links", 0): the expected selector; ("links", 1): a fallback (selectors.py)
        self.matched: Counter[tuple[str, int]] = Counter()

    def chains(self) -> list[list[DiscoveryStep]]:
        """The spec's steps cut into chains: a step with start URLs begins a new one."""
        chains: list[list[DiscoveryStep]] = []
        for step in self.spec.discovery:
            if step.urls or not chains:
                chains.append([])
            chains[-1].append(step)
        return chains

    def links(self) -> Iterator[Link]:
        """Article links of every chain in spec order, each article once."""
        seen: set[str] = set()
        for chain in self.chains():
            for link in self._chain_links(chain):
                key = article_key(link.url, self.spec.article.drop_query)
                if key not in seen:
                    seen.add(key)
                    yield link

    def _chain_links(self, steps: list[DiscoveryStep]) -> Iterator[Link]:
        current: list[Link] = [Link(u) for u in expand_urls(steps[0])]
        for i, step in enumerate(steps):
            produced = self._run_step(step, current)
            if i == len(steps) - 1:
                yield from produced
            else:
                nxt: dict[str, Link] = {}
                for link in produced:
                    nxt.setdefault(canonical_url(link.url), link)
                current = list(nxt.values())

    # -- one step ------------------------------------------------------------------------------
    def _run_step(self, step: DiscoveryStep, pages: list[Link]) -> Iterator[Link]:
        for page in pages:
            yield from self._paginate(step, page)

    def _paginate(self, step: DiscoveryStep, page: Link) -> Iterator[Link]:
        pag = step.paginate
        url = page.url
        if pag and pag.param:
            url = with_param(url, pag.param, pag.start)
        visited: set[str] = set()
        seen_links: set[str] = set()
        for n in range(pag.max_pages if pag else 1):
            if url in visited:
                break
            visited.add(url)
            result = self._page(step, url)
            if result is None:
                break  # the failure is recorded; later pages are reached on the next run
            links, next_url, total = result
            new = [l for l in links if l.url not in seen_links]
            for l in new:
                seen_links.add(l.url)
            yield from new
            if not pag:
                break
            if pag.next:
                if not next_url:
                    break
                url = next_url
            else:
                if not new:
                    break
                value = pag.start + (n + 1) * pag.step
                if total is not None and step.format == "json" and value >= total and pag.step > 1:
                    break
                url = with_param(page.url, pag.param, value)
        else:
            if pag:
                log.warning("%s: stopped paginating %s after max_pages=%d", self.spec.tag, page.url,
                            pag.max_pages)

    def _page(self, step: DiscoveryStep, url: str):
        try:
            resp = self.fetch(url)
        except FetchError as exc:
            self.on_failure(url, exc)
            return None
        self.pages += 1
        try:
            if step.format == "html":
                return self._html(step, url, resp.content)
            if step.format == "json":
                return self._json(step, url, resp)
            if step.format == "sitemap":
                return self._sitemap(step, url, resp.content)
            return self._pdf_links(step, resp.content), None, None
        except FetchError as exc:
            self.on_failure(url, exc)
            return None
        except Exception as exc:  # a listing we cannot read: record it, keep going
            self.on_failure(url, FetchError(url, f"unreadable listing: {type(exc).__name__}: {exc}"))
            return None

    def _keep(self, step: DiscoveryStep, url: str) -> bool:
        if not url.startswith(("http://", "https://")):
            return False
        if step.include and not any(re.search(p, url) for p in step.include):
            return False
        return not any(re.search(p, url) for p in step.exclude)

    def _title(self, step: DiscoveryStep, text: str) -> str:
        text = " ".join(text.split())
        for marker in step.title_cut:
            text = text.split(marker, 1)[0].strip()
        return text

    def _html(self, step: DiscoveryStep, url: str, body: bytes):
        soup = parse_html(body)
        links = []
        found = select_alternatives(soup, step.links or ("a",), _usable_link)
        if found is not None:
            self.matched[("links", found.index)] += 1
        for a in found.elements if found else ():
            href = (a.get("href") or "").strip()
            if not href or href.startswith(("#", "javascript:", "mailto:")):
                continue
            absolute = urljoin(url, href)
            if self._keep(step, absolute):
                title = self._title(step, a.get_text(" ")) if step.title == "text" else ""
                links.append(Link(absolute.split("#", 1)[0], title))
        next_url = None
        if step.paginate and step.paginate.next:
            nxt = select_alternatives(soup, step.paginate.next, _usable_link)
            if nxt is not None:
                self.matched[("paginate.next", nxt.index)] += 1
                next_url = urljoin(url, nxt.first["href"].strip())
        return links, next_url, None

    def _json(self, step: DiscoveryStep, url: str, resp):
        listing = step.json
        data = self._json_data(listing, url, resp)
        items = data if listing.items == "$" else dotted(data, listing.items)
        if not isinstance(items, list):
            raise FetchError(url, f"JSON answer has no list at {listing.items!r}")
        links = []
        for item in items:
            if not isinstance(item, dict):
                continue
            if not all(re.search(pattern, str(dotted(item, name) or ""))
                       for name, pattern in listing.keep.items()):
                continue
            target = fill_template(listing.url, item)
            if not target:
                continue
            target = urljoin(url, target)
            if not self._keep(step, target):
                continue
            fields = {}
            for name, path in listing.fields.items():
                value = dotted(item, path)
                if value not in (None, ""):
                    fields[name] = str(value)
            links.append(Link(target, fields.get("title", ""), fields))
        total = dotted(data, listing.total) if listing.total else None
        return links, None, int(total) if isinstance(total, (int, float, str)) and str(total).isdigit() else None

    def _json_data(self, listing, url: str, resp):
        """The JSON answer, or the JSON an HTML page carries in `json.script` (Next.js pages)."""
        try:
            if not listing.script:
                return resp.json()
            found = select_alternatives(parse_html(resp.content), listing.script)
            if found is None:
                raise FetchError(url, "no element matches json.script " + " | ".join(listing.script))
            self.matched[("json.script", found.index)] += 1
            return json.loads(found.first.string or found.first.get_text())
        except ValueError as exc:
            raise FetchError(url, f"invalid JSON answer: {exc}") from exc

    def _sitemap(self, step: DiscoveryStep, url: str, body: bytes):
        root = etree.fromstring(body, SAFE_XML)
        if root.getroottree().docinfo.internalDTD is not None:
            # entities are never resolved (SAFE_XML); a sitemap has no business declaring any
            raise FetchError(url, "sitemap declares a DTD (possible XXE / entity expansion); refused")
        ns = {"s": "http://www.sitemaps.org/schemas/sitemap/0.9"}
        links: list[Link] = []
        if etree.QName(root).localname == "sitemapindex":
            for loc in root.findall(".//s:sitemap/s:loc", ns):
                child = self._page(step, loc.text.strip())
                if child:
                    links.extend(child[0])
            return links, None, None
        for loc in root.findall(".//s:url/s:loc", ns):
            target = (loc.text or "").strip()
            if target and self._keep(step, target):
                links.append(Link(target))
        return links, None, None

    def _pdf_links(self, step: DiscoveryStep, body: bytes) -> list[Link]:
        if not body.lstrip().startswith(b"%PDF"):
            raise ValueError("not a PDF")
        return [Link(u) for u in pdf_link_uris(body) if self._keep(step, u)]
