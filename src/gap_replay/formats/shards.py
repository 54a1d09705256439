"""Read the mixed shards named by `manifest.json`, in manifest order, verifying each sha256.

Formats built from the shards (Megatron) must see exactly the bytes the manifest describes, so
the digest is checked while streaming; a mismatch or a bad line is an error naming file:line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
from pathlib import Path
from typing import IO, Iterator

import orjson
import zstandard

from gap_replay.io.paths import join
from gap_replay.recipe import SPLITS


class ShardError(RuntimeError):
    """A shard that does not match its manifest entry or holds a malformed line."""


class _HashingReader(io.RawIOBase):
    """A read-only file wrapper that feeds every byte it returns into a sha256."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.raw.read(len(buffer))
        self.sha256.update(data)
        buffer[: len(data)] = data
        return len(data)


def shard_path(out_dir: str | os.PathLike, entry: dict) -> str:
    path = entry["path"]
    if "://" in path or os.path.isabs(path):
        return path
    return join(out_dir, path)


def shard_split(entry: dict) -> str:
    """The split a manifest shard belongs to: its `split` field, else its folder name."""
    if entry.get("split"):
        return entry["split"]
    parts = Path(entry["path"]).parts
    for split in SPLITS:
        if split in parts:
            return split
    raise ShardError(f"{entry['path']}: cannot tell the split (no 'split' field, no train/validation folder)")


def manifest_shards(manifest: dict, split: str) -> list[dict]:
    return [e for e in manifest.get("shards", []) if shard_split(e) == split]


def iter_shard_records(path: str, expected_sha256: str | None = None) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record) from one shard; check its sha256 once the file is consumed."""
    with open(path, "rb") as fh:
        hashing = _HashingReader(fh)
        buffered = io.BufferedReader(hashing, buffer_size=1 << 20)
        if path.endswith(".gz"):
            stream: IO[bytes] = gzip.GzipFile(fileobj=buffered, mode="rb")
        elif path.endswith(".zst"):
            stream = zstandard.ZstdDecompressor().stream_reader(buffered, read_across_frames=True)
        else:
            stream = buffered
        lineno = 0
        for lineno, line in enumerate(io.BufferedReader(stream, 1 << 20) if path.endswith(".zst") else stream, 1):
            if not line.strip():
                continue
            try:
                yield lineno, orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ShardError(f"{path}:{lineno}: malformed JSON line: {exc}") from exc
        # drain what the decompressor did not need (gzip trailer) so the digest covers the file
        while buffered.read(1 << 20):
            pass
    if expected_sha256 and hashing.sha256.hexdigest() != expected_sha256:
        raise ShardError(f"{path}: sha256 {hashing.sha256.hexdigest()} does not match the manifest "
                         f"({expected_sha256}); the shard changed after `mix` — rerun `gap-replay mix`")
