"""Local RedPajama files -> replay Documents (for `gap-replay ingest --format redpajama`).

Same normalisation and quarantine as the HTTP sampler; compression by suffix (.jsonl,
.jsonl.gz, .jsonl.zst). The subset is, in order: the `subset` argument, the record's
`red_pajama_subset` (hub exports), a path folder named like a RedPajama subset, the file
name's prefix (`arxiv_...`, `wiki.jsonl` -> wikipedia), else "unknown". Ids key on the path
below the subset's folder (else the whole path), so files named alike in different folders
never share ids. `RedPajamaFiles` is this family's local-files side of the source interface
(sources/base.py), which `gap-replay ingest` drives like the PubMed formats.
"""

from __future__ import annotations

import os
from typing import Iterable, Iterator

import fsspec
import orjson

from gap_replay.document import Document
from gap_replay.io import Quarantine
from gap_replay.sources.base import files_below
from gap_replay.sources.replay.records import BadRecord, iter_file_records, to_document
from gap_replay.sources.replay.settings import PUBLISHED_BILLION_TOKENS
from gap_replay.sources.replay.urllists import file_key, subset_from_name


def subset_from_path(path: str) -> str | None:
    parts = [p for p in str(path).replace("\\", "/").split("/") if p]
    for part in reversed(parts[:-1]):
        if part in PUBLISHED_BILLION_TOKENS:
            return part
    return subset_from_name(parts[-1]) if parts else None


def iter_redpajama_file(path: str | os.PathLike, quarantine: Quarantine,
                        subset: str | None = None, text_field: str = "text"
                        ) -> Iterator[Document]:
    """Documents of one local RedPajama file; bad lines go to `quarantine` with path:line."""
    name = str(path)
    fallback = subset or subset_from_path(name) or "unknown"
    path_name = os.path.normpath(name).replace("\\", "/") if "://" not in name else name
    with fsspec.open(name, "rb") as raw:
        for line, obj in iter_file_records(raw, name=name, quarantine=quarantine):
            record_subset = subset or (obj.get("red_pajama_subset") if isinstance(obj, dict)
                                       else None) or fallback
            try:
                yield to_document(obj, subset=record_subset, key=file_key(record_subset, path_name),
                                  file_url=name, line=line, text_field=text_field)
            except BadRecord as exc:
                quarantine.add(file=name, line=line, reason=f"invalid record: {exc}",
                               raw=orjson.dumps(obj), source="replay")


SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json.gz", ".gz", ".zst")


class RedPajamaFiles:
    """Local RedPajama files (discover below folders, fetch = the file, extract = documents)."""

    name = "redpajama"
    source = "replay"

    def discover(self, inputs: Iterable[str]) -> list[str]:
        return files_below(inputs, SUFFIXES)

    def fetch(self, item: str) -> str:
        return item  # local already

    def extract(self, path: str | os.PathLike, quarantine: Quarantine) -> Iterator[Document]:
        return iter_redpajama_file(path, quarantine)
