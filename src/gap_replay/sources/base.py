"""The one interface a source family offers `download`, `refresh` and `ingest`.

A source only fetches and extracts; every transformation of text is a Stage in `stages/`
(docs/core.md). Three steps, in the spirit of NeMo Curator's URLGenerator / Downloader /
Iterator+Extractor, much smaller:

* `discover(inputs)` -> the items to fetch: remote files from a listing (RedPajama's data
  files of the chosen subsets; a source bound to one listing, such as an S2 dataset of a
  release, the NCBI baseline or the PMC inventory, takes no inputs), or the local files below
  the paths a user gave `ingest`. An iterable: the PMC inventory's rows stream from SQLite.
* `fetch(item)` -> a local path holding the item's bytes (a local file is its own path); a
  source that streams (RedPajama, read with Range resume and never stored) returns the item,
  one that GETs small objects (PMC Cloud) their bytes; None when the fetch failed (the source
  recorded it, the next run retries).
* `extract(location, quarantine)` -> raw Documents: text as the format gives it (formatted, never
  cleaned) and the record's metadata. Bad records go to `quarantine`, never silently away. A
  record the source knows is not corpus text (a retraction, an abstract whose full text is in
  the corpus) is still extracted, carrying `meta.drop_reason`; the shared `filter` stage drops
  it under that reason, so stats.json counts it like any other drop.

`sources/ingest.py` is the one driver that runs a source into `OUT/raw/` (`run_ingest`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol, runtime_checkable

from gap_replay.document import Document
from gap_replay.io import Quarantine
from gap_replay.stages.filter import DROP_REASON  # noqa: F401  (the meta key sources set)


@runtime_checkable
class Source(Protocol):
    name: str    # the format, e.g. "jats", "redpajama": names quarantine and state entries
    source: str  # the corpus source its documents belong to: OUT/raw/<source>/

    def discover(self, inputs: Iterable[str]) -> Iterable[Any]: ...

    def fetch(self, item: Any) -> str | os.PathLike | Any | None: ...

    def extract(self, location: Any, quarantine: Quarantine) -> Iterator[Document]: ...


def files_below(paths: Iterable[str], suffixes: tuple[str, ...]) -> list[str]:
    """`discover` for local inputs: files as given, plus the files with one of `suffixes` below
    any directory (partial downloads skipped), sorted per directory."""
    out: list[str] = []
    for p in paths:
        path = Path(p)
        if path.is_dir():
            out += sorted(str(f) for f in path.rglob("*") if f.is_file()
                          and f.name.endswith(suffixes) and ".part" not in f.name)
        elif path.exists():
            out.append(str(path))
        else:
            raise FileNotFoundError(f"{p}: no such file or directory")
    return out
