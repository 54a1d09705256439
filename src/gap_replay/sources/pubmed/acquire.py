"""Acquirers for `gap-replay download` (abstracts, papers) and the `pubmed` CLI commands.

Route (documented in docs/pubmed.md): with a Semantic Scholar API key (`S2_API_KEY`, or
`options["api_key"]`/`options["api_key_file"]`) the S2 datasets are used (papers metadata index
→ s2orc full text, abstracts); without one, the keyless path (PMC full text from the PMC
Cloud Service bucket `pmc-oa-opendata`, PubMed baseline MEDLINE from the NCBI file server).
`options["pubmed_route"]` = `s2` | `ncbi` | `both` overrides it; the bundled sample runs
`both` so each format is exercised through the real clients.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from gap_replay.http import PoliteClient, RetryPolicy
from gap_replay.io import Quarantine
from gap_replay.sources import AcquireContext
from gap_replay.sources.pubmed import ncbi
from gap_replay.sources.ingest import run_ingest
from gap_replay.sources.pubmed.ingest import FORMAT_SOURCE, Context, PubMedFiles, papers_index_path
from gap_replay.sources.pubmed.joins import PaperIndex
from gap_replay.sources.pubmed.s2api import (
    S2Datasets,
    S2Error,
    file_key,
    load_api_key,
    stream_filtered,
)
from gap_replay.sources.pubmed.s2records import external_ids, is_pubmed_row
from gap_replay.sources.ledger import Ledger
from gap_replay.sources.pubmed.supersede import drop_superseded
from gap_replay.state import State

log = logging.getLogger(__name__)

SAMPLE_KEY = "sample-key-not-secret"
FORMAT_OF = {"papers": "s2-papers", "s2orc": "s2orc", "s2orc_v2": "s2orc",
             "abstracts": "s2-abstracts"}
# Keyed S2 API requests per second: clients report 429s at ~1.3 s spacing and success at ~3 s
# (docs/pubmed.md), so one request every 3 s; `options["s2_rate"]` / `--rate` change it.
S2_KEYED_RATE = 1 / 3


def _client(base_url: str | None, rate: float, retry: RetryPolicy | None = None,
            sleep: Callable[[float], None] | None = None, robots: bool = False) -> PoliteClient:
    """S2 is an API (no robots.txt); the NCBI file server is crawled politely (robots=True)."""
    kwargs = {"sleep": sleep} if sleep else {}
    return PoliteClient(base_url=base_url, rate=rate, respect_robots=robots,
                        retry=retry or RetryPolicy(max_retries=5, backoff=1.0, timeout=120), **kwargs)


@dataclass(frozen=True)
class S2File:
    """One file of a listing: where it streams from and to, and its `s2-file` resume key in
    state.sqlite (None for a diff's files, streamed again by every refresh)."""

    url: str
    dest: Path
    key: str | None = None
    keep_all: bool = False  # a diff's delete_files: every row (their ids are what goes)


class S2Dataset(PubMedFiles):
    """One S2 dataset of one release behind the source interface (sources/base.py).

    discover = the files the release lists for the dataset (with `since`: the update and
    delete files of the diffs since that release); fetch = stream one to a local .jsonl.gz,
    keeping only the PubMed rows (`stream_filtered`; a listed file already done in
    state.sqlite is not fetched again; what the filter drops goes into the ledger here);
    extract = the format's parser (PubMedFiles). `ctx` may be None where only discover and
    fetch are used (refresh ingests the fetched updates as local files)."""

    def __init__(self, ctx: Context | None, api: S2Datasets, dataset: str, release: str,
                 output: Path, quarantine: Quarantine, *, since: str | None = None) -> None:
        super().__init__(FORMAT_OF[dataset], ctx)
        self.api, self.dataset, self.release, self.since = api, dataset, release, since
        self.output = output
        self.quarantine = quarantine  # what the download filter refuses (s2-<dataset>-...)
        self.state = State(output / "state.sqlite")
        self.keep = _keep_rule(output, dataset)
        self.totals = {"files": 0, "rows": 0, "kept": 0, "bytes": 0}

    def discover(self, inputs: Iterable[str] = ()) -> list[S2File]:
        """The release's listing is the input (`inputs` unused)."""
        if self.since is None:
            folder = self.output / "downloads" / "s2" / self.release / self.dataset
            files = [S2File(url, folder / f"{self.dataset}_{i:04d}.jsonl.gz",
                            key=f"{self.release}/{self.dataset}/{file_key(url)}")
                     for i, url in enumerate(self.api.list_files(self.dataset, self.release))]
            self.totals["files"] = len(files)
            return files
        folder = self.output / "downloads" / "s2" / f"diff-{self.since}-{self.release}" / self.dataset
        return [S2File(url, folder / f"{d_no:03d}-{kind}-{i:04d}.jsonl.gz",
                       keep_all=kind == "delete_files")
                for d_no, diff in enumerate(self.api.diffs(self.dataset, self.since, self.release))
                for kind in ("delete_files", "update_files")
                for i, url in enumerate(diff.get(kind) or [])]

    def fetch(self, item: S2File) -> Path:
        if item.key is None:  # a diff file
            stream_filtered(self.api.client, item.url, item.dest,
                            (lambda row: True) if item.keep_all else self.keep, self.quarantine)
            return item.dest
        if item.dest.exists() and self.state.done("s2-file", item.key) is not None:
            return item.dest

        def relist() -> str:
            """A fresh link for the same file (a pre-signed link expired)."""
            fresh = self.discover()
            same = [f.url for f in fresh if f.key == item.key]
            return same[0] if same else [f.url for f in fresh if f.dest == item.dest][0]

        quarantined_before = len(self.quarantine)
        counts = stream_filtered(self.api.client, item.url, item.dest, self.keep, self.quarantine,
                                 relist=relist, source=self.source)
        for k in ("rows", "kept", "bytes"):
            self.totals[k] += counts[k]
        # rows the download filter dropped never reach ingest: the ledger counts them here
        quarantined = len(self.quarantine) - quarantined_before
        with Ledger(self.output) as ledger:
            ledger.input_counts(f"s2-download-{item.key}", self.source, quarantined=quarantined,
                                dropped={"not_pubmed": counts["rows"] - counts["kept"] - quarantined})
        self.state.mark_done("s2-file", item.key, str(counts["kept"]))
        return item.dest


def download_dataset(output: str | os.PathLike, dataset: str, *, api_key: str | None,
                     base_url: str | None = None, release: str = "latest",
                     recipe: dict | None = None, client: PoliteClient | None = None,
                     progress: Callable | None = None, rate: float = S2_KEYED_RATE) -> dict:
    """List, stream-filter (PubMed only) and ingest one S2 dataset of one release (S2Dataset
    through the shared driver). The name is checked against the release's dataset list;
    `s2orc`/`s2orc_v2` mean the full text under whichever name the release uses."""
    output = Path(output)
    if not api_key:
        raise S2Error("the Semantic Scholar datasets API needs a key: set S2_API_KEY or pass "
                      "--api-key-file (or use `gap-replay pubmed fetch-oa/fetch-baseline`)")
    client = client or _client(base_url, rate=rate)
    api = S2Datasets(client, api_key)
    if release == "latest":
        release = api.latest_release()
    dataset = api.resolve_dataset(dataset, release)
    if dataset == "abstracts" and not papers_index_path(output).exists():
        log.info("abstracts are matched to PubMed through the papers index; fetching papers first")
        download_dataset(output, "papers", api_key=api_key, release=release, recipe=recipe,
                         client=client, progress=progress)
    quarantine = Quarantine()
    fmt = FORMAT_OF[dataset]
    ctx = Context(output, all_records=True, source=FORMAT_SOURCE[fmt])
    source = S2Dataset(ctx, api, dataset, release, output, quarantine)
    report = run_ingest(fmt, (), output, recipe=recipe, progress=progress, source=source,
                        ctx=ctx)
    quarantine.flush(output / "quarantine" / f"s2-{dataset}-{release}.jsonl")
    return {"dataset": dataset, "release": release, **source.totals, **report.to_dict()}


def _keep_rule(output: Path, dataset: str) -> Callable[[dict], bool]:
    if dataset != "abstracts":  # papers, s2orc, s2orc_v2
        return is_pubmed_row
    index = PaperIndex(papers_index_path(output))

    def keep_abstract(row: dict) -> bool:
        ids = external_ids(row)
        return bool(ids["pmcid"]) or index.get(ids["corpusid"]) is not None

    return keep_abstract


def refresh_dataset(output: str | os.PathLike, dataset: str, since: str, *, api_key: str,
                    base_url: str | None = None, release: str = "latest",
                    recipe: dict | None = None, client: PoliteClient | None = None,
                    rate: float = S2_KEYED_RATE) -> dict:
    """Apply the release diffs `since` → `release`: rows of `delete_files` and the older copies
    of `update_files` rows are removed from the raw shards, then the updates are ingested.
    S2Dataset(since=...) discovers and fetches the diff files; the updates are ingested after
    the removal (else their own rows would go too), as local files of the format."""
    output = Path(output)
    client = client or _client(base_url, rate=rate)
    api = S2Datasets(client, api_key)
    dataset = api.resolve_dataset(dataset, release)
    quarantine = Quarantine()
    (output / "work" / "pubmed").mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(output / "work" / "pubmed" / "superseded.sqlite"))
    db.execute("CREATE TABLE IF NOT EXISTS gone (corpusid INTEGER PRIMARY KEY)")
    updates: list[str] = []
    source = S2Dataset(None, api, dataset, release, output, quarantine, since=since)
    for item in source.discover():
        dest = source.fetch(item)
        ids = []
        for doc_row in iter_documents_raw(dest, quarantine):
            cid = external_ids(doc_row)["corpusid"]
            if cid:
                ids.append((int(cid),))
        with db:
            db.executemany("INSERT OR IGNORE INTO gone VALUES (?)", ids)
        if not item.keep_all:
            updates.append(str(dest))

    def gone(doc) -> bool:
        cid = doc.meta.get("corpusid")
        return bool(cid) and db.execute("SELECT 1 FROM gone WHERE corpusid=?",
                                        (int(cid),)).fetchone() is not None

    removed = drop_superseded(output, source.source, gone)
    db.close()
    report = run_ingest(FORMAT_OF[dataset], updates, output, recipe=recipe, all_records=True)
    quarantine.flush(output / "quarantine" / f"s2-diff-{dataset}-{since}-{release}.jsonl")
    return {"dataset": dataset, "removed": removed, **report.to_dict()}


