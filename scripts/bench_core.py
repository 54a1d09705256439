"""Benchmark the core stages (not a test): throughput per core, language agreement, peak memory.

    PYTHONPATH=src python scripts/bench_core.py [--docs 3000] [--rss-docs 2000] [--json out.json]

Throughput figures are the best of 3 runs. Prints, for abstract-sized English text and for mixed-language text (both made
deterministically from the bundled sample by gap_replay.sample.textgen):
  * docs/s and MB/s of every stage in one process (= per core), and of clean+filter together;
  * the language cascade's agreement with seeded langdetect, and langdetect alone for scale
    (what the original scripts ran on every document);
  * whole-chain MB/s (clean, filter, split, tokenize) against the tokenizer alone;
  * peak RSS of `process` + `mix` on 1x and 10x input, each in a fresh subprocess (ru_maxrss),
    with shard and bucket counts scaled to the input so each output shard stays the same size:
    memory is bounded by one output shard, not by the corpus.
A CPU calibration figure (a fixed pure-Python loop) is printed so numbers from a busy machine
can be compared with others.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
sys.path.insert(0, str(SRC))

from gap_replay.document import Document  # noqa: E402
from gap_replay.recipe import load_recipe  # noqa: E402
from gap_replay.sample.textgen import make_documents  # noqa: E402

SAMPLE_OVERRIDES = {"tokenizer": {"path": "sample:tokenizer.model"}, "scale": 1e-6}


def calibration() -> float:
    """Seconds for 10^6 iterations of a trivial Python loop (lower = faster machine)."""
    start = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i
    return time.perf_counter() - start


def _copy(docs: list[Document]) -> list[Document]:
    return [Document(id=d.id, source=d.source, text=d.text, meta=dict(d.meta)) for d in docs]


def _timed(fn, docs: list[Document], repeats: int = 3) -> tuple[float, list]:
    """Best of `repeats` runs on fresh copies: the least disturbed by other load on the machine."""
    best, out = float("inf"), None
    for _ in range(repeats):
        batch = _copy(docs)
        start = time.perf_counter()
        out = fn(batch)
        best = min(best, time.perf_counter() - start)
    return best, out


def stage_throughput(docs: list[Document]) -> dict:
    from gap_replay.mix import load_tokenizer
    from gap_replay.process import build_steps
    from gap_replay.stages.base import Pipeline, Stage

    recipe = load_recipe(overrides=SAMPLE_OVERRIDES)
    mb = sum(len(d.text.encode()) for d in docs) / 1e6
    clean, filt = [s for s in build_steps(recipe) if isinstance(s, Stage)][:2]
    split = [s for s in build_steps(recipe) if s.name == "split"][0]
    tok = load_tokenizer(recipe)
    # warm up: load language models and the tokenizer outside the timings
    list(Pipeline([clean, filt]).run(_copy(docs[:20])))
    tok.encode("warm up")
    results = {}

    def rate(name, seconds, n):
        results[name] = {"docs_per_s": round(n / seconds), "mb_per_s": round(mb / seconds, 2)}

    secs, cleaned = _timed(lambda d: list(clean.run(d)), docs)
    rate("clean", secs, len(docs))
    secs, _ = _timed(lambda d: list(filt.run(d)), _copy(cleaned))
    rate("filter", secs, len(docs))
    secs, _ = _timed(lambda d: list(split.run(d)), _copy(cleaned))
    rate("split", secs, len(docs))
    from gap_replay.stages.dedup import normalised_content_key
    secs, _ = _timed(lambda d: [normalised_content_key(x.text) for x in d], cleaned)
    rate("dedup (content key)", secs, len(docs))
    secs, _ = _timed(lambda d: list(Pipeline(build_steps(recipe)[:2]).run(d)), _copy(docs))
    rate("clean+filter", secs, len(docs))
    secs, _ = _timed(lambda d: [tok.encode(x.text) for x in d], _copy(docs))
    rate("tokenizer alone", secs, len(docs))

    def whole(d):
        steps = build_steps(recipe)
        return [tok.encode(x.text) for x in Pipeline([steps[0], steps[1], steps[-1]]).run(d)]
    secs, _ = _timed(whole, _copy(docs))
    rate("whole chain (clean+filter+split+tokenize)", secs, len(docs))
    return results


def language_agreement(docs: list[Document]) -> dict:
    from gap_replay.stages.language import LanguageDetector, langdetect_reference

    detector = LanguageDetector()
    detector.detect("warm up the detector models")
    start = time.perf_counter()
    got = [detector.detect(d.text) for d in docs]
    cascade_s = time.perf_counter() - start
    langdetect_reference("warm up langdetect")
    start = time.perf_counter()
    ref = [langdetect_reference(d.text) for d in docs]
    ref_s = time.perf_counter() - start
    agree = sum(a == b for a, b in zip(got, ref))
    return {"documents": len(docs), "agree": agree, "agreement": round(agree / len(docs), 4),
            "cascade_docs_per_s": round(len(docs) / cascade_s), "langdetect_docs_per_s": round(len(docs) / ref_s),
            "paths": detector.path_counts,
            "disagreements": [(d.text[:60], a, b) for d, a, b in zip(docs, got, ref) if a != b][:5]}


RSS_CHILD = r"""
import json, resource, sys
sys.path.insert(0, {src!r})
from gap_replay.executors import make_executor
from gap_replay.io import ShardWriter
from gap_replay.mix import run_mix
from gap_replay.process import run_process
from gap_replay.recipe import load_recipe
from gap_replay.sample.textgen import make_documents
root, n_docs, per_shard = sys.argv[1], int(sys.argv[2]), 500
shards = max(1, n_docs // per_shard)
for s in range(shards):
    docs = make_documents(per_shard, seed=1000 + s, english_share=0.9, target_chars=1500, source="abstracts")
    with ShardWriter(f"{{root}}/raw/abstracts/part-{{s:05d}}.jsonl.gz") as w:
        for d in docs:
            d.id = f"{{s}}-{{d.id}}"
            w.write(d)
recipe = load_recipe(overrides={{"tokenizer": {{"path": "sample:tokenizer.model"}}, "scale": 1e-6,
    "sources": {{"abstracts": {{"target_tokens": n_docs * 300 * 1e6 * 1.5}}}},
    "output": {{"shards_per_split": {{"train": shards, "validation": shards}}}},
    "dedup": {{"exact": {{"buckets": shards}}}}}})
ex = make_executor("local", 1)
run_process(root, root, recipe, ex)
run_mix(root, root, recipe, ex)
print(json.dumps({{"max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}}))
"""


def peak_rss(n_docs: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        code = RSS_CHILD.format(src=str(SRC))
        out = subprocess.run([sys.executable, "-c", code, tmp, str(n_docs)], capture_output=True, text=True,
                             check=True, env={**os.environ, "TQDM_DISABLE": "1"})
        return json.loads(out.stdout.strip().splitlines()[-1])["max_rss_mb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--docs", type=int, default=3000, help="documents per throughput run")
    ap.add_argument("--rss-docs", type=int, default=2000, help="documents at 1x for the RSS runs")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()

    report: dict = {"cpu_calibration_s_per_1e6_loop": round(calibration(), 3), "python": sys.version.split()[0]}
    english = make_documents(args.docs, seed=1, english_share=1.0, target_chars=1500)
    mixed = make_documents(args.docs, seed=2, english_share=0.6, target_chars=1500)
    report["english_abstract_sized"] = stage_throughput(english)
    report["mixed_language"] = stage_throughput(mixed)
    agreement_set = (make_documents(1000, seed=3, english_share=0.5, target_chars=1500)
                     + make_documents(500, seed=4, english_share=0.5, target_chars=300)
                     + make_documents(500, seed=5, english_share=0.8, target_chars=120))
    report["language_agreement"] = language_agreement(agreement_set)
    one = peak_rss(args.rss_docs)
    ten = peak_rss(args.rss_docs * 10)
    report["peak_rss_mb"] = {"1x": round(one, 1), "10x": round(ten, 1), "ratio": round(ten / one, 3),
                             "docs_1x": args.rss_docs}
    _ = resource  # (ru_maxrss is read in the child)

    print(f"CPU calibration: {report['cpu_calibration_s_per_1e6_loop']} s per 10^6-iteration Python loop")
    for name in ("english_abstract_sized", "mixed_language"):
        print(f"\n{name} ({args.docs} docs of ~1,500 chars), one process:")
        for stage, r in report[name].items():
            print(f"  {stage:45s} {r['docs_per_s']:>8,} docs/s  {r['mb_per_s']:>7} MB/s")
    la = report["language_agreement"]
    print(f"\nlanguage: {la['agree']}/{la['documents']} agree with seeded langdetect ({100 * la['agreement']:.2f}%); "
          f"cascade {la['cascade_docs_per_s']:,} docs/s vs langdetect {la['langdetect_docs_per_s']:,} docs/s; "
          f"paths {la['paths']}")
    r = report["peak_rss_mb"]
    print(f"peak RSS process+mix: {r['1x']} MB at 1x ({args.rss_docs} docs), {r['10x']} MB at 10x; ratio {r['ratio']}")
    cf = report["english_abstract_sized"]["clean+filter"]["docs_per_s"]
    print(f"\ntargets: clean+filter {cf:,} English docs/s (>= 2,300), agreement {100 * la['agreement']:.2f}% (>= 99%), "
          f"RSS 10x/1x {r['ratio']} (<= 1.10)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
