"""`gap-replay download` entry point for the replay source."""

from __future__ import annotations

import logging
from typing import Any

from gap_replay.sources import AcquireContext
from gap_replay.sources.replay.sampler import run_sample
from gap_replay.sources.replay.settings import ReplaySettings
from gap_replay.sources.replay.file_task import HTTPSettings

log = logging.getLogger(__name__)

OPTION_KEYS = ("target_tokens", "subsets", "tokenizer", "url_lists", "rate", "missing_subsets")


def acquire(ctx: AcquireContext) -> dict[str, Any]:
    """Sample replay documents into OUT/raw/replay/<subset>/ and return the summary.

    The base URL is `ctx.site_url("redpajama")` (the bundled sample site under --sample, else
    --base-url); `ctx.options` may override target_tokens, subsets, tokenizer, url_lists, rate,
    missing_subsets. The summary carries `plan` (budgets, missing subsets), `notes` (a re-spread
    budget) and `problems` (a subset more than 5% short), which `gap-replay download` reports.
    """
    overrides = {k: ctx.options.get(k) for k in OPTION_KEYS if ctx.options.get(k) is not None}
    settings = ReplaySettings.from_recipe(ctx.recipe, seed=ctx.seed, **overrides)
    base_url = ctx.site_url("redpajama")
    rate = 0.0 if ctx.sample_url else settings.rate  # the local sample server needs no pacing
    http = HTTPSettings(base_url=base_url, rate=rate, max_resumes=settings.max_resumes)
    summary = run_sample(settings, ctx.output, http=http, workers=ctx.workers,
                         executor=ctx.options.get("executor", "local"),
                         address=ctx.options.get("address"))
    log.info("replay: %d documents, ~%d tokens (target %d)", summary["documents"],
             summary["estimated_tokens"], summary["target_tokens"])
    return summary
