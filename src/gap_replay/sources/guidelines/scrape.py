"""The spec-driven scraper: discovery → article pages → extracted text → record → state → shards.

A record's `text` is the page's article as extracted and cut by the spec's site rules
(site_rules.py); the shared text rules run later, in `gap-replay process`'s `clean` stage.
A page the site rules reject stays in the state (so `guidelines clean` can bring it back) and is
counted in the acquisition ledger (`rejected_by_source_rules`) instead of being written to raw.

One `scrape_source(spec, output, options)` call scrapes one source politely through the shared
PoliteClient (per-host rate, robots.txt, retries, SQLite HTTP cache at OUT/cache/http.sqlite).
Records are kept in OUT/state.sqlite as they complete and the shards
OUT/raw/guidelines/<tag>/part-NNNNN.jsonl.gz are rewritten from the state at the end, so:

* a killed run resumes: articles already in the state are not fetched again;
* a URL that still fails is recorded (State.record_failure) and retried on the next run;
* `refresh=True` revalidates every article (ETag → 304); unchanged content keeps its record,
  `fetched_at` included, so the shards come out byte-identical.

Drift (drift.py): every run counts what the spec's selectors hit and ends with a verdict: at
most one problem line per source (listing failed, no links, no documents, fewer than half of the
last good run, content selector matching nothing) in `summary.problems`, notes in `summary.notes`.

Language contract: the scraper never drops a page for its language. It records the page's
declared language (`<html lang>`) in `meta.language` when there is one; the core's language
filter (`gap-replay process`) decides what to keep.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tqdm import tqdm

from gap_replay.document import Document
from gap_replay.errors import is_storage_error
from gap_replay.hashing import content_hash, sha1_id
from gap_replay.http import FetchError, PoliteClient, RetryPolicy
from gap_replay.sources.guidelines.article import ArticleReader, Fetcher, extraction_of
from gap_replay.sources.guidelines.discover import Link, article_key
from gap_replay.sources.guidelines.drift import (ObservedDiscoverer, RunCounts, RunLog, Verdict,
                                                 diagnose, page_alternatives)
from gap_replay.sources.guidelines.extract import Extracted
from gap_replay.sources.guidelines.failures import DEFAULT_GIVE_UP_AFTER, FailureBook, is_permanent
from gap_replay.sources.guidelines.hooks import Hook, get_hook
from gap_replay.sources.guidelines.site_rules import apply_site_rules, clean_options
from gap_replay.sources.guidelines.spec import Spec
from gap_replay.sources.guidelines.store import RecordStore
from gap_replay.sources.ledger import Ledger
from gap_replay.state import State

log = logging.getLogger(__name__)


@dataclass
class ScrapeOptions:
    base_url: str | None = None      # replaces scheme+host of every URL (tests, mirrors, the sample)
    site_urls: dict[str, str] = field(default_factory=dict)   # per-tag base URLs (win over base_url)
    rate: float = 1.0                # requests per second per host (0 = unlimited, for local mirrors)
    limit: int | None = None         # at most this many new articles per source
    refresh: bool = False            # revalidate articles already scraped (conditional GETs)
    retry: RetryPolicy | None = None
    progress: bool = True
    respect_robots: bool = True
    give_up_after: int = DEFAULT_GIVE_UP_AFTER   # runs of 404/410 before a URL is given up (0 = never)


@dataclass
class ScrapeSummary:
    tag: str
    discovered: int = 0
    scraped: int = 0          # new or changed records written this run
    unchanged: int = 0        # refreshed and identical
    skipped: int = 0          # already in the state (resume)
    duplicates: int = 0       # a second URL of an article already scraped
    disallowed: int = 0       # links robots.txt forbids: never fetched, not failures
    rejected: int = 0         # kept in raw with text "" and meta.rejected
    failed: int = 0
    given_up: int = 0         # permanent failures (404/410 for give_up_after runs): not requested
    removed: int = 0          # records no longer listed by the site (full discovery): out of the shards
    restored: int = 0         # removed records listed again
    records: int = 0          # records listed by the site after this run (rejected ones
                              # included: they stay in the state, not in the raw shards)
    requests: int = 0         # network requests (cache hits excluded, 304s included)
    listing_pages: int = 0
    seconds: float = 0.0
    listing_failed: int = 0   # listing pages that could not be read
    failures: list[tuple[str, str]] = field(default_factory=list)
    given_up_urls: list[tuple[str, str]] = field(default_factory=list)
    counts: RunCounts = field(default_factory=RunCounts)   # selector hits and documents (drift.py)
    problems: list[str] = field(default_factory=list)      # at most one line: what broke, what to change
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict:
        return asdict(self)


def output_paths(output: str | os.PathLike, tag: str) -> dict[str, Path]:
    out = Path(output)
    return {"state": out / "state.sqlite", "cache": out / "cache" / "http.sqlite",
            "raw": out / "raw" / "guidelines" / tag}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _same_site(a: str, b: str) -> bool:
    return urlsplit(a).netloc.lower().removeprefix("www.") == urlsplit(b).netloc.lower().removeprefix("www.")


class SourceScraper:
    def __init__(self, spec: Spec, output: str | os.PathLike, options: ScrapeOptions,
                 client: PoliteClient | None = None) -> None:
        self.spec = spec
        self.options = options
        self.output = output
        self.paths = output_paths(output, spec.tag)
        rate = options.rate
        if spec.rate and rate:
            rate = min(rate, spec.rate)
        self.client = client or PoliteClient(base_url=options.site_urls.get(spec.tag, options.base_url),
                                             rate=rate,
                                             cache_path=self.paths["cache"], retry=options.retry,
                                             respect_robots=options.respect_robots,
                                             follow_redirect=spec.follows_redirect)
        self.fetcher = Fetcher(self.client)
        self.state = State(self.paths["state"])
        self.store = RecordStore(self.state, spec.tag)
        self.failures = FailureBook(self.state, spec.tag, options.give_up_after)
        self.hook = get_hook(spec.hook)
        self.reader = ArticleReader(spec, self.fetcher, self.hook)
        self.summary = ScrapeSummary(spec.tag)
        self.counts = self.summary.counts
        self.article_failures: list[tuple[str, str]] = []
        self.listing_failed = 0

    # -- failures --------------------------------------------------------------------------------
    def _fail(self, url: str, exc: FetchError, kind: str = "article") -> None:
        failure = self.failures.record(url, exc, listing=kind != "article")
        self.summary.failed += kind == "article"
        self.summary.failures.append((url, exc.reason))
        if kind == "listing":
            self.listing_failed += 1
            self.summary.listing_failed += 1
        else:
            self.article_failures.append((url, exc.reason))
        limit = self.options.give_up_after
        if is_permanent(exc.status) and limit and kind == "article":
            log.warning("%s: %s failed: %s (permanent, run %d of %d before it is given up)",
                        self.spec.tag, url, exc.reason, failure.attempts, limit)
        else:
            log.warning("%s: %s failed: %s (recorded; retried next run)", self.spec.tag, url, exc.reason)

    def _listing_ok(self, url: str) -> None:
        self.failures.clear(url)

    # -- the run ---------------------------------------------------------------------------------
    def run(self) -> ScrapeSummary:
        started = time.monotonic()
        done = self.store.done_urls()
        aliases = self.store.alias_urls()
        self.this_run: set[str] = set()   # canonical URLs written or confirmed in this run
        self.listing_failed = 0
        retry_first = self.failures.to_retry()
        given_up = {}
        for f in self.failures.given_up():
            given_up[f.url] = f
            given_up[article_key(f.url, self.spec.article.drop_query)] = f

        def fetch_listing(url: str):
            resp = self.fetcher.get(url)
            self._listing_ok(url)
            return resp

        discoverer = ObservedDiscoverer(self.spec, fetch_listing,
                                        lambda u, e: self._fail(u, e, "listing"))
        listed: set[str] = set()   # article keys the site's listing gave in this run

        def discovered():
            for link in discoverer.links():
                listed.add(article_key(link.url, self.spec.article.drop_query))
                yield link

        links = _chain([Link(u) for u in retry_first], discovered())
        complete = False
        seen: set[str] = set()
        bar = tqdm(desc=f"{self.spec.tag}", unit="article", disable=not self.options.progress,
                   leave=False)
        new_count = 0
        try:
            for link in links:
                key = article_key(link.url, self.spec.article.drop_query)
                if key in seen:
                    continue
                seen.add(key)
                self.summary.discovered += 1
                if key in self.this_run or key in done and (not self.options.refresh or key in aliases):
                    self.summary.skipped += 1   # refresh revalidates canonical URLs, not aliases
                    continue
                gone = given_up.get(link.url) or given_up.get(key)
                if gone is not None:   # 404/410 on give_up_after runs: reported, not requested
                    self.summary.given_up += 1
                    self.summary.given_up_urls.append((gone.url, f"{gone.error} on {gone.attempts} runs"))
                    continue
                if self.options.limit is not None and new_count >= self.options.limit:
                    break   # stop listing too: --limit 5 must not walk a 30,000-page index
                if self.options.respect_robots and not self.client.allowed(link.url):
                    self.summary.disallowed += 1
                    log.info("%s: %s is disallowed by robots.txt; skipped", self.spec.tag, link.url)
                    continue
                new_count += 1
                self._article(link, key, done)
                bar.update(1)
            else:
                complete = True
        finally:
            bar.close()
        self.summary.listing_pages = discoverer.pages
        full = complete and self.listing_failed == 0 and self.options.limit is None
        self._track_removals(listed, full)
        written = write_raw(self.hook, self.store, self.paths["raw"], self.output)
        self.summary.records = self.store.count()
        self.summary.requests = self.client.network_requests
        self.summary.seconds = round(time.monotonic() - started, 3)
        finished = _now()
        verdict = self._verdict(discoverer, listed, full, finished)
        self.state.set(f"guidelines/{self.spec.tag}/last_run", json.dumps({
            "finished_at": finished, "records": self.summary.records, "scraped": self.summary.scraped,
            "failed": self.summary.failed, "listing_failed": self.summary.listing_failed,
            "given_up": self.summary.given_up, "removed": self.summary.removed,
            "shards": len(written), "ok": verdict.ok, "problems": verdict.problems}))
        return self.summary

    def _verdict(self, discoverer: ObservedDiscoverer, listed: set[str], full: bool,
                 finished: str) -> Verdict:
        """Count this run's selector hits, judge them against the last good run, log the row."""
        c, s = self.counts, self.summary
        c.listing_pages = discoverer.pages
        c.listing_failed = s.listing_failed
        c.listing_links = len(listed)
        c.articles_failed = len(self.article_failures)
        c.documents = max(0, s.scraped - s.rejected + s.unchanged + s.skipped)
        for key, n in discoverer.listing_alternatives().items():
            c.alternatives_used[key] = c.alternatives_used.get(key, 0) + n
        c.alternative_fallbacks = sum(c.alternatives_used.values())
        runs = RunLog(self.state)
        verdict = diagnose(self.spec, c, discoverer.seen, self.article_failures,
                           runs.previous_documents(self.spec.tag), full)
        if self.options.limit == 0:
            verdict = Verdict(notes=verdict.notes)   # nothing was asked for: nothing to judge
        runs.add(self.spec.tag, finished, c, full, verdict)
        s.problems, s.notes = verdict.problems, verdict.notes
        for line in verdict.problems:
            log.warning("%s", line)
        return verdict

    def _track_removals(self, listed: set[str], full: bool) -> None:
        """Records whose URL the site no longer lists leave the shards (kept in the state).

        Only a full discovery decides that (no --limit, every listing page read); a listing that
        gave nothing at all while records exist looks like a broken or redesigned site, not an
        emptied one, so nothing is removed then either. Listed again → restored, no request.
        """
        aliases = self.store.canonical_of()
        listed_canonical = {aliases.get(k, k) for k in listed}
        removed_before = self.store.removed_urls()
        back = removed_before & listed_canonical
        if back:
            self.store.restore(back)
            self.summary.restored = len(back)
            log.info("%s: %d removed articles are listed again; restored", self.spec.tag, len(back))
        if not full:
            return
        records = self.store.record_urls()
        if not listed_canonical and records:
            log.warning("%s: the listing gave no articles; keeping the %d records (site changed?)",
                        self.spec.tag, len(records))
            return
        gone = records - listed_canonical - removed_before
        if gone:
            self.store.mark_removed(gone, _now())
            self.summary.removed = len(gone)
            log.warning("%s: %d articles are no longer listed by the site; left out of the shards "
                        "(kept in the state)", self.spec.tag, len(gone))

    def _article(self, link: Link, key: str, done: set[str]) -> None:
        try:
            page = self.fetch_article(link)
        except FetchError as exc:
            self._fail(link.url, exc)
            return
        except Exception as exc:  # unreadable page: record it rather than lose it silently
            if is_storage_error(exc):  # a full or read-only output: every page would fail
                raise
            self._fail(link.url, FetchError(link.url, f"unreadable page: {type(exc).__name__}: {exc}"))
            return
        self.failures.clear(link.url)
        canonical = key
        if self.spec.article.canonical and page.canonical and _same_site(page.canonical, link.url):
            canonical = article_key(page.canonical, self.spec.article.drop_query)
        if canonical != key and (canonical in self.this_run or
                                 (canonical in done and not self.options.refresh)):
            self.store.add_alias(key, canonical)
            done.add(key)
            self.summary.duplicates += 1
            return
        doc = self.build_record(link, canonical, page)
        old = self.store.get(canonical)
        if old is not None and old.meta.get("page_hash") == doc.meta.get("page_hash"):
            # Same page: keep its fetch time, so the record only changes if the rules did.
            doc.meta["fetched_at"] = old.meta.get("fetched_at", doc.meta["fetched_at"])
        if old is not None and doc.to_json() == old.to_json():
            if canonical != key:
                self.store.add_alias(key, canonical)
            self.summary.unchanged += 1
            done.update({key, canonical})
            self.this_run.add(canonical)
            return
        self.store.put(doc, aliases=(key,))
        done.update({key, canonical})
        self.this_run.add(canonical)
        self.summary.scraped += 1
        if doc.meta.get("rejected"):
            self.summary.rejected += 1

    # -- one article -----------------------------------------------------------------------------
    def fetch_article(self, link: Link) -> Extracted:
        self.counts.articles_fetched += 1
        page = self.reader.read(link)
        extraction = extraction_of(page)
        if extraction == "selector" and "content" in page.matched:
            self.counts.content_hits += 1
        elif extraction == "fallback":
            self.counts.fallback_extractions += 1
        for key, n in page_alternatives(page).items():
            self.counts.alternatives_used[key] = self.counts.alternatives_used.get(key, 0) + n
        return page

    # -- the record ------------------------------------------------------------------------------
    def build_record(self, link: Link, canonical: str, page: Extracted) -> Document:
        spec = self.spec
        title = page.title or link.title
        raw_text = page.text
        result = apply_site_rules(raw_text, title, spec.clean, self.hook)
        meta: dict[str, Any] = {
            "raw_text": raw_text,
            "overview": page.overview or link.fields.get("overview", ""),
            "fetched_at": _now(),
            "license": spec.license,
            "redistributable": spec.redistributable,
            "page_hash": content_hash(f"{title}\x1f{page.overview}\x1f{raw_text}"),
            "extraction": extraction_of(page),
        }
        if page.language:
            meta["language"] = page.language
        if page.pdf_link:
            meta["pdf_url"] = page.pdf_link
        if page.pages:
            meta["pdf_pages"] = page.pages
        if result.rejected:
            meta["rejected"] = result.rejected
        elif clean_options(spec.clean):
            meta["clean_options"] = clean_options(spec.clean)
        return Document(id=sha1_id("guidelines", spec.tag, canonical), source="guidelines",
                        subset=spec.tag, title=title, url=canonical, text=result.text, meta=meta)


