"""Acquisition, one package per source family; each exposes `acquire(ctx) -> summary dict`.

`gap-replay download` calls them in order through ACQUIRERS; each writes raw document shards
to `OUT/raw/<source>/[<subset>/]*.jsonl.gz`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable

ACQUIRERS: dict[str, str] = {
    "guidelines": "gap_replay.sources.guidelines.acquire:acquire",
    "abstracts": "gap_replay.sources.pubmed.acquire:acquire_abstracts",
    "papers": "gap_replay.sources.pubmed.acquire:acquire_papers",
    "replay": "gap_replay.sources.replay.acquire:acquire",
}


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


def acquirer(source: str) -> Callable[[AcquireContext], dict]:
    module_name, attr = ACQUIRERS[source].split(":")
    return getattr(importlib.import_module(module_name), attr)
