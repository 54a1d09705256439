"""A numbered series of raw shards: part-00000.jsonl.gz, part-00001.jsonl.gz, ... per folder."""

from __future__ import annotations

from pathlib import Path

from gap_replay.document import Document
from gap_replay.io import ShardWriter


class ShardSeries:
    """Write documents into shards of at most `per_shard` documents each (each shard atomic).

    On a clean close, shards left from an earlier, larger run are removed so the folder holds
    exactly this run's output.
    """

    def __init__(self, folder: str | Path, per_shard: int, pattern: str = "part-{:05d}.jsonl.gz"
                 ) -> None:
        self.folder = Path(folder)
        self.per_shard = per_shard
        self.pattern = pattern
        self.shards = 0
        self._writer: ShardWriter | None = None

    def __enter__(self) -> "ShardSeries":
        self.folder.mkdir(parents=True, exist_ok=True)
        return self

    def write(self, doc: Document) -> None:
        if self._writer is None:
            self._writer = ShardWriter(self.folder / self.pattern.format(self.shards))
            self._writer.__enter__()
        self._writer.write(doc)
        if self._writer.count >= self.per_shard:
            self._finish(None)

    def _finish(self, exc_info) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.__exit__(*(exc_info or (None, None, None)))
            self.shards += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        self._finish((exc_type, exc, tb) if exc_type else None)
        if exc_type is None:
            for path in sorted(self.folder.glob(self.pattern.split("{")[0] + "*")):
                index = path.name[len(self.pattern.split("{")[0]):].split(".")[0]
                if index.isdigit() and int(index) >= self.shards:
                    path.unlink()