def write_raw(hook: Hook, store: RecordStore, folder: Path, output: str | os.PathLike) -> list[Path]:
    """Run the hook's whole-source step (e.g. WikiDoc's overview/microchapter rule), write the
    raw shards, and count the rejected records (not written) in the acquisition ledger."""
    hook.after_records(store)
    written = store.write_shards(folder)
    with Ledger(output) as ledger:
        ledger.input_counts(f"guidelines/{store.tag}", "guidelines",
                            dropped={"rejected_by_source_rules": store.rejected()})
    return written


def _chain(first: list[Link], rest):
    yield from first
    yield from rest


def scrape_source(spec: Spec, output: str | os.PathLike, options: ScrapeOptions | None = None,
                  client: PoliteClient | None = None) -> ScrapeSummary:
    """Scrape one source into OUT/raw/guidelines/<tag>/ (see the module docstring)."""
    return SourceScraper(spec, output, options or ScrapeOptions(), client).run()


def scrape_sources(specs: list[Spec], output: str | os.PathLike, options: ScrapeOptions,
                   workers: int = 1) -> list[tuple[str, ScrapeSummary | Exception]]:
    """Scrape several sources, `workers` at a time (threads: the work is waiting on sites).

    Each source keeps its own client and per-host rate limit, so different sites are scraped
    side by side while each still sees at most `rate` requests per second. Returns
    (tag, summary or the exception that stopped that source) in the order given; one broken
    source never stops the others. An output folder that cannot be written (read-only, full)
    would fail every source alike: that error is raised once instead (gap_replay.errors).
    """
    from concurrent.futures import ThreadPoolExecutor

    def one(spec: Spec):
        try:
            return spec.tag, scrape_source(spec, output, options)
        except Exception as exc:  # noqa: BLE001 - reported per source
            if is_storage_error(exc):
                raise
            log.error("guidelines %s: scrape failed: %s: %s", spec.tag, type(exc).__name__, exc,
                      exc_info=log.isEnabledFor(logging.DEBUG))
            return spec.tag, exc

    if workers <= 1 or len(specs) <= 1:
        return [one(spec) for spec in specs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="guidelines") as pool:
        return list(pool.map(one, specs))


