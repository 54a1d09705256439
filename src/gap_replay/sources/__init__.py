"""Acquisition, one package per source family; each exposes `acquire(ctx) -> summary dict`.

`gap-replay download` calls them in order through ACQUIRERS; each writes raw document shards
to `OUT/raw/<source>/[<subset>/]*.jsonl.gz`.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
from dataclasses import dataclass, field
from typing import Any, Callable

log = logging.getLogger(__name__)

ACQUIRERS: dict[str, str] = {
    "guidelines": "gap_replay.sources.guidelines.acquire:acquire",
    "abstracts": "gap_replay.sources.pubmed.acquire:acquire_abstracts",
    "papers": "gap_replay.sources.pubmed.acquire:acquire_papers",
    "replay": "gap_replay.sources.replay.acquire:acquire",
}


class AcquireError(RuntimeError):
    """A source could not be acquired (the message names the source and the URL or file)."""


@dataclass
class AcquireContext:
    """What an acquirer needs: where to write, the recipe, and where the sites are.

    With `sample_url` set (the bundled sample server's root), site `x` is at `{sample_url}/x`
    and acquirers use it as their `--base-url`.
    """

    output: str
    recipe: dict[str, Any]
    seed: int = 0
    workers: int = 1
    sample_url: str | None = None
    base_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def site_url(self, site: str) -> str | None:
        if self.sample_url:
            return f"{self.sample_url.rstrip('/')}/{site}"
        return self.base_url


def acquirer(source: str, overrides: dict[str, str] | None = None) -> Callable[[AcquireContext], dict]:
    """The acquire function of `source` (`overrides` maps a source to another "module:function")."""
    spec = (overrides or {}).get(source) or ACQUIRERS.get(source)
    if not spec:
        raise ValueError(f"no acquirer for source {source!r} (known: {', '.join(sorted(ACQUIRERS))})")
    module_name, attr = spec.split(":")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError as exc:
        raise ValueError(f"acquirer {spec} for {source!r}: {module_name} has no {attr}") from exc


def run_acquirers(sources: list[str], output: str, recipe: dict[str, Any], *, seed: int = 0,
                  workers: int = 1, sample_sites: str | os.PathLike | None = None,
                  base_url: str | None = None, options: dict[str, Any] | None = None,
                  overrides: dict[str, str] | None = None,
                  allow_partial: bool = False) -> dict[str, dict]:
    """Run every source's acquirer into `output`; with `sample_sites`, against a local SiteServer
    serving that folder (the bundled sample, or a copy a test or a refresh config points at).

    Every source is tried even when an earlier one failed, so one run names everything that is
    broken. A source fails when its acquirer raises a FetchError (its message names the URL) or
    returns `problems` (one line each: what broke and what to change). The summaries go to
    `OUT/acquire.json`; then, unless `allow_partial`, AcquireError lists one line per problem.
    """
    from gap_replay.http import FetchError
    from gap_replay.sample.server import SiteServer

    summaries: dict[str, dict] = {}
    with contextlib.ExitStack() as stack:
        sample_url = None
        if sample_sites is not None:
            sample_url = stack.enter_context(SiteServer(sample_sites)).url
        for source in sources:
            fn = acquirer(source, overrides)
            ctx = AcquireContext(output=str(output), recipe=recipe, seed=seed, workers=workers,
                                 sample_url=sample_url, base_url=base_url, options=dict(options or {}))
            try:
                summaries[source] = fn(ctx) or {}
            except (FetchError, AcquireError) as exc:
                summaries[source] = {"problems": [str(exc)]}
            log.debug("acquired %s: %s", source, summaries[source])
    write_acquire_report(output, summaries)
    lines = problem_lines(summaries)
    if lines and not allow_partial:
        error = AcquireError("\n".join(lines + [
            "Rerun to resume (completed work is kept); fix what is named above, or pass "
            "--allow-partial to keep what was acquired."]))
        error.problems = lines  # one per source problem, without the advice (refresh logs these)
        raise error
    for line in lines:
        log.warning("%s", line)
    return summaries


def problem_lines(summaries: dict[str, dict]) -> list[str]:
    """One line per problem, each starting with its source's name."""
    return [line if line.startswith(f"{source}:") else f"{source}: {line}"
            for source, summary in summaries.items() for line in summary.get("problems") or ()]


def note_lines(summaries: dict[str, dict]) -> list[str]:
    return [f"{source}: {line}" for source, summary in summaries.items()
            for line in summary.get("notes") or ()]


def write_acquire_report(output: str | os.PathLike, summaries: dict[str, dict]) -> None:
    """OUT/acquire.json: what each acquirer reported this run (merged over earlier runs of
    other sources), read by `process` into stats.json["acquire"]."""
    import orjson

    from gap_replay.io.paths import atomic_write

    path = os.path.join(str(output), "acquire.json")
    merged: dict[str, dict] = {}
    if os.path.exists(path):
        with contextlib.suppress(OSError, ValueError):
            with open(path, "rb") as fh:
                merged = orjson.loads(fh.read())
    merged.update(summaries)
    with atomic_write(path) as fh:
        fh.write(orjson.dumps(merged, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS,
                              default=str))
