"""`gap-replay download`'s guidelines part: scrape every source that has a spec."""

from __future__ import annotations

import logging

from gap_replay.sources import AcquireContext
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_source
from gap_replay.sources.guidelines.spec import load_specs

log = logging.getLogger(__name__)


def acquire(ctx: AcquireContext) -> dict:
    """Scrape each source into OUT/raw/guidelines/<tag>/; with `ctx.sample_url` every site is
    served by the sample server at `ctx.site_url(tag)` (rate limit off: it is local).

    Options (ctx.options): `guideline_sources` (list of tags, default all), `rate`, `limit`,
    `refresh`. Returns {tag: summary} plus totals; a source that fails entirely is reported,
    not raised, so one broken site does not stop the download.
    """
    specs = load_specs()
    wanted = ctx.options.get("guideline_sources") or list(specs)
    unknown = sorted(set(wanted) - set(specs))
    if unknown:
        raise ValueError(f"unknown guideline sources: {', '.join(unknown)} (known: {', '.join(specs)})")
    summary: dict = {"sources": {}, "records": 0, "failed": 0}
    for tag in wanted:
        base_url = ctx.site_url(tag)
        rate = ctx.options.get("rate", 0.0 if ctx.sample_url else 1.0)
        options = ScrapeOptions(base_url=base_url, rate=rate, limit=ctx.options.get("limit"),
                                refresh=bool(ctx.options.get("refresh", False)),
                                progress=bool(ctx.options.get("progress", True)))
        try:
            result = scrape_source(specs[tag], ctx.output, options)
        except Exception as exc:  # noqa: BLE001 - reported per source, the others still run
            log.error("guidelines %s failed: %s", tag, exc)
            summary["sources"][tag] = {"error": str(exc)}
            summary["failed"] += 1
            continue
        summary["sources"][tag] = {"records": result.records, "scraped": result.scraped,
                                   "failed": result.failed, "requests": result.requests}
        summary["records"] += result.records
        summary["failed"] += result.failed
    return summary
