"""Scale simulation of the global phases (not a test): a fraction of the full corpus through every
phase that needs a view of all shards, each phase timed in its own child process.

    python scripts/bench_scale.py [--fraction 0.01] [--workers 2] [--keep DIR] [--json out.json]

The full corpus is ~21M documents (~5M papers, ~16M abstracts, ~46K guidelines, replay) and the
48.1B-token recipe. `--fraction 0.01` (the default) generates ~210K documents including ~50K
paper-length ones (20-60 KB) with scripts/bench_chain.py's generator, plus planted duplicates:
exact copies under new ids, abstracts sharing a paper's id, and near copies (a few words edited,
some in clusters of 3). Documents are written as clean shards (meta.split set) and then go through:

  exact-dedup map      per shard: id/content/title keys        (ExactDedup observer)
  exact-dedup reduce   per key bucket: winners and losers        (ExactDedup.reduce)
  near-dup signatures  per shard: MinHash + band hashes          (NearDedupStep observer)
  near-dup buckets     per band: candidate pairs                 (reduce_band)
  near-dup clusters    once: verify, union-find, keep rule       (cluster)
  mix tokenize / bucket (plan + placement) / write shards (per-shard sorts)   (run_mix)

The recipe is the default one with budgets times `--fraction` and output shards times `--fraction`
(at least one per split), so an output shard holds about as many tokens as in the full run. The
mix uses a word-level tokenizer (Hugging Face `tokenizers`, 32k words, built on the generated text
and cached in /tmp) so tokenizing, which scripts/bench_chain.py measures, does not dominate.
Each phase prints wall time, the peak RSS of its largest process and the peak summed RSS of its
process tree (this process, the forkserver and its pool workers), sampled every 0.2 s. docs/scale.md explains the projection to the full corpus.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(HERE))

from bench_chain import MB, MixedCorpus, near_copy, tree_rss  # noqa: E402

from gap_replay.document import Document  # noqa: E402

# documents of the full corpus per source (abstracts and papers: ~16M + ~5M)
FULL_DOCS = {"papers": 5_000_000, "abstracts": 15_500_000, "guidelines": 46_000, "replay": 600_000}
DOCS_PER_SHARD = {"papers": 1_000, "abstracts": 10_000, "guidelines": 1_000, "replay": 5_000}
EXACT, SAME_ID, NEAR = 0.02, 0.01, 0.03  # planted: exact copies, abstract = paper id, near copies
VALIDATION = {"papers": 0.03, "abstracts": 0.03, "guidelines": 0.05, "replay": 0.0}
PHASES = ("generate", "exact-dedup", "near-dup", "mix")
FULL_SHARDS = sum(math.ceil(n / DOCS_PER_SHARD[s]) for s, n in FULL_DOCS.items())
# How each phase scales to the full corpus: tasks that can run at once there, and whether the
# memory of one task grows with the corpus ("docs") or is bounded by a setting ("bounded").
SCALING = {  # phase name prefix: (parallel tasks at full size, or a recipe-dependent key; memory)
    "exact-dedup map": (FULL_SHARDS, "bounded"),
    "exact-dedup reduce": ("dedup_buckets", "docs"),
    "near-dup signatures": (FULL_SHARDS, "bounded"),
    "near-dup buckets": ("bands", "bounded"),
    "near-dup clusters": (1, "docs"),
    "mix [tokenize]": (FULL_SHARDS, "bounded"),
    "mix [bucket]": (FULL_SHARDS, "bounded"),
    "mix [write shards]": ("output_shards", "bounded"),
}
CACHE = Path(tempfile.gettempdir()) / "gap-replay-bench"

_CORPUS: dict[int, MixedCorpus] = {}


def corpus(seed: int) -> MixedCorpus:
    if seed not in _CORPUS:
        _CORPUS[seed] = MixedCorpus(seed=seed)
    return _CORPUS[seed]


# ---------------------------------------------------------------- the corpus

def shard_plan(fraction: float) -> list[tuple[str, int, int, int]]:
    """(source, shard, first index, documents) of every shard at this fraction."""
    plan = []
    for source, full in FULL_DOCS.items():
        n = max(2, round(full * fraction))
        shards = max(2, math.ceil(n / DOCS_PER_SHARD[source]))
        per = math.ceil(n / shards)
        for s in range(shards):
            if s * per < n:
                plan.append((source, s, s * per, min(per, n - s * per)))
    return plan


def _split(doc_id: str, source: str) -> str:
    return "validation" if random.Random(f"split/{doc_id}").random() < VALIDATION[source] else "train"


def generate_shard(task: tuple[str, str, int, int, int, int]) -> dict:
    """One clean shard: generated documents plus the planted duplicates that follow them."""
    from gap_replay.io import ShardWriter

    root, source, shard, first, count, seed = task
    gen = corpus(seed)
    rng = random.Random(f"{seed}/planted/{source}/{shard}")
    planted = {"exact": 0, "same_id": 0, "near": 0}
    path = Path(root) / "clean" / source / f"part-{shard:05d}.jsonl.gz"
    written = chars = 0
    with ShardWriter(path) as writer:
        for i in range(first, first + count):
            doc = gen.document(source, i)
            batch = [doc]
            if i > first and rng.random() < EXACT:  # an earlier text under a new id
                src = gen.document(source, rng.randrange(first, i))
                batch.append(Document(id=f"{src.id}-dup{i}", source=source, subset=src.subset,
                                      title=src.title, text=src.text, meta=dict(src.meta)))
                planted["exact"] += 1
            if source == "abstracts" and rng.random() < SAME_ID:  # the abstract of a paper: same id
                batch.append(Document(id=f"PMC{1_000_000 + i}", source=source, subset="pubmed",
                                      text=gen.document(source, i + 7).text))
                planted["same_id"] += 1
            if i > first and rng.random() < NEAR:  # near copies, sometimes a cluster of three
                src = gen.document(source, rng.randrange(first, i))
                for c in range(1 if rng.random() < 0.8 else 2):
                    batch.append(near_copy(src, rng, f"{src.id}-near{i}-{c}", edits=3))
                    planted["near"] += 1
            for d in batch:
                d.meta = {**d.meta, "split": _split(d.id, source)}
                writer.write(d)
                written += 1
                chars += len(d.text)
    return {"source": source, "documents": written, "chars": chars, **planted}


def tokenizer_json(seed: int) -> str:
    """A 32k word-level tokenizer.json (fast; stands in for SentencePiece in the mix phases)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    path = CACHE / f"wordlevel32k-{corpus(seed).key()}.json"  # the generated text changes with the key
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        gen = corpus(seed)
        texts = [gen.document(s, i).text for s, n in (("papers", 40), ("abstracts", 400), ("replay", 100))
                 for i in range(n)]
        tok = Tokenizer(models.WordLevel(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.train_from_iterator(texts, trainers.WordLevelTrainer(vocab_size=32_000, special_tokens=["<unk>"],
                                                                 show_progress=False))
        tmp = path.with_suffix(f".tmp-{os.getpid()}")
        tok.save(str(tmp))
        os.replace(tmp, path)
    return str(path)


def recipe_for(fraction: float, tokenizer: str):
    from gap_replay.recipe import load_recipe

    shards = {"train": max(1, round(1024 * fraction)), "validation": max(1, round(32 * fraction))}
    return load_recipe(overrides={"tokenizer": {"path": tokenizer}, "scale": fraction,
                                  "output": {"shards_per_split": shards}})


# ---------------------------------------------------------------- phases (run in a child process)

class PhaseTimer:
    """Wraps an executor: wall time and peak summed RSS of this process tree per `map` call."""

    def __init__(self, executor) -> None:
        self.executor = executor
        self.rows: list[dict] = []

    def __getattr__(self, name: str):
        return getattr(self.executor, name)

    def map(self, fn, tasks, desc: str = ""):
        return self.timed(desc, lambda: self.executor.map(fn, tasks, desc=desc), tasks=len(tasks))

    def timed(self, name: str, fn, tasks: int = 1):
        """Runs `fn`, recording its wall time and peak RSS; `tasks` = tasks it runs inside."""
        peak = list(tree_rss(os.getpid()))  # [summed, largest process]
        baseline = peak[1]  # this process before the phase: interpreter, imports
        done = threading.Event()

        def sample() -> None:
            while not done.wait(0.2):
                peak[:] = map(max, peak, tree_rss(os.getpid()))

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        start = time.perf_counter()
        try:
            return fn()
        finally:
            done.set()
            thread.join()
            secs = time.perf_counter() - start
            peak[:] = map(max, peak, tree_rss(os.getpid()))
            self.rows.append({"phase": name, "tasks": tasks, "seconds": round(secs, 2),
                              "peak_tree_rss_mb": round(peak[0] / MB, 1), "peak_process_rss_mb": round(peak[1] / MB, 1),
                              "baseline_rss_mb": round(baseline / MB, 1)})


def _observe_shard(task: tuple) -> int:
    """Map of a global step: feed one shard's documents to the step's observer."""
    from gap_replay.io import Quarantine, iter_documents

    kind, root, workdir, key, fraction, tokenizer = task
    step = _step(kind, fraction, tokenizer)
    observer = step.observer(workdir, key)
    n = 0
    for ordinal, doc in enumerate(iter_documents(str(Path(root) / "clean" / f"{key}.jsonl.gz"), Quarantine())):
        observer.observe(doc, ordinal)
        n += 1
    observer.close()
    return n


def _step(kind: str, fraction: float, tokenizer: str):
    from gap_replay.process import build_steps
    from gap_replay.stages.dedup import ExactDedup
    from gap_replay.stages.near_dedup import NearDedupStep

    wanted = ExactDedup if kind == "exact" else NearDedupStep
    return next(s for s in build_steps(recipe_for(fraction, tokenizer)) if isinstance(s, wanted))


def run_phase(name: str, root: Path, workers: int, fraction: float, seed: int) -> list[dict]:
    from gap_replay.executors import make_executor

    timer = PhaseTimer(make_executor("local", workers))
    tokenizer = tokenizer_json(seed)
    keys = sorted(str(p.relative_to(root / "clean"))[: -len(".jsonl.gz")] for p in (root / "clean").rglob("*.jsonl.gz"))
    if name == "generate":
        tasks = [(str(root), s, shard, first, n, seed) for s, shard, first, n in shard_plan(fraction)]
        results = timer.map(generate_shard, tasks, desc="generate")
        (root / "generated.json").write_text(json.dumps(results))
    elif name == "exact-dedup":
        workdir = str(root / "work" / "dedup")
        timer.map(_observe_shard, [("exact", str(root), workdir, k, fraction, tokenizer) for k in keys],
                  desc="exact-dedup map (keys)")
        step = _step("exact", fraction, tokenizer)
        summary = timer.timed("exact-dedup reduce (buckets x kinds)",
                              lambda: step.reduce(workdir, keys, timer.executor),
                              tasks=step.buckets * len(step.kinds))
        timer.rows[-1]["parallel"] = step.buckets  # the kinds run one after the other
        timer.rows[-1]["result"] = summary
    elif name == "near-dup":
        from gap_replay.stages.minhash.phases import ClusterTask, ReduceTask, cluster, reduce_band

        step = _step("near", fraction, tokenizer)
        workdir = str(root / "work" / "near_dedup")
        timer.map(_observe_shard, [("near", str(root), workdir, k, fraction, tokenizer) for k in keys],
                  desc="near-dup signatures")
        work = step._work(workdir)
        bands = timer.map(reduce_band, [ReduceTask(work, b, tuple(keys), step.config) for b in range(step.config.bands)],
                          desc="near-dup buckets (pairs per band)")
        timer.rows[-1]["result"] = {"pairs": sum(b["pairs"] for b in bands),
                                    "runs": sum(b.get("runs", 0) for b in bands)}
        report = timer.timed("near-dup clusters", lambda: cluster(ClusterTask(work, tuple(keys), step.config)))
        timer.rows[-1]["result"] = {k: report[k] for k in ("candidate_pairs", "verified_pairs", "clusters", "removed")}
    elif name == "mix":
        from gap_replay.mix import run_mix

        manifest = run_mix(str(root), str(root / "mixed"), recipe_for(fraction, tokenizer), timer)
        totals = manifest["totals"]
        timer.rows.append({"phase": "mix output", "result": {
            "tokens": totals["tokens"], "sequences": totals["documents"], "shards": len(manifest["shards"])}})
    return timer.rows


# ---------------------------------------------------------------- the parent

def child(name: str, root: Path, args) -> tuple[list[dict], float, float]:
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", name, "--root", str(root),
           "--workers", str(args.workers), "--fraction", str(args.fraction), "--seed", str(args.seed)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(SRC), "TQDM_DISABLE": "1"})
    out, err = proc.communicate()
    secs = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"phase {name} failed:\n{err.decode()[-3000:]}")
    rusage_mb = json.loads(out.decode().strip().splitlines()[-1])
    return rusage_mb["rows"], rusage_mb["max_rss_mb"], secs


