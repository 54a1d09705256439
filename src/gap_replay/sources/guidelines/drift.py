"""Site drift made loud: what each run of a source saw, and one line saying what broke.

Sites change their markup without notice. A scrape that quietly finds nothing looks like a
success, so every run counts, per source, what its selectors hit (listing pages and links,
articles, content-selector hits, fallback extractions, later selector alternatives used,
documents) into `state.sqlite` (table `guideline_runs`, one row per source and run) and the
scrape summary. `diagnose()` turns the counts into at most ONE problem line per source, naming
the URL, the selector or HTTP status, and the spec key to change; the rest become notes.

A source fails (a problem) when
* a listing page failed (HTTP status or unreadable answer),
* its listing gave no article links (the links selector or include/exclude stopped matching),
* it yielded no documents, or fewer than half of its previous successful complete run's,
* the content selector matched nothing on most pages fetched (the fallback extractor kept the
  documents, but the spec is out of date).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from gap_replay.http import FetchError
from gap_replay.sources.guidelines.discover import Discoverer, expand_urls
from gap_replay.sources.guidelines.extract import Extracted
from gap_replay.sources.guidelines.spec import DiscoveryStep, Spec
from gap_replay.state import State

RUNS_TABLE = """
CREATE TABLE IF NOT EXISTS guideline_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, tag TEXT NOT NULL, finished_at TEXT,
    listing_pages INTEGER, listing_failed INTEGER, listing_links INTEGER,
    articles_fetched INTEGER, articles_failed INTEGER, content_hits INTEGER,
    fallback_extractions INTEGER, alternative_fallbacks INTEGER, documents INTEGER,
    complete INTEGER, ok INTEGER, problems TEXT
)
"""
# Keys whose later alternatives are ordinary preferences, not drift (["hint", "h1", "title"]).
NOT_DRIFT = frozenset({"title"})


def alternatives(value) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value or ())


def spec_file(spec: Spec) -> str:
    """How messages name the spec: guidelines/who.yaml."""
    if spec.path and spec.path.endswith((".yaml", ".yml")):
        p = Path(spec.path)
        return f"{p.parent.name}/{p.name}" if p.parent.name else p.name
    return f"guidelines/{spec.tag}.yaml"


def step_key(spec: Spec, index: int, name: str) -> str:
    """`discovery.links` for a one-step spec, `discovery[1].links` otherwise."""
    return f"discovery.{name}" if len(spec.discovery) == 1 else f"discovery[{index}].{name}"


@dataclass
class ListingPage:
    """One listing page read (or not) in this run."""

    url: str
    step: int
    links: int = 0
    selector_matched: bool = False   # the step's links selector found elements (before filters)
    failed: str = ""                 # the reason, when the page could not be read
    status: int | None = None


@dataclass
class RunCounts:
    listing_pages: int = 0           # listing pages read
    listing_failed: int = 0          # listing pages that failed (after retries)
    listing_links: int = 0           # distinct article links the listing gave
    articles_fetched: int = 0        # article pages requested this run (new, retried, refreshed)
    articles_failed: int = 0
    content_hits: int = 0            # HTML articles whose content selector matched
    fallback_extractions: int = 0    # HTML articles whose text came from the fallback extractor
    alternative_fallbacks: int = 0   # selector matches by a later alternative (index > 0)
    documents: int = 0               # documents the source yields this run (listed and kept)
    alternatives_used: dict[str, int] = field(default_factory=dict)   # "article.pdf_link#2" -> pages

    def to_dict(self) -> dict:
        return asdict(self)


class ObservedDiscoverer(Discoverer):
    """A Discoverer that also records, per listing page, how many links it gave and whether
    the step's links selector matched, so a run can say *which* selector stopped matching."""

    def __init__(self, spec: Spec, fetch: Callable, on_failure: Callable[[str, FetchError], None]):
        super().__init__(spec, fetch, self._failed)
        self._report_failure = on_failure
        self._steps: list[int] = []
        self.seen: list[ListingPage] = []

    def _failed(self, url: str, exc: FetchError) -> None:
        step = self._steps[-1] if self._steps else 0
        self.seen.append(ListingPage(url, step, failed=exc.reason, status=exc.status))
        self._report_failure(url, exc)

    def _links_matched(self) -> int:
        return sum(n for (key, _), n in self.matched.items() if key == "links")

    def _page(self, step: DiscoveryStep, url: str):
        index = next(i for i, s in enumerate(self.spec.discovery) if s is step)
        self._steps.append(index)
        before = self._links_matched()
        try:
            result = super()._page(step, url)
        finally:
            self._steps.pop()
        if result is not None:
            matched = self._links_matched() > before or step.format != "html"
            self.seen.append(ListingPage(url, index, len(result[0]), matched))
        return result

    def listing_alternatives(self) -> dict[str, int]:
        """{"discovery.links#2": pages} for later alternatives that matched on listing pages."""
        return {f"discovery.{key}#{i + 1}": n for (key, i), n in sorted(self.matched.items()) if i > 0}


