"""gap_replay.io.jsonl: shard I/O is byte-stable, bad lines and a truncated gzip are quarantined
with file and line, and rewriting an unchanged shard keeps the file."""

from __future__ import annotations

import gzip

import pytest

from gap_replay.document import Document
from gap_replay.io import Quarantine, ShardWriter, iter_documents


def _doc(i: int, source: str = "abstracts") -> Document:
    return Document(id=f"d{i}", source=source, text=f"text {i}", meta={"k": i})


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.zst"])
def test_shard_roundtrip_is_byte_stable(tmp_path, suffix):
    paths = [tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"]
    for path in paths:
        with ShardWriter(path) as w:
            for i in range(50):
                w.write(_doc(i))
    assert paths[0].read_bytes() == paths[1].read_bytes()
    q = Quarantine()
    docs = list(iter_documents(paths[0], q))
    assert [d.id for d in docs] == [f"d{i}" for i in range(50)] and len(q) == 0
    assert not list(tmp_path.glob("*.tmp-*"))


def test_bad_lines_are_quarantined_with_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good = _doc(1).to_json()
    path.write_bytes(good + b"\n{not json\n" + b'{"id": "x", "source": "papers", "text": "\xff\xfe"}\n'
                     + b'[1, 2]\n{"id": "y"}\n' + good + b"\n")
    q = Quarantine()
    docs = list(iter_documents(path, q, source="papers"))
    assert len(docs) == 2
    reasons = [e.decode() for e in q.entries]
    assert len(reasons) == 4
    assert '"line":2' in reasons[0] and "malformed JSON" in reasons[0]
    assert '"line":3' in reasons[1] and "invalid UTF-8" in reasons[1]
    assert "not an object" in reasons[2]
    assert "field 'source'" in reasons[3]


def test_truncated_gzip_keeps_earlier_records_and_quarantines_the_rest(tmp_path):
    path = tmp_path / "t.jsonl.gz"
    with ShardWriter(path) as w:
        for i in range(2000):
            w.write(Document(id=f"d{i}", source="replay", text=f"word {i} " * 50))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    q = Quarantine()
    docs = list(iter_documents(path, q))
    assert 0 < len(docs) < 2000
    assert len(q) == 1 and b"truncated" in q.entries[0]
    with pytest.raises(EOFError):
        gzip.decompress(path.read_bytes())


def test_rewriting_an_unchanged_shard_keeps_the_file(tmp_path):
    import os

    path = tmp_path / "s.jsonl.gz"

    def write(text):
        with ShardWriter(path) as w:
            w.write(Document(id="a", source="replay", text=text))

    write("same")
    os.utime(path, ns=(1, 1))
    write("same")
    assert os.stat(path).st_mtime_ns == 1  # identical bytes: the old file is left untouched
    write("changed")
    assert os.stat(path).st_mtime_ns != 1
    assert not list(tmp_path.glob("*.tmp-*"))