def iter_documents_raw(path: Path, quarantine: Quarantine):
    from gap_replay.io import iter_records

    for _lineno, row in iter_records(path, quarantine, "pubmed"):
        yield row


def fetch_oa(output: str | os.PathLike, *, endpoint_url: str | None = None,
             base_url: str | None = None, since: str | None = None, limit: int | None = None,
             licenses: tuple[str, ...] | None = None, recipe: dict | None = None,
             progress: Callable | None = None, rate: float = 10.0) -> dict:
    """PMC full text from the PMC Cloud Service bucket → `raw/papers/pmc/` (abstract-only
    articles to `raw/abstracts/pmc/`); see `pmc_cloud.fetch_pmc_cloud`. `recipe` is unused
    (the stages read it later) and kept for a uniform call."""
    from gap_replay.sources.pubmed.pmc_cloud import fetch_pmc_cloud

    return fetch_pmc_cloud(output, endpoint_url=endpoint_url, base_url=base_url, since=since,
                           limit=limit, licenses=licenses, progress=progress, rate=rate)


class MedlineBaseline(PubMedFiles):
    """The PubMed baseline (+ update) MEDLINE files of the NCBI file server behind the source
    interface: discover = the listed .xml.gz files (name order, at most `limit`), fetch =
    download one (resume, MD5 where NCBI publishes one, state.sqlite `ncbi-download`; None when
    it failed: recorded there, retried next run), extract = the MEDLINE parser (the driver
    resolves versions across all the fetched files)."""

    def __init__(self, ctx: Context, client: PoliteClient, output: Path, *, updates: bool,
                 limit: int | None) -> None:
        super().__init__("medline", ctx)
        self.client, self.updates, self.limit = client, updates, limit
        self.folder = output / "downloads" / "ncbi" / "pubmed"
        self.state = State(output / "state.sqlite")
        self.md5s: set[str] = set()
        self.listed: list[str] = []
        self.downloaded: list[Path] = []
        self.failed: list[tuple[str, str]] = []

    def discover(self, inputs: Iterable[str] = ()) -> list[str]:
        """The server's listing is the input (`inputs` unused)."""
        self.listed, self.md5s = ncbi.baseline_urls(self.client, updates=self.updates,
                                                    limit=self.limit)
        return self.listed

    def fetch(self, item: str) -> Path | None:
        done, failed = ncbi.download_listed(self.client, [item], self.folder, self.state,
                                            md5_available=self.md5s)
        self.downloaded += done
        self.failed += failed
        return done[0] if done else None


