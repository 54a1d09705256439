"""Benchmark the decontamination stage: documents/s and MB/s per core on abstract-sized English.

The index is built from the benchmark fixtures (tests/fixtures/benchmarks), or from --benchmarks.
Lookup cost per document barely depends on the index size (binary search in sorted arrays);
tokenising and hashing the document dominates. Not a test: it prints numbers.

    PYTHONPATH=src python scripts/bench_decontaminate.py [--docs 5000] [--benchmarks PATH ...]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from gap_replay.sample.textgen import make_documents
from gap_replay.stages.decontaminate import Decontaminate, DecontaminationConfig, load_index

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "benchmarks"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=5000)
    parser.add_argument("--benchmarks", nargs="*", default=[str(FIXTURES)])
    parser.add_argument("--mode", choices=["drop", "trim"], default="drop")
    args = parser.parse_args()
    config = DecontaminationConfig(benchmarks=tuple(args.benchmarks), mode=args.mode)
    start = time.process_time()
    index = load_index(config)
    build = time.process_time() - start
    docs = make_documents(args.docs, seed=1, english_share=1.0, target_chars=1200, source="abstracts")
    stage = Decontaminate(config, index)
    start = time.process_time()
    kept = sum(stage.process(d) is not None for d in docs)
    cpu = time.process_time() - start
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    print(f"index: {sum(b.hashes.size for b in index.benchmarks.values())} n-grams, built in {build:.2f} s")
    print(f"{args.docs} docs ({mb:.1f} MB), kept {kept}: {args.docs / cpu:,.0f} docs/s/core, "
          f"{mb / cpu:.1f} MB/s/core")


if __name__ == "__main__":
    main()
