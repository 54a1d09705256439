"""Acquirers for `gap-replay download` (abstracts, papers) and the `pubmed` CLI commands.

Route (documented in docs/pubmed.md): with a Semantic Scholar API key (`S2_API_KEY`, or
`options["api_key"]`/`options["api_key_file"]`) the S2 datasets are used (papers metadata index
→ s2orc full text, abstracts); without one, the keyless NCBI path (PMC OA JATS packages,
PubMed baseline MEDLINE). `options["pubmed_route"]` = `s2` | `ncbi` | `both` overrides it; the
bundled sample runs `both` so each format is exercised through the real clients.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from typing import Callable

from gap_replay.http import PoliteClient, RetryPolicy
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.sources import AcquireContext
from gap_replay.sources.pubmed import ncbi
from gap_replay.sources.pubmed.ingest import papers_index_path, run_ingest
from gap_replay.sources.pubmed.joins import PaperIndex
from gap_replay.sources.pubmed.s2api import (
    S2Datasets,
    S2Error,
    file_key,
    load_api_key,
    stream_filtered,
)
from gap_replay.sources.pubmed.s2records import external_ids, is_pubmed_row
from gap_replay.state import State

log = logging.getLogger(__name__)

SAMPLE_KEY = "sample-key-not-secret"
FORMAT_OF = {"papers": "s2-papers", "s2orc": "s2orc", "abstracts": "s2-abstracts"}


def _client(base_url: str | None, rate: float, retry: RetryPolicy | None = None,
            sleep: Callable[[float], None] | None = None, robots: bool = False) -> PoliteClient:
    """S2 is an API (no robots.txt); the NCBI file server is crawled politely (robots=True)."""
    kwargs = {"sleep": sleep} if sleep else {}
    return PoliteClient(base_url=base_url, rate=rate, respect_robots=robots,
                        retry=retry or RetryPolicy(max_retries=5, backoff=1.0, timeout=120), **kwargs)


def download_dataset(output: str | os.PathLike, dataset: str, *, api_key: str | None,
                     base_url: str | None = None, release: str = "latest",
                     recipe: dict | None = None, client: PoliteClient | None = None,
                     progress: Callable | None = None, rate: float = 1.0) -> dict:
    """List, stream-filter (PubMed only) and ingest one S2 dataset of one release."""
    output = Path(output)
    if not api_key:
        raise S2Error("the Semantic Scholar datasets API needs a key: set S2_API_KEY or pass "
                      "--api-key-file (or use `gap-replay pubmed fetch-oa/fetch-baseline`)")
    client = client or _client(base_url, rate=rate)
    api = S2Datasets(client, api_key)
    if release == "latest":
        release = api.latest_release()
    if dataset == "abstracts" and not papers_index_path(output).exists():
        log.info("abstracts are matched to PubMed through the papers index; fetching papers first")
        download_dataset(output, "papers", api_key=api_key, release=release, recipe=recipe,
                         client=client, progress=progress)
    keep = _keep_rule(output, dataset)
    files = api.list_files(dataset, release)
    state = State(output / "state.sqlite")
    quarantine = Quarantine()
    folder = output / "downloads" / "s2" / release / dataset
    written: list[str] = []
    totals = {"files": len(files), "rows": 0, "kept": 0, "bytes": 0}
    for i, url in enumerate(progress(files) if progress else files):
        key = f"{release}/{dataset}/{file_key(url)}"
        dest = folder / f"{dataset}_{i:04d}.jsonl.gz"
        if dest.exists() and state.done("s2-file", key) is not None:
            written.append(str(dest))
            continue

        def relist(i=i, url=url) -> str:
            fresh = api.list_files(dataset, release)
            same = [u for u in fresh if file_key(u) == file_key(url)]
            return same[0] if same else fresh[i]

        counts = stream_filtered(client, url, dest, keep, quarantine, relist=relist,
                                 source="abstracts" if dataset == "abstracts" else "papers")
        for k in ("rows", "kept", "bytes"):
            totals[k] += counts[k]
        state.mark_done("s2-file", key, str(counts["kept"]))
        written.append(str(dest))
    quarantine.flush(output / "quarantine" / f"s2-{dataset}-{release}.jsonl")
    report = run_ingest(FORMAT_OF[dataset], written, output, recipe=recipe, all_records=True)
    return {"dataset": dataset, "release": release, **totals, **report.to_dict()}


def _keep_rule(output: Path, dataset: str) -> Callable[[dict], bool]:
    if dataset in ("papers", "s2orc"):
        return is_pubmed_row
    index = PaperIndex(papers_index_path(output))

    def keep_abstract(row: dict) -> bool:
        ids = external_ids(row)
        return bool(ids["pmcid"]) or index.get(ids["corpusid"]) is not None

    return keep_abstract


def refresh_dataset(output: str | os.PathLike, dataset: str, since: str, *, api_key: str,
                    base_url: str | None = None, release: str = "latest",
                    recipe: dict | None = None, client: PoliteClient | None = None) -> dict:
    """Apply the release diffs `since` → `release`: rows of `delete_files` and the older copies
    of `update_files` rows are removed from the raw shards, then the updates are ingested."""
    output = Path(output)
    client = client or _client(base_url, rate=1.0)
    api = S2Datasets(client, api_key)
    quarantine = Quarantine()
    (output / "work" / "pubmed").mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(output / "work" / "pubmed" / "superseded.sqlite"))
    db.execute("CREATE TABLE IF NOT EXISTS gone (corpusid INTEGER PRIMARY KEY)")
    updates: list[str] = []
    keep = _keep_rule(output, dataset)
    folder = output / "downloads" / "s2" / f"diff-{since}-{release}" / dataset
    for d_no, diff in enumerate(api.diffs(dataset, since, release)):
        for kind in ("delete_files", "update_files"):
            for i, url in enumerate(diff.get(kind) or []):
                dest = folder / f"{d_no:03d}-{kind}-{i:04d}.jsonl.gz"
                rule = (lambda row: True) if kind == "delete_files" else keep
                stream_filtered(client, url, dest, rule, quarantine)
                ids = []
                for doc_row in iter_documents_raw(dest, quarantine):
                    cid = external_ids(doc_row)["corpusid"]
                    if cid:
                        ids.append((int(cid),))
                with db:
                    db.executemany("INSERT OR IGNORE INTO gone VALUES (?)", ids)
                if kind == "update_files":
                    updates.append(str(dest))
    source = "abstracts" if dataset == "abstracts" else "papers"
    removed = _drop_superseded(output, source, db)
    db.close()
    report = run_ingest(FORMAT_OF[dataset], updates, output, recipe=recipe, all_records=True)
    quarantine.flush(output / "quarantine" / f"s2-diff-{dataset}-{since}-{release}.jsonl")
    return {"dataset": dataset, "removed": removed, **report.to_dict()}


def iter_documents_raw(path: Path, quarantine: Quarantine):
    from gap_replay.io import iter_records

    for _lineno, row in iter_records(path, quarantine, "pubmed"):
        yield row


def _drop_superseded(output: Path, source: str, db: sqlite3.Connection) -> int:
    removed = 0
    for shard in list_shards(output / "raw" / source):
        quarantine = Quarantine()
        tmp = shard + ".refresh.jsonl.gz"
        n_drop = 0
        with ShardWriter(tmp) as writer:
            for doc in iter_documents(shard, quarantine, source):
                cid = doc.meta.get("corpusid")
                if cid and db.execute("SELECT 1 FROM gone WHERE corpusid=?", (int(cid),)).fetchone():
                    n_drop += 1
                    continue
                writer.write(doc)
        if n_drop:
            os.replace(tmp, shard)
            removed += n_drop
        else:
            os.unlink(tmp)
    return removed


def fetch_oa(output: str | os.PathLike, *, base_url: str | None = None, subset: str = "oa_comm",
             limit: int | None = None, recipe: dict | None = None,
             progress: Callable | None = None, rate: float = 3.0) -> dict:
    """PMC OA JATS packages → `raw/papers/pmc/` (and abstract-only articles to `raw/abstracts/`)."""
    output = Path(output)
    client = _client(base_url, rate=rate, robots=True)
    urls = ncbi.oa_package_urls(client, subset, limit=limit)
    state = State(output / "state.sqlite")
    files, failed = ncbi.download_listed(client, urls, output / "downloads" / "ncbi" / "pmc_oa" / subset, state,
                                         progress=progress)
    report = run_ingest("jats", [str(f) for f in files], output, recipe=recipe)
    return {"listed": len(urls), "downloaded": len(files), "failed": len(failed), **report.to_dict()}


def fetch_baseline(output: str | os.PathLike, *, base_url: str | None = None,
                   updates: bool = True, limit: int | None = None, recipe: dict | None = None,
                   progress: Callable | None = None, rate: float = 3.0) -> dict:
    """PubMed baseline (+ update) MEDLINE files → `raw/abstracts/pubmed/`."""
    output = Path(output)
    client = _client(base_url, rate=rate, robots=True)
    urls, md5s = ncbi.baseline_urls(client, updates=updates, limit=limit)
    state = State(output / "state.sqlite")
    files, failed = ncbi.download_listed(client, urls, output / "downloads" / "ncbi" / "pubmed", state,
                                         md5_available=md5s, progress=progress)
    report = run_ingest("medline", [str(f) for f in files], output, recipe=recipe)
    return {"listed": len(urls), "downloaded": len(files), "failed": len(failed), **report.to_dict()}


# -- acquirers ---------------------------------------------------------------------------------

def _route(ctx: AcquireContext) -> tuple[str, str | None]:
    key = ctx.options.get("api_key") or load_api_key(ctx.options.get("api_key_file"))
    route = ctx.options.get("pubmed_route")
    if ctx.sample_url:
        return route or "both", key or SAMPLE_KEY
    return route or ("s2" if key else "ncbi"), key


def _rates(ctx: AcquireContext) -> tuple[float, float]:
    """(S2, NCBI) requests per second: the services' limits, none for the local sample."""
    return (0.0, 0.0) if ctx.sample_url else (1.0, 3.0)


def acquire_papers(ctx: AcquireContext) -> dict:
    route, key = _route(ctx)
    s2_rate, ncbi_rate = _rates(ctx)
    out: dict = {"route": route}
    if route in ("s2", "both"):
        base = ctx.site_url("s2api")
        out["s2_papers"] = download_dataset(ctx.output, "papers", api_key=key, base_url=base,
                                            recipe=ctx.recipe, rate=s2_rate)
        out["s2orc"] = download_dataset(ctx.output, "s2orc", api_key=key, base_url=base,
                                        recipe=ctx.recipe, rate=s2_rate)
    if route in ("ncbi", "both"):
        out["pmc_oa"] = fetch_oa(ctx.output, base_url=ctx.site_url("ncbi"), recipe=ctx.recipe,
                                 limit=ctx.options.get("oa_limit"), rate=ncbi_rate)
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
