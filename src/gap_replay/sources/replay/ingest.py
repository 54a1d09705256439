"""Local RedPajama files -> replay Documents (for `gap-replay ingest --format redpajama`).

Same normalisation and quarantine as the HTTP sampler; compression by suffix (.jsonl,
.jsonl.gz, .jsonl.zst). The subset is, in order: the `subset` argument, the record's
`red_pajama_subset` (hub exports), a path folder named like a RedPajama subset, the file
name's prefix (`arxiv_...`, `wiki.jsonl` -> wikipedia), else "unknown".
"""

from __future__ import annotations

import os
import posixpath
from typing import Iterator

import fsspec
import orjson

from gap_replay.document import Document
from gap_replay.io import Quarantine
from gap_replay.sources.replay.records import BadRecord, iter_file_records, to_document
from gap_replay.sources.replay.settings import PUBLISHED_BILLION_TOKENS

_PREFIXES = {"wiki": "wikipedia", "books": "book", "cc": "common_crawl"}


def subset_from_path(path: str) -> str | None:
    parts = [p for p in str(path).replace("\\", "/").split("/") if p]
    for part in reversed(parts[:-1]):
        if part in PUBLISHED_BILLION_TOKENS:
            return part
    stem = parts[-1].split(".")[0].split("_")[0].split("-")[0] if parts else ""
    if stem in PUBLISHED_BILLION_TOKENS:
        return stem
    return _PREFIXES.get(stem)


def iter_redpajama_file(path: str | os.PathLike, quarantine: Quarantine,
                        subset: str | None = None, text_field: str = "text"
                        ) -> Iterator[Document]:
    """Documents of one local RedPajama file; bad lines go to `quarantine` with path:line."""
    name = str(path)
    fallback = subset or subset_from_path(name) or "unknown"
    basename = posixpath.basename(name.replace("\\", "/"))
    with fsspec.open(name, "rb") as raw:
        for line, obj in iter_file_records(raw, name=name, quarantine=quarantine):
            record_subset = subset or (obj.get("red_pajama_subset") if isinstance(obj, dict)
                                       else None) or fallback
            try:
                yield to_document(obj, subset=record_subset, key=f"{record_subset}/{basename}",
                                  file_url=name, line=line, text_field=text_field)
            except BadRecord as exc:
                quarantine.add(file=name, line=line, reason=f"invalid record: {exc}",
                               raw=orjson.dumps(obj), source="replay")
