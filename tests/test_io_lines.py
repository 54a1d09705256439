"""gap_replay.io.lines and the shard reader on top of it: every complete line before damage is
kept, long lines and bombs are quarantined without being held in memory."""

from __future__ import annotations

import gzip
import io

import orjson
import pytest
import zstandard

from gap_replay.io import Quarantine, iter_records
from gap_replay.io.lines import LongLine, TruncatedInput, iter_lines


def _rows(n: int, start: int = 0) -> bytes:
    return b"".join(orjson.dumps({"id": str(i), "text": f"record {i} " * 20}) + b"\n"
                    for i in range(start, start + n))


def test_a_gzip_shard_cut_short_keeps_every_complete_line_before_the_cut(tmp_path):
    whole = gzip.compress(_rows(21), mtime=0)
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    q = Quarantine()
    ids = [obj["id"] for _, obj in iter_records(cut, q)]
    readable = gzip.GzipFile(fileobj=io.BytesIO(cut.read_bytes()))
    complete = 0
    with pytest.raises(EOFError):
        for _ in readable:
            complete += 1  # what an independent reader gets before the cut
    assert len(ids) >= complete and ids == [str(i) for i in range(len(ids))] and ids
    (entry,) = [orjson.loads(e) for e in q.entries]
    assert entry["line"] == len(ids) + 1 and "truncated" in entry["reason"]


def test_multi_member_gzip_with_a_truncated_last_member_keeps_the_first_member(tmp_path):
    first, second = gzip.compress(_rows(10), mtime=0), gzip.compress(_rows(10, 10), mtime=0)
    path = tmp_path / "multi.jsonl.gz"
    path.write_bytes(first + second[:-20])
    q = Quarantine()
    ids = [obj["id"] for _, obj in iter_records(path, q)]
    assert ids[:10] == [str(i) for i in range(10)] and len(q) == 1


def test_multi_frame_zstd_is_read_whole(tmp_path):
    cctx = zstandard.ZstdCompressor()
    path = tmp_path / "multi.jsonl.zst"
    path.write_bytes(cctx.compress(_rows(5)) + cctx.compress(_rows(5, 5)))
    q = Quarantine()
    assert [obj["id"] for _, obj in iter_records(path, q)] == [str(i) for i in range(10)]
    assert len(q) == 0


def test_a_line_over_the_limit_is_quarantined_by_its_head_and_size_and_its_neighbours_survive(tmp_path):
    big = orjson.dumps({"id": "big", "text": "x" * 3_000_000}) + b"\n"
    path = tmp_path / "big.jsonl.gz"
    path.write_bytes(gzip.compress(_rows(2) + big + _rows(2, 2), mtime=0))
    q = Quarantine()
    ids = [obj["id"] for _, obj in iter_records(path, q, max_line=1 << 20)]
    assert ids == ["0", "1", "2", "3"]
    (entry,) = [orjson.loads(e) for e in q.entries]
    assert entry["line"] == 3 and entry["reason"].startswith("line too long: 3,000,")
    assert entry["raw"].startswith('{"id":"big"') and entry["raw_bytes"] <= 8 << 10


def test_a_gzip_bomb_is_decoded_in_bounded_steps_and_stopped_by_the_size_limit():
    bomb = gzip.compress(b"\0" * (64 << 20), compresslevel=9)  # 64 MiB of zeros in ~64 KB
    lines = iter_lines(io.BytesIO(bomb), "bomb.jsonl.gz", max_line=1 << 20, max_bytes=32 << 20)
    with pytest.raises(TruncatedInput, match="decompressed size exceeds"):
        list(lines)
    stats: dict = {}
    ((n, line),) = list(iter_lines(io.BytesIO(bomb), "bomb.jsonl.gz", stats, max_line=1 << 20))
    assert isinstance(line, LongLine) and line.size == 64 << 20 and len(line.head) == 8 << 10
    assert stats["decoded"] == 64 << 20


def test_lines_split_across_chunks_are_joined_exactly():
    text = b"".join(b"%d:" % i + b"y" * (i * 997 % 200_000) + b"\n" for i in range(60)) + b"tail"
    got = [line for _, line in iter_lines(io.BytesIO(text), "plain.jsonl")]
    assert got == text.split(b"\n")


def test_a_stream_whose_server_has_fewer_bytes_than_it_declared_ends_instead_of_failing_on_416():
    """The first answer declares more bytes than the file has and is cut; the resume's Range
    then gets 416 (nothing there). The stream ends at the real size, for the line reader to judge."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from gap_replay.http import PoliteClient, RetryPolicy
    from gap_replay.io.stream import HTTPByteStream

    body = _rows(30)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            if self.headers.get("Range"):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) * 2))
            self.end_headers()
            self.wfile.write(body)
            self.close_connection = True

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        client = PoliteClient(rate=0, respect_robots=False, sleep=lambda s: None,
                              retry=RetryPolicy(max_retries=2, backoff=0.01, timeout=5))
        url = f"http://127.0.0.1:{httpd.server_address[1]}/data.jsonl"
        with HTTPByteStream(client, url) as raw:
            lines = [line for _, line in iter_lines(raw, url)]
        assert b"\n".join(lines) + b"\n" == body
    finally:
        httpd.shutdown()
        httpd.server_close()