def reclean_source(spec: Spec, output: str | os.PathLike) -> dict[str, int]:
    """Re-derive `text` from `meta.raw_text` with the current rules, without fetching."""
    paths = output_paths(output, spec.tag)
    state = State(paths["state"])
    store = RecordStore(state, spec.tag)
    hook = get_hook(spec.hook)
    counts: dict = {"records": 0, "changed": 0, "rejected": 0, "removed": {}}
    updates: list[Document] = []
    for doc in store.iter_records(include_removed=True):
        counts["records"] += 1
        result = apply_site_rules(doc.meta.get("raw_text", ""), doc.title, spec.clean, hook)
        for rule, chars in result.removed.items():
            counts["removed"][rule] = counts["removed"].get(rule, 0) + chars
        meta = dict(doc.meta)
        meta.pop("rejected", None)
        meta.pop("clean_options", None)
        if result.rejected:
            meta["rejected"] = result.rejected
            counts["rejected"] += 1
        elif clean_options(spec.clean):
            meta["clean_options"] = clean_options(spec.clean)
        if result.text != doc.text or meta != doc.meta:
            counts["changed"] += 1
            updates.append(Document(doc.id, doc.source, result.text, doc.subset, doc.title, doc.url, meta))
        if len(updates) >= 200:
            for d in updates:
                store.put(d)
            updates = []
    for d in updates:
        store.put(d)
    write_raw(hook, store, paths["raw"], output)
    return counts
