"""The acquisition ledger: what each input file became, so `process` can account for every record
from the input file to the shards (`stats.json["stages"]["acquire"]`).

Two kinds of rows in `OUT/work/acquire/ledger.sqlite`:

* a raw shard (keyed by its path below `OUT/raw/` without suffix, as `process` names its tasks):
  its source, the documents written into it, the documents later removed from it by reason
  (full-text dedup, superseded versions), and the file's size and mtime when last written;
* an input (keyed by its name and source): records that became no document, dropped by reason
  or quarantined.

`process` sums both into the `acquire` stage and checks that what acquisition says it left in a
shard is what the shard holds. A shard changed by anything that does not update the ledger (its
size or mtime differ) is counted from what it holds, as are shards of sources that keep no
shard rows (guidelines, replay): never a wrong count, at worst a less detailed one. Guidelines
keep one input row per site (`guidelines/<tag>`): the pages their site rules rejected.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Iterable

import orjson

from gap_replay.io.jsonl import shard_key


def ledger_path(output: str | os.PathLike) -> Path:
    return Path(output) / "work" / "acquire" / "ledger.sqlite"


def raw_shard_key(output: str | os.PathLike, shard: str | os.PathLike) -> str:
    """`papers/pmc/name` for `OUT/raw/papers/pmc/name.jsonl.gz` (the key `process` uses)."""
    raw, shard = os.path.join(os.path.abspath(output), "raw"), os.path.abspath(shard)
    if not shard.startswith(raw + os.sep):
        raise ValueError(f"{shard} is not below {raw}: the ledger only records raw shards")
    return shard_key(raw, shard)


def _fingerprint(path: str | os.PathLike) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_size, st.st_mtime_ns


class Ledger:
    """Open, write, close: every call commits (ingest writes a handful of rows per input)."""

    def __init__(self, output: str | os.PathLike) -> None:
        self.output = Path(output)
        path = ledger_path(output)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path))
        self.db.executescript(
            "CREATE TABLE IF NOT EXISTS shards (key TEXT PRIMARY KEY, source TEXT, written INTEGER,"
            " removed TEXT, size INTEGER, mtime_ns INTEGER);"
            "CREATE TABLE IF NOT EXISTS inputs (name TEXT, source TEXT, dropped TEXT,"
            " quarantined INTEGER, PRIMARY KEY (name, source));")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def shard_written(self, shard: str | os.PathLike, source: str, written: int) -> None:
        size, mtime = _fingerprint(shard)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO shards VALUES (?, ?, ?, '{}', ?, ?)",
                            (raw_shard_key(self.output, shard), source, written, size, mtime))

    def shard_rewritten(self, shard: str | os.PathLike, removed: dict[str, int]) -> None:
        """Documents removed from a shard that was rewritten in place (after the rewrite)."""
        key = raw_shard_key(self.output, shard)
        row = self.db.execute("SELECT removed FROM shards WHERE key = ?", (key,)).fetchone()
        if row is None:
            return  # a shard the ledger never saw written stays counted from what it holds
        total = Counter(orjson.loads(row[0]))
        total.update({k: int(v) for k, v in removed.items() if v})
        size, mtime = _fingerprint(shard)
        with self.db:
            self.db.execute("UPDATE shards SET removed = ?, size = ?, mtime_ns = ? WHERE key = ?",
                            (orjson.dumps(dict(sorted(total.items()))).decode(), size, mtime, key))

    def input_counts(self, name: str, source: str, *, dropped: dict[str, int] | None = None,
                     quarantined: int | None = None) -> None:
        """Set (not add) an input's dropped and/or quarantined counts for one source."""
        row = self.db.execute("SELECT dropped, quarantined FROM inputs WHERE name = ? AND source = ?",
                              (name, source)).fetchone()
        old_dropped, old_quarantined = (row[0], row[1]) if row else ("{}", 0)
        new_dropped = (orjson.dumps(dict(sorted((k, int(v)) for k, v in dropped.items() if v))).decode()
                       if dropped is not None else old_dropped)
        with self.db:
            self.db.execute("INSERT OR REPLACE INTO inputs VALUES (?, ?, ?, ?)",
                            (name, source, new_dropped,
                             old_quarantined if quarantined is None else int(quarantined)))


def note_rewrite(output: str | os.PathLike, shard: str | os.PathLike, removed: dict[str, int]) -> None:
    """For code that rewrites raw shards in place (full-text dedup, superseded versions)."""
    if not ledger_path(output).exists():
        return
    with Ledger(output) as ledger:
        ledger.shard_rewritten(shard, removed)


def acquire_stage(input_dir: str, shard_paths: Iterable[tuple[str, str]],
                  read_by_key: dict[str, dict[str, dict]], sources: Iterable[str]) -> dict[str, dict]:
    """The `acquire` stage of stats.json: {source: {in, out, dropped, quarantined}}.

    `shard_paths` are (key, path) of the raw shards `process` read; `read_by_key` is the `read`
    stage of each (its `in` is every line the shard holds). A ledgered shard whose size and mtime
    still match contributes what acquisition wrote into it; any other shard what it holds."""
    wanted = set(sources)
    stage: dict[str, dict] = {}

    def add(source: str, n_in: int, n_out: int, dropped: dict[str, int], quarantined: int) -> None:
        c = stage.setdefault(source, {"in": 0, "out": 0, "dropped": {}, "quarantined": 0})
        c["in"] += n_in
        c["out"] += n_out
        c["quarantined"] += quarantined
        for reason, n in dropped.items():
            c["dropped"][reason] = c["dropped"].get(reason, 0) + n

    path = ledger_path(input_dir)
    db = sqlite3.connect(str(path)) if "://" not in str(input_dir) and path.exists() else None
    try:
        for key, shard in shard_paths:
            row = None
            if db is not None:
                row = db.execute("SELECT source, written, removed, size, mtime_ns FROM shards "
                                 "WHERE key = ?", (key,)).fetchone()
            read = read_by_key.get(key, {})
            if row is not None and (row[3], row[4]) == _fingerprint(shard) and set(read) <= {row[0]}:
                removed = orjson.loads(row[2])
                add(row[0], row[1], row[1] - sum(removed.values()), removed, 0)
            else:
                for source, counts in read.items():
                    add(source, counts["in"], counts["in"], {}, 0)
        if db is not None:
            for _name, source, dropped, quarantined in db.execute(
                    "SELECT name, source, dropped, quarantined FROM inputs ORDER BY name, source"):
                if source in wanted:
                    d = orjson.loads(dropped)
                    add(source, sum(d.values()) + quarantined, 0, d, quarantined)
    finally:
        if db is not None:
            db.close()
    return {src: {**c, "dropped": dict(sorted(c["dropped"].items()))} for src, c in sorted(stage.items())}