def page_alternatives(page: Extracted) -> dict[str, int]:
    """{"article.content#2": 1} for the later alternatives this article page used."""
    return {f"article.{key}#{i + 1}": 1 for key, i in sorted(page.matched.items())
            if i > 0 and key not in NOT_DRIFT}


# -- the verdict ---------------------------------------------------------------------------------
@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)   # at most one line
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _article_key_for(reason: str, spec: Spec) -> str:
    """The spec key an article failure points at."""
    if reason.startswith("no title found"):
        return "article.title"
    if reason.startswith("no PDF link") or reason.startswith("not a PDF") or "PDF has no" in reason:
        return "article.pdf_link"
    if reason.startswith("no content found"):
        return "article.content"
    last = len(spec.discovery) - 1
    return f"{step_key(spec, last, 'links')} / {step_key(spec, last, 'include')}"


def _listing_failure_key(spec: Spec, page: ListingPage) -> str:
    step = spec.discovery[page.step]
    if step.urls:
        starts = set(expand_urls(step))
        if page.url in starts or not step.paginate:
            return step_key(spec, page.step, "urls")
        return f"{step_key(spec, page.step, 'urls')} / {step_key(spec, page.step, 'paginate')}"
    if page.step > 0:
        return f"{step_key(spec, page.step - 1, 'links')} / {step_key(spec, page.step - 1, 'include')}"
    return step_key(spec, page.step, "urls")


def _empty_listing_line(spec: Spec, pages: list[ListingPage], fix: str) -> str | None:
    """The first step whose pages were all read and gave no links: its selector, in one line."""
    by_step: dict[int, list[ListingPage]] = {}
    for page in pages:
        if not page.failed:
            by_step.setdefault(page.step, []).append(page)
    for index in sorted(by_step):
        read = by_step[index]
        if any(p.links for p in read):
            continue
        step = spec.discovery[index]
        where = read[0].url + (f" (and {len(read) - 1} more pages)" if len(read) > 1 else "")
        if step.format == "json":
            return (f"{spec.tag}: JSON listing ({step_key(spec, index, 'json')}) gave 0 articles on "
                    f"{where} — {fix.format(key=step_key(spec, index, 'json'))}")
        if step.format == "sitemap":
            key = step_key(spec, index, "include")
            return f"{spec.tag}: sitemap gave 0 article URLs on {where} — {fix.format(key=key)}"
        selector = " | ".join(alternatives(step.links)) or "a"
        if any(p.selector_matched for p in read) and (step.include or step.exclude):
            key = step_key(spec, index, "include")
            return (f"{spec.tag}: selector '{selector}' ({step_key(spec, index, 'links')}) matched "
                    f"but {key}/exclude kept 0 links on {where} — {fix.format(key=key)}")
        key = step_key(spec, index, "links")
        return f"{spec.tag}: selector '{selector}' ({key}) found 0 links on {where} — {fix.format(key=key)}"
    return None


