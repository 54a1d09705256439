"""Benchmark the replay sampler on a generated RedPajama-shaped site served on 127.0.0.1.

    PYTHONPATH=src:tests python scripts/bench_replay.py [--files 16] [--docs 200] [--target 1M]

Prints, per worker count: wall time, documents/s and MB/s of data served, and how many files
were fetched versus listed (the saving from reading only what the budget needs).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from replay_site import SiteSpec, build_site  # noqa: E402

from gap_replay.sample.server import SiteServer  # noqa: E402
from gap_replay.sources.replay.sampler import run_sample  # noqa: E402
from gap_replay.sources.replay.settings import ReplaySettings, parse_size  # noqa: E402
from gap_replay.sources.replay.file_task import HTTPSettings  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=16)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--target", default="1M")
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="bench-replay-"))
    try:
        build_site(tmp / "site", SiteSpec(files_per_subset=args.files, docs_per_file=args.docs))
        site_mb = sum(p.stat().st_size for p in (tmp / "site").rglob("*") if p.is_file()) / 1e6
        print(f"site: {len(SiteSpec().subsets)} subsets x {args.files} files x {args.docs} docs, "
              f"{site_mb:.1f} MB on disk")
        for workers in [int(w) for w in args.workers.split(",")]:
            settings = ReplaySettings(seed=1, target_tokens=parse_size(args.target), rate=0.0,
                                      read_multiplier=4)
            with SiteServer(tmp / "site") as server:
                start = time.perf_counter()
                summary = run_sample(settings, tmp / f"out{workers}",
                                     http=HTTPSettings(base_url=server.base_url("redpajama"), rate=0))
                elapsed = time.perf_counter() - start
                served = sum((tmp / "site" / r.path.lstrip("/")).stat().st_size
                             for r in server.requests_to("/redpajama/") if r.status == 200
                             and (tmp / "site" / r.path.lstrip("/")).is_file())
            seen = sum(s["documents_seen"] for s in summary["subsets"].values())
            fetched = sum(s["files_fetched"] for s in summary["subsets"].values())
            listed = sum(s["files_listed"] for s in summary["subsets"].values())
            print(f"workers={workers}: {elapsed:.2f}s, {summary['documents']} docs kept, "
                  f"~{summary['estimated_tokens']:,} tokens, {seen / elapsed:,.0f} docs read/s, "
                  f"{served / 1e6 / elapsed:.1f} MB/s served, files fetched {fetched}/{listed}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