def projection(row: dict, fraction: float, workers: int, cores: int, recipe_counts: dict) -> dict:
    """Full-corpus wall time and per-task memory of one measured phase (see docs/scale.md):
    time = seconds / fraction * (parallelism used here) / (parallelism there); the largest task's
    memory unchanged when a setting bounds it, else baseline + (peak - baseline) / fraction."""
    full_tasks, memory = next(v for k, v in SCALING.items() if row["phase"].startswith(k))
    full_tasks = recipe_counts.get(full_tasks, full_tasks)
    here = min(workers, row.get("parallel", row["tasks"]))
    there = min(cores, full_tasks)
    seconds = row["seconds"] / fraction * here / there
    peak, base = row["peak_process_rss_mb"], min(row["baseline_rss_mb"], row["peak_process_rss_mb"])
    task_mb = base + (peak - base) / fraction if memory == "docs" else peak
    return {"parallel_here": here, "parallel_full": there, "seconds_full": round(seconds),
            "memory_rule": memory, "task_mb_full": round(task_mb)}


def print_projection(report: dict, args) -> None:
    from gap_replay.process import build_steps
    from gap_replay.stages.dedup import ExactDedup
    from gap_replay.stages.near_dedup import NearDedupStep

    full = recipe_for(1.0, tokenizer_json(args.seed))
    steps = build_steps(full)
    counts = {"dedup_buckets": next(s for s in steps if isinstance(s, ExactDedup)).buckets,
              "bands": next(s for s in steps if isinstance(s, NearDedupStep)).config.bands,
              "output_shards": full.shards_per_split("train") + full.shards_per_split("validation")}
    print(f"\nprojection to the full corpus on {args.cores} cores (linear in documents; docs/scale.md):")
    print(f"{'phase':38s} {'par. here':>9} {'par. full':>9} {'wall s full':>11} {'task MB full':>12}  memory")
    total = 0
    for phase in report["phases"]:
        for row in phase["rows"]:
            if "seconds" not in row or row["phase"] == "generate":
                continue
            p = projection(row, args.fraction, args.workers, args.cores, counts)
            row["projection"] = p
            total += p["seconds_full"]
            print(f"{row['phase']:38s} {p['parallel_here']:>9} {p['parallel_full']:>9} {p['seconds_full']:>11,} "
                  f"{p['task_mb_full']:>12,}  {p['memory_rule']}")
    report["projected_seconds_full"] = total
    print(f"{'sum of the global and map phases':38s} {'':>9} {'':>9} {total:>11,}  ({total / 3600:.1f} h)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fraction", type=float, default=0.01, help="of the full corpus (0.001 for a quick check)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cores", type=int, default=64, help="cores of the full run, for the projection")
    ap.add_argument("--keep", type=Path, help="work here and keep everything (default: a temporary folder)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    ap.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.phase:  # child: one phase, figures as the last stdout line
        import resource

        rows = run_phase(args.phase, args.root, args.workers, args.fraction, args.seed)
        usage = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
        print(json.dumps({"rows": rows, "max_rss_mb": round(usage / 1024, 1)}, default=str))
        return

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))
    if args.keep and root.exists() and any(root.iterdir()):
        if not (root / "generated.json").exists():
            raise SystemExit(f"--keep {root}: the folder holds files of something else; pass a new or empty folder")
        shutil.rmtree(root)  # an earlier run of this script
    root.mkdir(parents=True, exist_ok=True)
    tokenizer_json(args.seed)  # built once, before the children race for it
    report: dict = {"fraction": args.fraction, "workers": args.workers, "cpu_count": os.cpu_count(),
                    "phases": []}
    total = 0.0
    print(f"fraction {args.fraction} of the full corpus, {args.workers} workers, in {root}")
    print(f"{'phase':38s} {'tasks':>5} {'wall s':>8} {'RSS MB':>7} {'tree MB':>8}  result")
    for name in PHASES:
        rows, max_rss, secs = child(name, root, args)
        total += secs
        for row in rows:
            if "seconds" in row:
                print(f"{row['phase']:38s} {row['tasks']:>5} {row['seconds']:>8.1f} {row['peak_process_rss_mb']:>7.0f} "
                      f"{row['peak_tree_rss_mb']:>8.0f}  {json.dumps(row.get('result', ''))[:70]}")
            else:
                print(f"{row['phase']:38s} {'':>5} {'':>8} {'':>7} {'':>8}  {json.dumps(row['result'])[:70]}")
        largest = max([max_rss] + [r.get("peak_process_rss_mb", 0) for r in rows])
        print(f"{'  (' + name + ': its child process)':38s} {'':>5} {secs:>8.1f} {largest:>7.0f}")
        report["phases"].append({"name": name, "seconds": round(secs, 2), "max_rss_mb": largest, "rows": rows})
    print_projection(report, args)
    generated = json.loads((root / "generated.json").read_text())
    docs = sum(g["documents"] for g in generated)
    by_source = {s: sum(g["documents"] for g in generated if g["source"] == s) for s in FULL_DOCS}
    planted = {k: sum(g[k] for g in generated) for k in ("exact", "same_id", "near")}
    chars = sum(g["chars"] for g in generated)
    report.update({"documents": docs, "by_source": by_source, "planted": planted, "text_mb": round(chars / MB, 1),
                   "total_seconds": round(total, 1), "load_avg_1m": round(os.getloadavg()[0], 2)})
    print(f"\n{docs:,} documents ({', '.join(f'{s} {n:,}' for s, n in by_source.items())}), "
          f"{chars / MB:,.0f} MB of text; planted {planted}")
    print(f"total {total:.0f} s on {args.workers} workers (load average {report['load_avg_1m']}, "
          f"{report['cpu_count']} cores; preliminary on a shared machine)")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