def fetch_baseline(output: str | os.PathLike, *, base_url: str | None = None,
                   updates: bool = True, limit: int | None = None, recipe: dict | None = None,
                   progress: Callable | None = None, rate: float = 3.0) -> dict:
    """PubMed baseline (+ update) MEDLINE files → `raw/abstracts/pubmed/` (MedlineBaseline
    through the shared driver)."""
    output = Path(output)
    client = _client(base_url, rate=rate, robots=True)
    ctx = Context(output, source=FORMAT_SOURCE["medline"])
    source = MedlineBaseline(ctx, client, output, updates=updates, limit=limit)
    report = run_ingest("medline", (), output, recipe=recipe, progress=progress, source=source,
                        ctx=ctx)
    return {"listed": len(source.listed), "downloaded": len(source.downloaded),
            "failed": len(source.failed), **report.to_dict()}


# -- acquirers ---------------------------------------------------------------------------------

def _route(ctx: AcquireContext) -> tuple[str, str | None]:
    key = ctx.options.get("api_key") or load_api_key(ctx.options.get("api_key_file"))
    route = ctx.options.get("pubmed_route")
    if ctx.sample_url:
        return route or "both", key or SAMPLE_KEY
    return route or ("s2" if key else "ncbi"), key


def _rates(ctx: AcquireContext) -> tuple[float, float]:
    """(S2, NCBI) requests per second: the services' limits (S2: `options["s2_rate"]`, default
    one keyed request every 3 s), none for the local sample."""
    if ctx.sample_url:
        return 0.0, 0.0
    return float(ctx.options.get("s2_rate") or S2_KEYED_RATE), 3.0