def diagnose(spec: Spec, counts: RunCounts, listing: list[ListingPage],
             article_failures: list[tuple[str, str]], previous: int | None,
             complete: bool) -> Verdict:
    """At most one problem line for the source (the most basic breakage first), plus notes.

    `article_failures`: (url, reason) of articles that failed this run; `previous`: documents of
    the last successful complete run (None: no such run); `complete`: a full discovery (no
    --limit), the only kind whose document count is compared.
    """
    tag, where = spec.tag, spec_file(spec)
    fix_check = "check {key} in " + where
    fix_update = "update it in " + where
    verdict = Verdict()
    failed_pages = [p for p in listing if p.failed]
    lines: list[str] = []
    if failed_pages:
        first = failed_pages[0]
        what = f"returned HTTP {first.status}" if first.status else f"failed ({first.failed})"
        more = f" (and {len(failed_pages) - 1} more listing pages)" if len(failed_pages) > 1 else ""
        fix = ("check the network, then rerun" if "cannot reach " in (first.failed or "")
               else fix_check.format(key=_listing_failure_key(spec, first)))
        lines.append(f"{tag}: listing {first.url} {what}{more} — {fix}")
    if counts.listing_links == 0 and not failed_pages:
        empty = _empty_listing_line(spec, listing, fix_update)
        lines.append(empty or f"{tag}: the listing gave 0 article links — "
                              f"{fix_check.format(key='discovery')}")
    fallback_line = None
    html_pages = counts.content_hits + counts.fallback_extractions
    if counts.fallback_extractions:
        selector = " | ".join(spec.article.content)
        fallback_line = (f"{tag}: content selector '{selector}' (article.content) matched nothing on "
                         f"{counts.fallback_extractions} of {html_pages} pages; their text came from "
                         f"the fallback extractor (meta.extraction: fallback) — update article.content "
                         f"in {where}")
    reasons = Counter(reason for _, reason in article_failures)
    first_failure = None
    if article_failures:
        url, reason = article_failures[0]
        common = reasons.most_common(1)[0][0]
        url = next(u for u, r in article_failures if r == common)
        first_failure = (f"{len(article_failures)} of {counts.articles_fetched} articles failed, "
                         f"e.g. {url}: {common} — {fix_check.format(key=_article_key_for(common, spec))}")
    if counts.documents == 0 and counts.listing_links:
        if first_failure:
            lines.append(f"{tag}: 0 documents: {first_failure}")
        else:
            lines.append(f"{tag}: 0 documents from {counts.listing_links} listed links (all given up, "
                         f"disallowed by robots.txt or rejected by the clean rules) — "
                         f"{fix_check.format(key='clean / discovery')}")
    if complete and previous and counts.documents * 2 < previous and counts.documents:
        last = len(spec.discovery) - 1   # the step whose links are the articles
        keys = f"{step_key(spec, last, 'links')} / {step_key(spec, last, 'include')}"
        cause = first_failure or (f"the listing gave {counts.listing_links} article links — "
                                  f"{fix_check.format(key=keys)}")
        lines.append(f"{tag}: {counts.documents} documents, fewer than half of the previous run's "
                     f"{previous}: {cause}")
    if fallback_line and counts.fallback_extractions * 2 > html_pages:
        lines.append(fallback_line)
    elif fallback_line:
        verdict.notes.append(fallback_line)
    if lines:
        verdict.problems.append(lines[0])
        verdict.notes.extend(f"also: {line}" for line in lines[1:])
    if counts.alternatives_used:
        used = ", ".join(f"{k} on {n} pages" for k, n in sorted(counts.alternatives_used.items()))
        verdict.notes.append(f"{tag}: later selector alternatives matched (another page "
                             f"shape than the first; still handled): {used}")
    return verdict


# -- the run log in state.sqlite ---------------------------------------------------------------
class RunLog:
    """`guideline_runs`: one row per source and run, with its counts and verdict."""

    def __init__(self, state: State) -> None:
        self.state = state
        with state.connect() as db:
            db.execute(RUNS_TABLE)

    def previous_documents(self, tag: str) -> int | None:
        """Documents of the last run that was complete and ok (the baseline for 'fewer than half')."""
        rows = self.state.execute("SELECT documents FROM guideline_runs WHERE tag=? AND ok=1 AND "
                                  "complete=1 ORDER BY id DESC LIMIT 1", (tag,))
        return rows[0][0] if rows else None

    def add(self, tag: str, finished_at: str, counts: RunCounts, complete: bool,
            verdict: Verdict) -> None:
        c = counts
        self.state.execute(
            "INSERT INTO guideline_runs(tag, finished_at, listing_pages, listing_failed, "
            "listing_links, articles_fetched, articles_failed, content_hits, fallback_extractions, "
            "alternative_fallbacks, documents, complete, ok, problems) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tag, finished_at, c.listing_pages, c.listing_failed, c.listing_links, c.articles_fetched,
             c.articles_failed, c.content_hits, c.fallback_extractions, c.alternative_fallbacks,
             c.documents, int(complete), int(verdict.ok), json.dumps(verdict.problems)))

    def runs(self, tag: str) -> list[dict]:
        with self.state.connect() as db:
            cur = db.execute("SELECT * FROM guideline_runs WHERE tag=? ORDER BY id", (tag,))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
