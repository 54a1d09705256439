"""A small acquirer for the refresh tests: fetch a fixture site's index and its pages with the
project's PoliteClient (HTTP cache at OUT/cache/http.sqlite like the guideline scraper, ETag
revalidation) and write one raw guideline document per page. The refresh calls it like any
source's acquirer."""

from __future__ import annotations

import time
from pathlib import Path

from bs4 import BeautifulSoup

from gap_replay.document import Document
from gap_replay.hashing import sha1_id
from gap_replay.http import FetchError, PoliteClient, RetryPolicy
from gap_replay.io import ShardWriter
from gap_replay.state import State

ORIGIN = "https://pages.example.org"


def acquire(ctx) -> dict:
    client = PoliteClient(base_url=ctx.site_url("pages"), rate=0, cache_path=Path(ctx.output) / "cache" / "http.sqlite",
                          respect_robots=False, retry=RetryPolicy(max_retries=2, backoff=0.2))
    state = State(Path(ctx.output) / "state.sqlite")
    index = BeautifulSoup(client.get_text(f"{ORIGIN}/index.html"), "lxml")
    out = Path(ctx.output) / "raw" / "guidelines" / "pages" / "part-00000.jsonl.gz"
    n = failed = 0
    with ShardWriter(out) as writer:
        for link in index.select("a[href]"):
            url = f"{ORIGIN}/{link['href']}"
            try:
                page = BeautifulSoup(client.get_text(url), "lxml")
            except FetchError as exc:  # recorded and retried next run, like the real scrapers
                state.record_failure(url, "guidelines", exc.reason, exc.status)
                failed += 1
                continue
            state.clear_failure(url)
            text = "\n\n".join(p.get_text(" ", strip=True) for p in page.select("p"))
            writer.write(Document(id=sha1_id("pages", url), source="guidelines", subset="pages",
                                  title=page.title.get_text(strip=True), text=text, url=url,
                                  meta={"fetched_at": time.time(), "license": "CC-BY-4.0",
                                        "redistributable": True, "raw_text": text}))
            n += 1
    return {"pages": n, "failed": failed, "network_requests": client.network_requests}
