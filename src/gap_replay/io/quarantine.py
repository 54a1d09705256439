"""Where bad records go: one JSON line each with file, line, reason and the raw bytes kept."""

from __future__ import annotations

import os
from collections import Counter

import orjson

from gap_replay.io.paths import atomic_write

_RAW_LIMIT = 1 << 20


class Quarantine:
    """Collects bad records for one task; `flush` writes them atomically next to the task output.

    Nothing is dropped silently: each entry keeps the raw line (decoded with backslash escapes
    where it is not UTF-8) so it can be inspected and fixed.
    """

    def __init__(self) -> None:
        self.entries: list[bytes] = []
        self.by_source: Counter[str] = Counter()

    def add(self, *, file: str, line: int | None, reason: str, raw: bytes | str | None = None,
            source: str = "unknown") -> None:
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8", "backslashreplace")
        entry = {"file": str(file), "line": line, "reason": reason, "source": source,
                 "raw": (raw or "")[:_RAW_LIMIT]}
        self.entries.append(orjson.dumps(entry))
        self.by_source[source] += 1

    def __len__(self) -> int:
        return len(self.entries)

    def flush(self, path: str | os.PathLike) -> None:
        """Write all entries to `path` (even none: an empty file marks the task as checked)."""
        with atomic_write(path) as fh:
            for entry in self.entries:
                fh.write(entry + b"\n")
