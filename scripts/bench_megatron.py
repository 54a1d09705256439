"""Benchmark (not a test): Megatron .bin/.idx writing speed and peak memory from tokenized shards.

    python scripts/bench_megatron.py [--documents 20000] [--tokens-per-doc 1000]

Builds synthetic shards in the mix's format in a temp dir, then times `write_megatron` and
reports tokens/s and peak RSS before/after (memory must not grow with the corpus).
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from gap_replay.formats.megatron import write_megatron  # noqa: E402
from gap_replay.io import ShardWriter  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--documents", type=int, default=20000)
    ap.add_argument("--tokens-per-doc", type=int, default=1000)
    ap.add_argument("--shards", type=int, default=4)
    args = ap.parse_args()
    rng = random.Random(0)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        shards = []
        per = args.documents // args.shards
        for k in range(args.shards):
            rel = f"shards/train/shard-{k:05d}.jsonl.gz"
            with ShardWriter(out / rel, fast=True) as w:
                for i in range(per):
                    n = rng.randint(args.tokens_per_doc // 2, args.tokens_per_doc * 3 // 2)
                    w.write({"id": f"d{k}-{i}", "source": "papers", "split": "train", "n_tokens": n,
                             "input_ids": [rng.randrange(32000) for _ in range(n)]})
            shards.append({"path": rel, "sha256": hashlib.sha256((out / rel).read_bytes()).hexdigest()})
        manifest = {"tokenizer": {"vocab_size": 32017}, "shards": shards}
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0 = time.perf_counter()
        summary = write_megatron(out, manifest)
        dt = time.perf_counter() - t0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        tokens = summary["train"]["tokens"]
        print(f"documents {summary['train']['sequences']:,}  tokens {tokens:,}  seconds {dt:.2f}  "
              f"tokens/s {tokens / dt:,.0f}  bin MB {(out / 'megatron/train.bin').stat().st_size / 1e6:.1f}  "
              f"peak RSS before/after {rss0 / 1024:.0f}/{rss1 / 1024:.0f} MB")


if __name__ == "__main__":
    main()
