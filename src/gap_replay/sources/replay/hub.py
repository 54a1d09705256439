"""Parquet files of a hub mirror (or a local copy) read with `datasets` streaming.

For users who prefer a hub mirror of RedPajama (any dataset stored as parquet, which current
`datasets` streams without a loading script). A subset is a folder or glob of parquet files,
local or `hf://datasets/ORG/NAME/...` (fsspec lists them); each file is one sampling unit, its
rows numbered from 1 like lines. Rows go through the same normalisation as raw lines.
"""

from __future__ import annotations

import posixpath
from typing import Iterator

import fsspec
import orjson

from gap_replay.document import Document
from gap_replay.io import Quarantine
from gap_replay.sources.replay.records import BadRecord, to_document
from gap_replay.sources.replay.urllists import DataFile


def list_parquet_files(subset: str, pattern: str) -> list[DataFile]:
    """Parquet files of `pattern` (a folder means every `*.parquet` below it), sorted."""
    fs, _, paths = fsspec.get_fs_token_paths(pattern)
    base = fs._strip_protocol(pattern)
    if fs.isdir(base):
        root = base.rstrip("/")
        paths = fs.glob(root + "/**/*.parquet")
    else:
        root = posixpath.dirname(base.split("*", 1)[0])
    protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
    prefix = "" if protocol in ("file", "local") else f"{protocol}://"
    files = [DataFile(subset, prefix + path, f"{subset}/{posixpath.relpath(path, root)}",
                      kind="parquet")
             for path in sorted(p for p in paths if p.endswith(".parquet"))]
    if not files:
        raise FileNotFoundError(f"no parquet files for replay subset {subset!r} at {pattern}")
    return files


def parquet_rows(url: str) -> int:
    """Row count from the parquet footer (no data read)."""
    import pyarrow.parquet as pq

    with fsspec.open(url, "rb") as fh:
        return pq.ParquetFile(fh).metadata.num_rows


def iter_parquet_documents(file: DataFile, quarantine: Quarantine, text_field: str = "text"
                           ) -> Iterator[Document]:
    import datasets

    stream = datasets.load_dataset("parquet", data_files=[file.url], split="train",
                                   streaming=True)
    for row_number, row in enumerate(stream, start=1):
        try:
            yield to_document(row, subset=file.subset, key=file.key, file_url=file.url,
                              line=row_number, text_field=text_field)
        except BadRecord as exc:
            quarantine.add(file=file.url, line=row_number, reason=f"invalid record: {exc}",
                           raw=orjson.dumps(row, default=str), source="replay")
