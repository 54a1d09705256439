"""gap_replay.io.quarantine: entries stream to disk and keep the start, length and hash of a record."""

from __future__ import annotations

import hashlib
import pickle

import orjson

from gap_replay.io import Quarantine


def test_big_bad_records_keep_their_start_length_and_hash_not_their_bytes(tmp_path):
    q = Quarantine(raw_limit=1024)
    record = b'{"text": "' + b"\xff" * 10 + b"x" * (1 << 20) + b'"'
    for line in range(300):  # 300 MiB of bad input
        q.add(file="in.jsonl.gz", line=line + 1, reason="invalid UTF-8", raw=record, source="papers")
    out = tmp_path / "q.jsonl"
    q.flush(out)
    assert len(q) == 300 and q.by_source == {"papers": 300}
    assert out.stat().st_size < 300 * 3000  # kilobytes per entry, not the megabyte
    entries = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [e["line"] for e in entries] == list(range(1, 301))
    first = entries[0]
    assert first["raw_bytes"] == len(record)
    assert first["raw_sha256"] == hashlib.sha256(record).hexdigest()
    assert first["raw"].startswith('{"text": "\\xff')


def test_small_records_are_kept_whole_and_the_quarantine_pickles(tmp_path):
    q = Quarantine()
    q.add(file="a.jsonl", line=3, reason="malformed JSON", raw="{oops", source="replay")
    copy = pickle.loads(pickle.dumps(q))
    copy.add(file="a.jsonl", line=9, reason="malformed JSON", raw=b"]", source="replay")
    copy.flush(tmp_path / "q.jsonl")
    entries = [orjson.loads(line) for line in (tmp_path / "q.jsonl").read_bytes().splitlines()]
    assert [(e["line"], e["raw"], e["raw_bytes"]) for e in entries] == [(3, "{oops", 5), (9, "]", 1)]
    assert "raw_sha256" not in entries[0] and len(copy) == 2 and copy.by_source["replay"] == 2
