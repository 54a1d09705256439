"""`guidelines check`: a few requests per source to say, before a long scrape, which work today.

Per source: robots.txt (is the host reachable, may we read the listing), the first page of
each discovery step (following the first link that leads on), and one article. The result is
one row: reachable, listing links found, content selector hit, sample title, verdict, and for a
broken source the same one-line diagnosis a scrape would give (drift.diagnose), naming the URL,
the selector or HTTP status and the spec key to change. Nothing is written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass

from gap_replay.http import FetchError, HostUnreachable, PoliteClient, RetryPolicy
from gap_replay.sources.guidelines.article import ArticleReader, Fetcher, extraction_of
from gap_replay.sources.guidelines.discover import Link, expand_urls, with_param
from gap_replay.sources.guidelines.drift import (ObservedDiscoverer, RunCounts, diagnose,
                                                 page_alternatives, spec_file)
from gap_replay.sources.guidelines.hooks import get_hook
from gap_replay.sources.guidelines.spec import DiscoveryStep, Spec

FOLLOW_TRIES = 3   # links of an intermediate step tried until one leads to a page with links


@dataclass
class CheckRow:
    tag: str
    reachable: str = "no"
    listing_links: int = 0
    content: str = "-"        # "hit", "fallback", "pdf", "miss"
    title: str = ""
    verdict: str = "ok"       # ok | note | BROKEN
    diagnosis: str = ""       # the problem line (BROKEN) or the first note

    @property
    def broken(self) -> bool:
        return self.verdict == "BROKEN"


def _first_page(step: DiscoveryStep) -> str | None:
    urls = expand_urls(step)
    if not urls:
        return None
    url = urls[0]
    if step.paginate and step.paginate.param:
        url = with_param(url, step.paginate.param, step.paginate.start)
    return url


def _sample_links(discoverer: ObservedDiscoverer, spec: Spec) -> list[Link]:
    """Article links from the first page of each step of the first chain (a handful of requests)."""
    chain = discoverer.chains()[0]
    start = _first_page(chain[0])
    if start is None:
        return []
    pages = [Link(start)]
    for step in chain:
        links: list[Link] = []
        for page in pages[:FOLLOW_TRIES]:
            result = discoverer._page(step, page.url)
            if result is not None and result[0]:
                links = list(result[0])
                break
        if not links:
            return []
        pages = links
    return pages


def check_source(spec: Spec, base_url: str | None, rate: float = 1.0,
                 retry: RetryPolicy | None = None) -> CheckRow:
    row = CheckRow(spec.tag)
    client = PoliteClient(base_url=base_url, rate=min(rate, spec.rate) if spec.rate and rate else rate,
                          retry=retry or RetryPolicy(max_retries=1, timeout=20))
    counts = RunCounts()
    listing_start = next((u for s in spec.discovery if (u := _first_page(s))), spec.base_url + "/")
    try:
        allowed = client.allowed(listing_start)
    except HostUnreachable as exc:
        row.verdict, row.diagnosis = "BROKEN", _unreachable(spec, exc)
        return row
    row.reachable = "yes" if allowed else "robots.txt forbids"

    failures: list[tuple[str, FetchError]] = []
    discoverer = ObservedDiscoverer(spec, client.get, lambda url, exc: failures.append((url, exc)))
    try:
        links = _sample_links(discoverer, spec)
    except HostUnreachable as exc:
        row.reachable, row.verdict = "no", "BROKEN"
        row.diagnosis = _unreachable(spec, exc)
        return row
    counts.listing_pages = discoverer.pages
    counts.listing_failed = len(failures)
    last = [p for p in discoverer.seen if not p.failed and p.step == len(discoverer.chains()[0]) - 1]
    counts.listing_links = row.listing_links = last[0].links if last else 0
    counts.alternatives_used.update(discoverer.listing_alternatives())

    article_failures: list[tuple[str, str]] = []
    if links:
        counts.articles_fetched = 1
        reader = ArticleReader(spec, Fetcher(client), get_hook(spec.hook))
        try:
            page = reader.read(links[0])
        except FetchError as exc:
            article_failures.append((links[0].url, exc.reason))
            row.content = "miss"
        except Exception as exc:  # noqa: BLE001 - an unreadable page is a finding, not a crash
            article_failures.append((links[0].url, f"unreadable page: {type(exc).__name__}: {exc}"))
            row.content = "miss"
        else:
            extraction = extraction_of(page)
            row.content = {"selector": "hit", "fallback": "fallback", "pdf": "pdf"}[extraction]
            row.title = page.title or links[0].title
            counts.content_hits = int(extraction == "selector" and "content" in page.matched)
            counts.fallback_extractions = int(extraction == "fallback")
            counts.documents = 1
            for key, n in page_alternatives(page).items():
                counts.alternatives_used[key] = counts.alternatives_used.get(key, 0) + n
    counts.articles_failed = len(article_failures)
    counts.alternative_fallbacks = sum(counts.alternatives_used.values())
    verdict = diagnose(spec, counts, discoverer.seen, article_failures, None, complete=False)
    if verdict.problems:
        row.verdict, row.diagnosis = "BROKEN", verdict.problems[0]
    elif verdict.notes:
        row.verdict, row.diagnosis = "note", verdict.notes[0]
    return row


def _unreachable(spec: Spec, exc: FetchError) -> str:
    return (f"{spec.tag}: {exc.reason} — check the network, --base-url, or base_url in "
            f"{spec_file(spec)}")


def format_table(rows: list[CheckRow]) -> list[str]:
    headers = ["source", "reachable", "listing links", "content", "sample title", "verdict"]
    table = [[r.tag, r.reachable, str(r.listing_links), r.content,
              (r.title[:44] + "…") if len(r.title) > 45 else r.title, r.verdict] for r in rows]
    widths = [max(len(h), *(len(t[i]) for t in table)) if table else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(t, widths)).rstrip() for t in table]
    return lines
