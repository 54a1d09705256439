"""Where bad records go: one JSON line each with file, line, reason and the start of the raw bytes.

Entries stream to a spool file as they come (memory stays at most `SPOOL_IN_MEMORY` whatever
the number of bad records), and each keeps only the first `raw_limit` bytes of its record plus
the record's full length and sha256: enough to find and inspect it in the input, never a second
copy of a hostile input's gigabytes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections import Counter

import orjson

from gap_replay import limits
from gap_replay.io.paths import atomic_write

SPOOL_IN_MEMORY = 1 << 20


class Quarantine:
    """Collects bad records for one task; `flush` writes them atomically next to the task output.

    Nothing is dropped silently: each entry names file, line (or byte offset) and reason, and
    keeps the start of the raw record (decoded with backslash escapes where it is not UTF-8).
    """

    def __init__(self, raw_limit: int | None = None) -> None:
        self.raw_limit = raw_limit or limits.current().quarantine_raw_bytes
        self._spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)
        self._count = 0
        self.by_source: Counter[str] = Counter()

    def add(self, *, file: str, line: int | None, reason: str, raw: bytes | str | None = None,
            source: str = "unknown") -> None:
        data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else (raw or b"")
        entry = {"file": str(file), "line": line, "reason": reason, "source": source,
                 "raw": data[:self.raw_limit].decode("utf-8", "backslashreplace"),
                 "raw_bytes": len(data)}
        if len(data) > self.raw_limit:
            entry["raw_sha256"] = hashlib.sha256(data).hexdigest()
        self._spool.write(orjson.dumps(entry) + b"\n")
        self._count += 1
        self.by_source[source] += 1

    def __len__(self) -> int:
        return self._count

    @property
    def entries(self) -> list[bytes]:
        """The JSON lines written so far (for inspection; reads the spool back)."""
        self._spool.seek(0)
        lines = self._spool.read().splitlines()
        self._spool.seek(0, os.SEEK_END)
        return lines

    def flush(self, path: str | os.PathLike) -> None:
        """Write all entries to `path` (even none: an empty file marks the task as checked)."""
        self._spool.seek(0)
        with atomic_write(path) as fh:
            shutil.copyfileobj(self._spool, fh, 1 << 20)
        self._spool.seek(0, os.SEEK_END)

    def __getstate__(self) -> dict:
        """Picklable (tasks may carry one across processes): the spool travels as its bytes."""
        return {"raw_limit": self.raw_limit, "data": b"\n".join(self.entries),
                "by_source": dict(self.by_source)}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["raw_limit"])
        for line in state["data"].splitlines():
            self._spool.write(line + b"\n")
            self._count += 1
        self.by_source.update(state["by_source"])