def acquire_papers(ctx: AcquireContext) -> dict:
    route, key = _route(ctx)
    s2_rate, ncbi_rate = _rates(ctx)
    out: dict = {"route": route}
    if route in ("s2", "both"):
        base = ctx.site_url("s2api")
        out["s2_papers"] = download_dataset(ctx.output, "papers", api_key=key, base_url=base,
                                            recipe=ctx.recipe, rate=s2_rate)
        # the full text under the release's name for it (s2orc_v2, or s2orc on old releases)
        out["s2orc"] = download_dataset(ctx.output, "s2orc_v2", api_key=key, base_url=base,
                                        recipe=ctx.recipe, rate=s2_rate)
    if route in ("ncbi", "both"):
        # the PMC Cloud bucket: path-style under the sample root, else the public bucket
        # (or `options["pmc_endpoint_url"]`, an S3 endpoint such as a MinIO mirror; or the
        # run's --base-url, which rewrites every URL)
        endpoint = ctx.sample_url or ctx.options.get("pmc_endpoint_url")
        pmc = fetch_oa(ctx.output, endpoint_url=endpoint,
                       base_url=None if ctx.sample_url else ctx.base_url,
                       limit=ctx.options.get("oa_limit"), since=ctx.options.get("pmc_since"),
                       rate=0.0 if ctx.sample_url else 10.0)
        if pmc.get("problems"):
            out["problems"] = out.get("problems", []) + pmc.pop("problems")
        out["pmc_cloud"] = pmc
    return out


def acquire_abstracts(ctx: AcquireContext) -> dict:
    route, key = _route(ctx)
    s2_rate, ncbi_rate = _rates(ctx)
    out: dict = {"route": route}
    if route in ("s2", "both"):
        out["s2_abstracts"] = download_dataset(ctx.output, "abstracts", api_key=key,
                                               base_url=ctx.site_url("s2api"), recipe=ctx.recipe,
                                               rate=s2_rate)
    if route in ("ncbi", "both"):
        out["medline"] = fetch_baseline(ctx.output, base_url=ctx.site_url("ncbi"),
                                        recipe=ctx.recipe, limit=ctx.options.get("baseline_limit"),
                                        rate=ncbi_rate)
    return out
