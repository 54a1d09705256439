"""Benchmark near-duplicate removal: documents/s per core and peak RSS at 1x and 10x input.

Each scale runs in a fresh subprocess (local executor, one worker, so one core does all four
phases) over abstract-sized English documents in shards of 1,000, 5% of them lightly edited
copies of other documents. Peak RSS is the child's ru_maxrss. Not a test: it prints numbers.

    PYTHONPATH=src python scripts/bench_near_dedup.py            # 1x = 5,000 docs, 10x = 50,000
    PYTHONPATH=src python scripts/bench_near_dedup.py --docs 2000 --scales 1,10
    # clusters of 16 (one document, 15 edited copies): the cost of verifying every bucket pair
    PYTHONPATH=src python scripts/bench_near_dedup.py --scales 1 --cluster-size 16 --all-pairs 64
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SHARD_DOCS = 1000


def build_corpus(root: Path, n_docs: int, seed: int = 0, cluster_size: int = 2) -> list[str]:
    from gap_replay.document import Document
    from gap_replay.io import ShardWriter
    from gap_replay.sample.textgen import make_documents

    rng = random.Random(seed)
    shards = []
    for s in range(0, n_docs, SHARD_DOCS):
        docs = make_documents(min(SHARD_DOCS, n_docs - s), seed=seed * 100_000 + s, english_share=1.0,
                              target_chars=1200, source="abstracts")
        path = root / f"part-{s // SHARD_DOCS:05d}.jsonl.gz"
        with ShardWriter(path) as w:
            for i, doc in enumerate(docs):
                if cluster_size > 2 and i % 20 >= 21 - cluster_size:  # copies of the block's first
                    j = i - i % 20
                elif cluster_size == 2 and i % 20 == 19:  # 5%: a near copy of an earlier document
                    j = rng.randrange(i)
                    j -= j % 20 == 19  # copy a document that is written as itself
                else:
                    j = None
                if j is not None:
                    words = docs[j].text.split()
                    for _ in range(3):
                        words[rng.randrange(len(words))] = "edited"
                    doc = Document(id=f"near-{s + i}", source="abstracts", text=" ".join(words))
                w.write(Document(id=f"doc-{s + i:08d}", source=doc.source, text=doc.text)
                        if not doc.id.startswith("near-") else doc)
        shards.append(str(path))
    return shards


def child(args: argparse.Namespace) -> None:
    """Runs in the measured subprocess: the four phases over the corpus in --root, through
    `process`'s driver with near-dedup as the only step."""
    from gap_replay.executors import make_executor
    from gap_replay.process import READ_STAGE, Shard, StepsPlan, merge_stats, run_stages
    from gap_replay.stages.minhash.config import NearDedupConfig
    from gap_replay.stages.near_dedup import NearDedupStep

    root = Path(args.root)
    shards = sorted(str(p) for p in (root / "in").glob("*.jsonl.gz"))
    jobs = [Shard(s, Path(s).name.split(".")[0], str(root / "out" / Path(s).name)) for s in shards]
    config = NearDedupConfig(reduce_memory_mb=args.reduce_memory_mb, max_bucket_all_pairs=args.all_pairs)
    start, cpu0 = time.perf_counter(), time.process_time()
    results, reports = run_stages(jobs, StepsPlan((NearDedupStep(config),)), make_executor("local", 1),
                                  str(root / "work"), str(root / "quarantine"), name="near-dedup")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = reports["near_dedup"]
    docs = sum(c["out"] for c in merge_stats(results)[READ_STAGE].values())
    print(json.dumps({"docs": docs, "removed": report["removed"], "clusters": report["clusters"],
                      "candidate_pairs": report["candidate_pairs"], "wall_s": wall, "cpu_s": cpu,
                      "peak_rss_mb": peak_kb / 1024}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000, help="documents at 1x")
    parser.add_argument("--scales", default="1,10")
    parser.add_argument("--reduce-memory-mb", type=int, default=256)
    parser.add_argument("--cluster-size", type=int, default=2, choices=range(2, 21), metavar="2..20",
                        help="documents per planted cluster (2: 5%% near copies of random documents)")
    parser.add_argument("--all-pairs", type=int, default=64, help="near_dedup.max_bucket_all_pairs")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    for scale in [int(s) for s in args.scales.split(",")]:
        root = Path(tempfile.mkdtemp(prefix="bench-near-dedup-"))
        try:
            build_corpus(root / "in", args.docs * scale, cluster_size=args.cluster_size)
            proc = subprocess.run([sys.executable, __file__, "--child", "--root", str(root),
                                   "--reduce-memory-mb", str(args.reduce_memory_mb),
                                   "--all-pairs", str(args.all_pairs)],
                                  capture_output=True, text=True, env=dict(os.environ), check=True)
            rows.append({"scale": scale, **json.loads(proc.stdout.strip().splitlines()[-1])})
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{'scale':>5} {'docs':>8} {'removed':>8} {'wall s':>8} {'docs/s/core':>12} {'peak RSS MB':>12} {'cand. pairs':>12}")
    for r in rows:
        print(f"{r['scale']:>4}x {r['docs']:>8} {r['removed']:>8} {r['wall_s']:>8.1f} "
              f"{r['docs'] / r['cpu_s']:>12.0f} {r['peak_rss_mb']:>12.1f} {r['candidate_pairs']:>12}")
    if len(rows) > 1:
        print(f"peak RSS {rows[-1]['scale']}x / {rows[0]['scale']}x: {rows[-1]['peak_rss_mb'] / rows[0]['peak_rss_mb']:.2f}")


if __name__ == "__main__":
    main()
