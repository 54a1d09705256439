"""Shard readers and writers (jsonl, jsonl.gz, jsonl.zst) over fsspec paths, with atomic writes."""

from gap_replay.io.jsonl import ShardWriter, iter_documents, iter_records, list_shards
from gap_replay.io.paths import atomic_write, join
from gap_replay.io.quarantine import Quarantine

__all__ = [
    "Quarantine",
    "ShardWriter",
    "atomic_write",
    "iter_documents",
    "iter_records",
    "join",
    "list_shards",
]
