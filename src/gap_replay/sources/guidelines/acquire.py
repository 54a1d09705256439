"""`gap-replay download`'s guidelines part: scrape every source that has a spec."""

from __future__ import annotations

import logging

from gap_replay.progress import enabled as bars_enabled
from gap_replay.sources import AcquireContext
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_sources
from gap_replay.sources.guidelines.spec import load_specs

log = logging.getLogger(__name__)


def acquire(ctx: AcquireContext) -> dict:
    """Scrape each source into OUT/raw/guidelines/<tag>/; with `ctx.sample_url` every site is
    served by the sample server at `ctx.site_url(tag)` (rate limit off: it is local).

    Options (ctx.options): `guideline_sources` (list of tags, default all), `rate`, `limit`,
    `refresh`. Returns {tag: summary} plus totals; a source that fails entirely is reported,
    not raised, so one broken site does not stop the download. A broken source (drift.py: a
    failed listing, no links, no documents, ...) adds one line to `problems`, which makes
    `gap-replay download` exit 1 after every source ran.
    """
    specs = load_specs()
    wanted = ctx.options.get("guideline_sources") or list(specs)
    unknown = sorted(set(wanted) - set(specs))
    if unknown:
        raise ValueError(f"unknown guideline sources: {', '.join(unknown)} (known: {', '.join(specs)})")
    rate = ctx.options.get("rate", 0.0 if ctx.sample_url else 1.0)
    site_urls = {tag: url for tag in wanted if (url := ctx.site_url(tag))}
    options = ScrapeOptions(site_urls=site_urls, rate=rate, limit=ctx.options.get("limit"),
                            refresh=bool(ctx.options.get("refresh", False)),
                            progress=bool(ctx.options.get("progress", bars_enabled())))
    # Sources run side by side only when each has its own site (never several on one mirror host).
    workers = ctx.workers if ctx.sample_url or not ctx.base_url else 1
    summary: dict = {"sources": {}, "records": 0, "failed": 0, "problems": [], "notes": []}
    for tag, result in scrape_sources([specs[t] for t in wanted], ctx.output, options, workers):
        if isinstance(result, Exception):
            log.error("guidelines %s failed: %s", tag, result)
            summary["sources"][tag] = {"error": str(result)}
            summary["failed"] += 1
            summary["problems"].append(f"{tag}: could not run: {result}")
            continue
        summary["sources"][tag] = {"records": result.records, "scraped": result.scraped,
                                   "failed": result.failed, "listing_failed": result.listing_failed,
                                   "given_up": result.given_up, "removed": result.removed,
                                   "requests": result.requests, "drift": result.counts.to_dict(),
                                   "ok": result.ok}
        summary["records"] += result.records
        summary["failed"] += result.failed
        summary["problems"].extend(result.problems)
        summary["notes"].extend(result.notes)
    return summary
