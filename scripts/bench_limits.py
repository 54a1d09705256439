"""Benchmark hostile and oversized inputs (not a test): peak RSS and time of each, default limits.

    python scripts/bench_limits.py [--only NAME] [--scale 1.0]

Builds each input in a temporary folder, runs the real command on it in a fresh subprocess and
prints its peak RSS (ru_maxrss of that child), wall time, exit code and how the bad record was
accounted for (stats.json / quarantine). The goal is every figure under 1 GB RSS:

  gzip-bomb      raw/replay/*.jsonl.gz: 1 MB of gzip that expands to 1 GiB of zeros (no newline)
  big-document   raw/papers/*.jsonl.gz: one 50 MB document between two small ones
  long-line      raw/replay/*.jsonl: 200 MB without a newline
  bad-lines      raw/replay/*.jsonl.gz: 2,000 lines of 1 MiB invalid UTF-8 in a 2 MB gzip
  huge-page      an HTTP page on 127.0.0.1 announcing 10 GB (PoliteClient.get_text)
`--scale` shrinks the inputs for a quick run (0.1 = a tenth of each size).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

SRC = Path(__file__).resolve().parent.parent / "src"
MIB = 1 << 20


def _doc(i: int, text: str, source: str = "replay") -> bytes:
    return orjson.dumps({"id": f"{source}:{i}", "source": source, "subset": "x", "title": "",
                         "text": text, "url": "", "meta": {}}) + b"\n"


def _small(i: int, source: str) -> bytes:
    return _doc(i, f"Document {i} is a short and ordinary English text about medicine. " * 20, source)


def build_gzip_bomb(root: Path, scale: float) -> list[str]:
    path = root / "raw" / "replay" / "bomb.jsonl.gz"
    path.parent.mkdir(parents=True)
    zeros = b"\0" * (16 * MIB)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(_small(0, "replay"))
        for _ in range(max(1, int(64 * scale))):
            fh.write(zeros)
    return ["process", "--input", str(root)]


def build_big_document(root: Path, scale: float) -> list[str]:
    path = root / "raw" / "papers" / "big.jsonl.gz"
    path.parent.mkdir(parents=True)
    words = "The patient received treatment and recovered after several weeks of care. "
    text = words * int(50 * MIB * scale / len(words))
    with gzip.open(path, "wb", compresslevel=1) as fh:
        fh.write(_small(0, "papers") + _doc(1, text, "papers") + _small(2, "papers"))
    return ["process", "--input", str(root)]


def build_long_line(root: Path, scale: float) -> list[str]:
    path = root / "raw" / "replay" / "line.jsonl"
    path.parent.mkdir(parents=True)
    with open(path, "wb") as fh:
        fh.write(_small(0, "replay"))
        block = b"x" * MIB
        fh.write(b'{"id": "long", "text": "')
        for _ in range(int(200 * scale)):
            fh.write(block)
    return ["process", "--input", str(root)]


def build_bad_lines(root: Path, scale: float) -> list[str]:
    path = root / "raw" / "replay" / "bad.jsonl.gz"
    path.parent.mkdir(parents=True)
    bad = b'{"id": "bad", "text": "' + b"\xff" * MIB + b'"}\n'
    with gzip.open(path, "wb", compresslevel=9) as fh:
        fh.write(_small(0, "replay"))
        for _ in range(int(2000 * scale)):
            fh.write(bad)
        fh.write(_small(1, "replay"))
    return ["process", "--input", str(root)]


HUGE_PAGE = r"""
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from gap_replay.http import FetchError, PoliteClient

class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(10 << 30))
        self.end_headers()
        try:
            while True:
                self.wfile.write(b"0" * 65536)
        except OSError:
            pass

srv = ThreadingHTTPServer(("127.0.0.1", 0), H); srv.daemon_threads = True
threading.Thread(target=srv.serve_forever, daemon=True).start()
client = PoliteClient(rate=0, respect_robots=False, cache_path=sys.argv[1] + "/cache.sqlite")
try:
    client.get_text(f"http://127.0.0.1:{srv.server_address[1]}/page")
    print("read the whole page")
except FetchError as exc:
    print("refused:", exc.reason)
"""


def build_huge_page(root: Path, scale: float) -> list[str]:
    return ["-c", HUGE_PAGE, str(root)]


CASES = {"gzip-bomb": build_gzip_bomb, "big-document": build_big_document,
         "long-line": build_long_line, "bad-lines": build_bad_lines, "huge-page": build_huge_page}


def run(name: str, scale: float) -> dict:
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as tmp:
        root = Path(tmp) / "out"
        root.mkdir()
        args = CASES[name](root, scale)
        cmd = [sys.executable] + (args if args[0] == "-c" else ["-m", "gap_replay", *args])
        env = dict(os.environ, PYTHONPATH=str(SRC))
        # ru_maxrss of RUSAGE_CHILDREN is the largest child so far: one child per case, measured
        # in a wrapper process so earlier cases do not mask later ones.
        wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                   "p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
                   "print(p.returncode, time.perf_counter() - t, "
                   "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
                   "sys.stderr.write(p.stdout[-2000:] + p.stderr[-2000:])")
        proc = subprocess.run([sys.executable, "-c", wrapper, *cmd], capture_output=True,
                              text=True, env=env)
        code, seconds, rss_kb = proc.stdout.split()
        result = {"case": name, "exit": int(code), "seconds": round(float(seconds), 1),
                  "peak_rss_mb": round(int(rss_kb) / 1024, 1), "tail": proc.stderr.strip()[-300:]}
        stats = root / "stats.json"
        if stats.exists():
            read = json.loads(stats.read_text())["stages"].get("read", {})
            result["read"] = {src: {k: c[k] for k in ("in", "out", "dropped", "quarantined")}
                              for src, c in read.items()}
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", choices=sorted(CASES))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--json", help="Also write the results here.")
    args = parser.parse_args()
    results = []
    for name in ([args.only] if args.only else list(CASES)):
        r = run(name, args.scale)
        results.append(r)
        print(f"{r['case']:<13} exit {r['exit']}  {r['seconds']:>6.1f} s  peak RSS {r['peak_rss_mb']:>7.1f} MB"
              f"  read: {json.dumps(r.get('read', '-'))}")
        if r["exit"] != 0 or r["case"] == "huge-page":
            print("    " + r["tail"].replace("\n", "\n    ")[-400:])
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
