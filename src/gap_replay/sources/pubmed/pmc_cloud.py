"""PMC full text without a key: the PMC Cloud Service bucket → `raw/papers/pmc/`.

One run: find the newest inventory, stream it into `OUT/work/pubmed/pmc_cloud.sqlite` (highest
version per PMCID), pick the article versions not yet fetched at that version and ETag (resume
and refresh in one SQL join against the done markers in `OUT/state.sqlite`), GET each
article's metadata JSON and JATS XML and write them through the shared ingest (retraction
marks, writers, full-text marks), one shard per batch, then drop the older copies of articles
that got a new version. `PmcCloud` is these steps as the source interface (discover = the
planned rows, fetch = the GETs, extract = the JATS parser). Abstract-only articles go to
`raw/abstracts/pmc/` as with local JATS.

Accounting: every candidate ends as written, skipped (not open access, retracted, licence not
selected), quarantined (bad metadata JSON or JATS, with the object URL) or failed (HTTP error or
MD5 mismatch: recorded in `state.sqlite`, not marked done, retried on the next run).
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

from gap_replay.document import Document
from gap_replay.http import FetchError, HostUnreachable, PoliteClient, RetryPolicy
from gap_replay.io import Quarantine
from gap_replay.sources.ingest import ingest_documents
from gap_replay.sources.pubmed import jats
from gap_replay.sources.pubmed.ids import norm_doi, norm_pmcid, norm_pmid
from gap_replay.sources.pubmed.pmc_inventory import (
    InventoryRow,
    LatestVersions,
    base_url_for,
    key_of_s3_url,
    latest_inventory,
    md5_of,
    object_url,
    parse_metadata,
    read_manifest,
)
from gap_replay.sources.pubmed.supersede import drop_superseded
from gap_replay.state import State

log = logging.getLogger(__name__)

DONE_KIND = "pmc-cloud"
BATCH_SIZE = 1000


def make_client(endpoint_url: str | None = None, base_url: str | None = None,
                rate: float = 10.0) -> PoliteClient:
    """S3 is an API (no robots.txt); anonymous GETs, bounded retries."""
    return PoliteClient(base_url=base_url or base_url_for(endpoint_url), rate=rate,
                        respect_robots=False,
                        retry=RetryPolicy(max_retries=5, backoff=1.0, timeout=120))


def load_inventory(client: PoliteClient, output: Path, versions: LatestVersions) -> dict:
    """Make `versions` hold the newest inventory (downloaded once per stamp, MD5-checked)."""
    stamp = latest_inventory(client)
    if versions.loaded() == stamp:
        return {"inventory": stamp, "articles": versions.count(), "reused": True}
    schema, files = read_manifest(client, stamp)
    folder = output / "downloads" / "pmc_cloud" / "inventory" / stamp
    paths = []
    for f in files:
        dest = folder / f.key.rsplit("/", 1)[-1]
        if not (dest.exists() and (f.md5 is None or md5_of(dest) == f.md5)):
            client.download(object_url(f.key), dest, expected_size=f.size)
            if f.md5 is not None and md5_of(dest) != f.md5:
                dest.unlink()
                raise FetchError(object_url(f.key),
                                 f"inventory file MD5 mismatch (manifest {f.md5})")
        paths.append(dest)
    counts = versions.load(stamp, paths, schema)
    for line in counts["bad_lines"][:20]:
        log.warning("inventory %s: %s", stamp, line)
    return {"inventory": stamp, "articles": counts["articles"], "rows": counts["rows"],
            "bad_lines": len(counts["bad_lines"]), "reused": False}


def plan(versions: LatestVersions, state_path: Path, *, since: str | None,
         limit: int | None) -> int:
    """Fill the `todo` table: latest versions whose done marker is missing or names another
    version/ETag (`replaces` = an earlier one was fetched). Returns the number of rows."""
    db = versions.db
    db.execute("ATTACH DATABASE ? AS st", (str(state_path),))
    try:
        with db:
            db.execute("CREATE TABLE IF NOT EXISTS to_drop (num INTEGER PRIMARY KEY)")
            db.execute("DROP TABLE IF EXISTS todo")
            db.execute("CREATE TABLE todo (num INTEGER PRIMARY KEY, version INTEGER, key TEXT, "
                       "etag TEXT, last_modified TEXT, replaces INTEGER)")
            sql = ("INSERT INTO todo SELECT l.num, l.version, l.key, l.etag, l.last_modified, "
                   "c.value IS NOT NULL FROM latest l LEFT JOIN st.completed c "
                   "ON c.kind = ? AND c.key = 'PMC' || l.num "
                   "WHERE (c.value IS NULL OR c.value != l.version || ':' || l.etag)")
            params: list = [DONE_KIND]
            if since:
                sql += " AND l.last_modified > ?"
                params.append(since)
            sql += " ORDER BY l.num"
            if limit is not None:
                sql += " LIMIT ?"
                params.append(int(limit))
            db.execute(sql, params)
    finally:
        db.execute("DETACH DATABASE st")
    return db.execute("SELECT COUNT(*) FROM todo").fetchone()[0]


def _todo(db: sqlite3.Connection) -> Iterator[InventoryRow]:
    for num, version, key, etag, lm in db.execute(
            "SELECT num, version, key, etag, last_modified FROM todo ORDER BY num"):
        yield InventoryRow(f"PMC{num}", version, key, etag, lm)


def drop_replaced(output: Path, db: sqlite3.Connection) -> int:
    """Drop the copies of the articles in `to_drop` (new versions fetched) that are not the
    current inventory version, from raw/papers and raw/abstracts; then empty `to_drop`. Runs
    after the new copies are written, so a failed fetch never loses the old copy; a crash before
    it leaves `to_drop` filled for the next run."""
    if not db.execute("SELECT 1 FROM to_drop LIMIT 1").fetchone():
        return 0

    def gone(doc: Document) -> bool:
        pmcid = doc.meta.get("pmcid") or ""
        if doc.meta.get("pmc_version") is None or not pmcid[3:].isdigit():
            return False
        row = db.execute("SELECT l.version, l.last_modified FROM to_drop d LEFT JOIN latest l "
                         "ON l.num = d.num WHERE d.num=?", (int(pmcid[3:]),)).fetchone()
        current = (doc.meta["pmc_version"], doc.meta.get("pmc_last_modified"))
        return row is not None and current != row

    removed = drop_superseded(output, "papers", gone) + drop_superseded(output, "abstracts", gone)
    with db:
        db.execute("DELETE FROM to_drop")
    return removed


@dataclass
class Article:
    """One article version as fetched: its inventory row, metadata JSON and JATS XML (`body`
    None when there is nothing to extract: skipped or its metadata quarantined)."""

    row: InventoryRow
    meta: dict | None = None
    body: bytes | None = None
    xml_url: str = ""
    xml_key: str = ""


class PmcCloud:
    """The PMC Cloud Service bucket behind the source interface (sources/base.py).

    discover = the newest inventory (`load_inventory`) planned against the done markers
    (`plan`): the article versions new or changed since the last run, in PMCID order; fetch =
    GET one version's metadata JSON and JATS XML (None when it failed: recorded in
    state.sqlite, retried next run; skipped and quarantined versions are counted); extract =
    the JATS parser (`jats.iter_bytes`, as local JATS) plus the metadata's licence, version
    and ids. Every outcome is counted in `counts`."""

    name = "pmc-cloud"
    source = "papers"

    def __init__(self, client: PoliteClient, output: Path, state: State,
                 versions: LatestVersions, quarantine: Quarantine, *,
                 licenses: frozenset[str] | None, open_access_only: bool,
                 since: str | None = None, limit: int | None = None) -> None:
        self.client = client
        self.output = output
        self.state = state
        self.versions = versions
        self.quarantine = quarantine
        self.licenses = licenses
        self.open_access_only = open_access_only
        self.since, self.limit = since, limit
        self.listing: dict = {}
        self.candidates = 0
        self.counts: Counter = Counter()
        self.failures: list[str] = []

    def discover(self, inputs: Iterable[str] = ()) -> Iterator[InventoryRow]:
        """The inventory is the input (`inputs` unused); rows stream from SQLite, never a list."""
        self.listing = load_inventory(self.client, self.output, self.versions)
        self.candidates = plan(self.versions, self.state.path, since=self.since, limit=self.limit)
        return _todo(self.versions.db)

    def fetch(self, row: InventoryRow) -> Article | None:
        meta_url = object_url(row.key)
        try:
            meta = parse_metadata(self.client.get(meta_url, cache=False).content)
            reason = self._skip_reason(meta, row)
            if reason:
                self.counts[f"skipped_{reason}"] += 1
                return Article(row)
            xml_key, md5 = key_of_s3_url(meta.get("xml_url") or
                                         f"s3://pmc-oa-opendata/{row.pmcid}.{row.version}/"
                                         f"{row.pmcid}.{row.version}.xml")
            xml_url = object_url(xml_key)
            body = self.client.get(xml_url, cache=False).content
            if md5 and hashlib.md5(body).hexdigest() != md5:
                raise FetchError(xml_url, f"MD5 mismatch (metadata says {md5})")
        except HostUnreachable:
            raise  # the whole bucket is out of reach: stop loudly, not one failure per article
        except FetchError as exc:
            self._fail(exc.url, exc.reason, exc.status)
            return None
        except ValueError as exc:  # metadata JSON unusable: bad input, not a network fault
            self.quarantine.add(file=meta_url, line=None, reason=f"PMC Cloud metadata: {exc}",
                                source="papers")
            self.counts["quarantined"] += 1
            return Article(row)
        self.state.clear_failure(meta_url)
        self.state.clear_failure(xml_url)
        return Article(row, meta, body, xml_url, xml_key)

    def extract(self, article: Article, quarantine: Quarantine) -> Iterator[Document]:
        if article.body is None:
            return
        for item in jats.iter_bytes(article.body, article.xml_url):
            if isinstance(item, Exception):
                quarantine.add(file=article.xml_url, line=None, reason=f"JATS: {item}",
                               source="papers")
                self.counts["quarantined"] += 1
            else:
                self.counts["documents"] += 1
                yield _with_cloud_meta(item, article.row, article.meta, article.xml_key)

    def _skip_reason(self, meta: dict, row: InventoryRow) -> str | None:
        pmcid, version = norm_pmcid(meta.get("pmcid")), meta.get("version")
        if pmcid != row.pmcid or str(version) != str(row.version):
            raise ValueError(f"metadata names {pmcid}.{version}, the inventory {row.pmcid}."
                             f"{row.version}")
        if self.open_access_only and meta.get("is_pmc_openaccess") is not True:
            return "not_open_access"
        if meta.get("is_retracted") is True:
            return "retracted"
        if self.licenses is not None and (meta.get("license_code") or "") not in self.licenses:
            return "license_not_selected"
        return None

    def _fail(self, url: str, reason: str, status: int | None) -> None:
        log.error("%s: %s", url, reason)
        self.state.record_failure(url, "papers", reason, status)
        self.counts["failed"] += 1
        self.failures.append(f"{url}: {reason}")


def _with_cloud_meta(doc: Document, row: InventoryRow, meta: dict, xml_key: str) -> Document:
    """Licence, version and ids from the metadata JSON (the XML's licence URL is kept)."""
    m = doc.meta
    m["pmcid"] = row.pmcid
    for name, norm in (("pmid", norm_pmid), ("doi", norm_doi)):
        value = norm(meta.get(name)) if meta.get(name) is not None else None
        if value and not m.get(name):
            m[name] = value
    if str(m.get("license") or "").startswith(("http://", "https://")) and not m.get("license_url"):
        m["license_url"] = m["license"]  # the JATS parser gives license_url itself now
    m["license"] = meta.get("license_code") or m.get("license")
    m["pmc_version"] = row.version
    m["is_manuscript"] = bool(meta.get("is_manuscript"))
    m["pmc_key"] = xml_key
    m["pmc_last_modified"] = row.last_modified
    return doc


def _article(source: PmcCloud, row: InventoryRow, done: list[tuple[str, str]]
             ) -> Iterator[Document]:
    """fetch + extract one row; append (pmcid, marker) to `done` once its documents are out,
    unless the fetch failed (then it waits for the next run)."""
    article = source.fetch(row)
    if article is None:
        return
    yield from source.extract(article, source.quarantine)
    done.append((row.pmcid, f"{row.version}:{row.etag}"))


def _batches(rows: Iterable[InventoryRow], source: PmcCloud,
             pending: dict[str, list[tuple[str, str]]], size: int, progress: Callable | None
             ) -> Iterator[tuple[str, Iterator[Document]]]:
    """(shard name, documents) per `size` articles; the name hashes the batch's keys+ETags so
    a rerun of the same batch rewrites the same shard instead of duplicating it."""
    batch: list[InventoryRow] = []

    def emit(chunk: list[InventoryRow]):
        digest = hashlib.sha1("|".join(f"{r.key}:{r.etag}" for r in chunk).encode()).hexdigest()
        name = f"pmc-cloud-{chunk[0].pmcid}-{digest[:10]}"
        done = pending.setdefault(name, [])
        return name, (d for r in chunk for d in _article(source, r, done))

    for row in (progress(rows) if progress else rows):
        batch.append(row)
        if len(batch) >= size:
            yield emit(batch)
            batch = []
    if batch:
        yield emit(batch)


def fetch_pmc_cloud(output: str | Path, *, endpoint_url: str | None = None,
                    base_url: str | None = None, since: str | None = None,
                    limit: int | None = None, licenses: Iterable[str] | None = None,
                    open_access_only: bool = True, rate: float = 10.0,
                    batch_size: int = BATCH_SIZE, progress: Callable | None = None,
                    client: PoliteClient | None = None) -> dict:
    """List (inventory), fetch (metadata JSON + JATS XML) and ingest new or changed article
    versions. `since`: only inventory rows modified after this ISO date; `limit`: at most N
    article versions this run. Returns the summary (with `problems` when articles failed)."""
    output = Path(output)
    if since is not None and not re.match(r"^\d{4}-\d{2}-\d{2}", since):
        raise ValueError(f"--since must be an ISO date (YYYY-MM-DD...), got {since!r}")
    client = client or make_client(endpoint_url, base_url, rate)
    state = State(output / "state.sqlite")
    versions = LatestVersions(output / "work" / "pubmed" / "pmc_cloud.sqlite")
    try:
        quarantine = Quarantine()
        source = PmcCloud(client, output, state, versions, quarantine,
                          open_access_only=open_access_only, since=since, limit=limit,
                          licenses=frozenset(licenses) if licenses else None)
        rows = source.discover()
        listing, candidates = source.listing, source.candidates
        pending: dict[str, list[tuple[str, str]]] = {}

        def written(name: str) -> None:
            marks = pending.pop(name)
            with state.connect() as db:
                db.executemany("INSERT OR REPLACE INTO completed VALUES (?, ?, ?, strftime('%s'))",
                               [(DONE_KIND, pmcid, value) for pmcid, value in marks])
            with versions.db:
                versions.db.executemany(
                    "INSERT OR IGNORE INTO to_drop SELECT num FROM todo WHERE num=? AND replaces",
                    [(int(pmcid[3:]),) for pmcid, _ in marks])

        batches = _batches(rows, source, pending, batch_size, progress)
        report = ingest_documents(batches, output, on_written=written)
        removed = drop_replaced(output, versions.db)
        if candidates:
            run = f"{listing['inventory']}|{since}|{limit}|{candidates}"
            qname = f"pmc-cloud-{listing['inventory']}-{hashlib.sha1(run.encode()).hexdigest()[:8]}"
            quarantine.flush(output / "quarantine" / f"{qname}.jsonl")
    finally:
        versions.close()
    summary = {**listing, "candidates": candidates, "replaced": removed, **report.to_dict(),
               "failed": 0, **dict(sorted(source.counts.items()))}
    if source.failures:
        summary["problems"] = [
            f"papers: {len(source.failures)} PMC Cloud article(s) failed, first: "
            f"{source.failures[0]}; they are retried on the next run (see state.sqlite failures)"]
    return summary
