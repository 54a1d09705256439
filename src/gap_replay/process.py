"""`process`: the shared stages over `OUT/raw/**` into `OUT/clean/` and `OUT/stats.json`.

The step list is assembled in ONE place, `build_steps`: other parts of the project (near-dedup,
decontamination, PubMed quality weights, corpus rules) insert their Stage or GlobalStep there.
Global steps cut the list into segments; every segment is one task per raw shard, run by any
executor; a global step's reduce runs between its two segments.

    read -> clean -> filter -> [dedup map] | reduce | dedup -> split -> OUT/clean/<source>/...
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import orjson

from gap_replay.executors import map_largest_first
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.io.jsonl import shard_key
from gap_replay.io.paths import atomic_write, exists, filesystem, join
from gap_replay.recipe import Recipe
from gap_replay.sources.ledger import acquire_stage
from gap_replay.stages.base import Stage, StageStats
from gap_replay.stages.clean import CleanStage
from gap_replay.stages.decontaminate import Decontaminate, DecontaminationConfig, merge_reports
from gap_replay.stages.dedup import ExactDedup
from gap_replay.stages.filter import FilterStage
from gap_replay.stages.global_step import GlobalStep
from gap_replay.stages.minhash.config import NearDedupConfig
from gap_replay.stages.near_dedup import NearDedupStep
from gap_replay.stages.split import SplitStage
from gap_replay.stages.upsample import Upsample
from gap_replay.tasks import (file_fingerprint, fingerprint, key_file, prepare_workdir, read_marker,
                              run_once, write_marker)

log = logging.getLogger(__name__)

Step = Stage | GlobalStep
# work/process-*/segment-*: written once, read once, deleted; zstd compresses 3x and
# decompresses 4x faster than gzip (and smaller). clean/ keeps gzip: it is the output.
INTERMEDIATE_SUFFIX = ".jsonl.zst"
READ_STAGE = "read"
ACQUIRE_STAGE = "acquire"  # first: what acquisition made of the input files (sources/ledger.py)


def build_steps(recipe: Recipe) -> list[Step]:
    """The shared processing steps, in order, configured from the recipe.

    Called in every task (stages count per task), so it must be cheap and deterministic.
    Insert new steps here: a Stage (per document) or a GlobalStep (map + reduce + filter).
    """
    srcs = recipe.sources
    steps: list[Step] = [
        CleanStage({s: recipe.clean_rules(s) for s in srcs}),
        FilterStage({s: recipe.min_chars(s) for s in srcs}, {s: recipe.languages(s) for s in srcs}),
    ]
    decontamination = DecontaminationConfig.from_recipe(recipe.data, recipe.origin)
    if decontamination.enabled:  # before dedup: contaminated text never wins a duplicate cluster
        steps.append(Decontaminate(decontamination))
    dedup = recipe.dedup
    if dedup["by_id"] or dedup["by_content"] or dedup["by_title"]:
        buckets = int(recipe.section("dedup", {}).get("exact", {}).get("buckets", 16))
        steps.append(ExactDedup({s: recipe.priority(s) for s in srcs}, dedup["by_id"],
                                dedup["by_content"], buckets=buckets, by_title=dedup["by_title"]))
    near = NearDedupConfig.from_recipe(recipe.data)
    if near.enabled:
        steps.append(NearDedupStep(near))
    upsampling = recipe.source("papers").get("upsampling") if "papers" in srcs else None
    if upsampling and upsampling.get("enabled", True):  # meta.quality_weight, read by the mix
        steps.append(Upsample(upsampling))
    steps.append(SplitStage(recipe.seed, {s: recipe.validation_fraction(s) for s in srcs}))
    return steps


def segments(steps: list[Step]) -> tuple[list[list[Stage]], list[GlobalStep]]:
    """Cut the step list at every GlobalStep: n globals give n + 1 segments of plain stages."""
    segs: list[list[Stage]] = [[]]
    globals_: list[GlobalStep] = []
    for step in steps:
        if isinstance(step, GlobalStep):
            globals_.append(step)
            segs.append([])
        else:
            segs[-1].append(step)
    return segs, globals_


@dataclass
class SegmentTask:
    """One shard through one segment (picklable: plain data only)."""

    recipe: dict[str, Any]
    recipe_origin: str | None
    segment: int
    key: str            # relative shard path without suffix, e.g. guidelines/nice/part-00000
    source: str         # the source directory the raw shard sits in
    input: str
    output: str
    workdir: str
    quarantine: str
    check_output: bool = True  # False when the next segment is done for the key (its input is gone)


def _read_raw(task: SegmentTask, recipe: Recipe, quarantine: Quarantine, read_stats: StageStats):
    """Documents of a raw shard; bad lines and unknown sources are quarantined and counted."""
    known = set(recipe.sources)
    for doc in iter_documents(task.input, quarantine, source=task.source):
        counts = read_stats.by_source[doc.source]
        if doc.source not in known:
            quarantine.add(file=task.input, line=None, reason=f"source {doc.source!r} is not in the recipe",
                           raw=doc.to_json(), source=doc.source)
            continue
        limit = recipe.max_chars(doc.source)
        if len(doc.text) > limit:  # before any stage: per-document work grows with its size
            quarantine.add(file=task.input, line=None, source=doc.source, raw=doc.text[:8192],
                           reason=f"document {doc.id} too large: {len(doc.text):,} characters "
                                  f"(limit sources.{doc.source}.max_chars = {limit:,})")
            continue
        counts.n_in += 1
        counts.n_out += 1
        yield doc
    for src, n in quarantine.by_source.items():
        read_stats.by_source[str(src)].n_in += n
        read_stats.by_source[str(src)].quarantined += n


def _run_segment(task: SegmentTask) -> dict:
    from gap_replay.recipe import recipe_from_dict
    from gap_replay.stages.base import Pipeline

    recipe = recipe_from_dict(task.recipe, task.recipe_origin)
    segs, globals_ = segments(build_steps(recipe))
    stages = list(segs[task.segment])
    if task.segment > 0:
        stages.insert(0, globals_[task.segment - 1].stage(task.workdir, task.key))
    observer = globals_[task.segment].observer(task.workdir, task.key) if task.segment < len(globals_) else None
    quarantine = Quarantine()
    read_stats = StageStats()
    if task.segment == 0:
        docs = _read_raw(task, recipe, quarantine, read_stats)
    else:
        docs = iter_documents(task.input, quarantine, source=task.source)
    pipeline = Pipeline(stages)
    n = 0
    with ShardWriter(task.output) as writer:
        for doc in pipeline.run(docs):
            writer.write(doc)
            if observer is not None:
                observer.observe(doc, n)
            n += 1
    if observer is not None:
        observer.close()
    if len(quarantine):
        quarantine.flush(task.quarantine)
    stats = pipeline.stats()
    reports = {s.name: s.report() for s in stages if hasattr(s, "report")}
    if task.segment == 0:
        read_stats.check(READ_STAGE)
        stats = {READ_STAGE: read_stats.to_dict(), **stats}
    # optional per-stage detail (e.g. clean: documents changed per rule)
    changes = {s.name: s.changes() for s in stages if hasattr(s, "changes")}
    return {"key": task.key, "documents": n, "stats": stats, "changes": changes, "reports": reports}


def run_segment_task(task: SegmentTask) -> dict:
    """Executor entry point: skip if the marker exists, else run and mark.

    Once the marker is written the previous segment's shard (this task's input) is consumed and
    deleted, so `process` holds about one intermediate copy of the corpus, not one per segment.
    """
    result = run_once(segment_marker(task.workdir, task.segment, task.key), lambda: _run_segment(task),
                      outputs=(task.output,) if task.check_output else ())
    if task.segment > 0:
        fs, path = filesystem(task.input)
        if fs.exists(path):
            fs.rm(path)
    return result


def _segments_done(workdir: str, output_dir: str, key: str, n_segments: int) -> list[bool]:
    """Per segment: is its work for `key` complete and its output still there or no longer
    needed (the next segment is complete)? A segment whose successor must run has to
    provide its output again, so it only counts as done while that output exists."""
    done = [False] * n_segments
    for i in reversed(range(n_segments)):
        out = (join(output_dir, "clean", key + ".jsonl.gz") if i == n_segments - 1
               else intermediate_path(workdir, i, key))
        done[i] = read_marker(segment_marker(workdir, i, key)) is not None and (
            (i < n_segments - 1 and done[i + 1]) or exists(out))
    return done


def intermediate_path(workdir: str, segment: int, key: str) -> str:
    return join(workdir, f"segment-{segment}", key + INTERMEDIATE_SUFFIX)


def segment_marker(workdir: str, segment: int, key: str) -> str:
    return join(workdir, "markers", f"segment-{segment}", key_file(key) + ".json")


def merge_stats(results: list[dict]) -> dict[str, dict]:
    """Sum per-task stage counts; stage order follows the pipeline; every stage reconciles."""
    merged: dict[str, StageStats] = {}
    for result in results:
        for stage, by_source in result["stats"].items():
            merged.setdefault(stage, StageStats()).merge(by_source)
    for stage, stats in merged.items():
        stats.check(stage)
    return {stage: stats.to_dict() for stage, stats in merged.items()}


def merge_changes(results: list[dict]) -> dict[str, dict]:
    """Sum per-task {stage: {source: {rule: n}}} detail counts."""
    merged: dict[str, dict[str, dict[str, int]]] = {}
    for result in results:
        for stage, by_source in result.get("changes", {}).items():
            for source, counts in by_source.items():
                target = merged.setdefault(stage, {}).setdefault(source, {})
                for rule, n in counts.items():
                    target[rule] = target.get(rule, 0) + n
    return {stage: {src: dict(sorted(c.items())) for src, c in sorted(by.items())}
            for stage, by in merged.items()}


def check_chain(stages: dict[str, dict]) -> None:
    """What leaves one stage enters the next, per source (nothing lost between segments)."""
    names = list(stages)
    for prev, nxt in zip(names, names[1:]):
        for src, counts in stages[prev].items():
            entered = stages[nxt].get(src, {"in": 0})["in"]
            if counts["out"] != entered:
                raise AssertionError(f"source {src!r}: {counts['out']} left {prev!r} but {entered} entered {nxt!r}")


def run_process(input_dir: str, output_dir: str, recipe: Recipe, executor,
                sources: list[str] | None = None) -> dict:
    """Run the shared stages; returns the stats dict also written to OUT/stats.json."""
    raw_root = join(input_dir, "raw")
    wanted = set(sources or recipe.sources)
    shards = []
    for path in list_shards(raw_root):
        source = shard_key(raw_root, path).split("/", 1)[0]
        if source not in recipe.sources:
            log.warning("skipping %s: source %r is not in the recipe", path, source)
        elif source in wanted:
            shards.append((path, source))
    if not shards:
        raise FileNotFoundError(f"no raw shards for {', '.join(sorted(wanted))} below {raw_root}")
    # steps that read files of their own (benchmark files) add those files' identity
    inputs = [step.input_fingerprint() for step in build_steps(recipe) if hasattr(step, "input_fingerprint")]
    identity = file_fingerprint([p for p, _ in shards])
    fp = fingerprint("process", recipe.fingerprint(), identity, *inputs)
    workdir, resumed = prepare_workdir(output_dir, "process", fp, ["clean", "quarantine/process"])
    log.info("process: %d raw shard(s), work dir %s%s", len(shards), workdir, " (resuming)" if resumed else "")

    segs, globals_ = build_steps_segments(recipe)
    keys = [shard_key(raw_root, p) for p, _ in shards]
    done = {k: _segments_done(workdir, output_dir, k, len(segs)) for k in keys}
    if globals_ and _reset_if_consumed(workdir, done):
        done = {k: _segments_done(workdir, output_dir, k, len(segs)) for k in keys}
    results: list[dict] = []
    reports: dict[str, dict] = {}
    for i in range(len(segs)):
        last = i == len(segs) - 1
        tasks = []
        for (path, source), key in zip(shards, keys):
            src_path = path if i == 0 else intermediate_path(workdir, i - 1, key)
            out = join(output_dir, "clean", key + ".jsonl.gz") if last else intermediate_path(workdir, i, key)
            tasks.append(SegmentTask(recipe.data, recipe.origin, i, key, source, src_path, out, workdir,
                                     join(output_dir, "quarantine", "process", key_file(key) + f".segment-{i}.jsonl"),
                                     check_output=last or not done[key][i + 1]))
        names = [s.name for s in segs[i]] or ["copy"]
        seg_results = map_largest_first(executor, run_segment_task, tasks, [size for _, size, _ in identity],
                                        desc=f"process [{' '.join(names)}]")
        skipped = sum(r["skipped"] for r in seg_results)
        if skipped:
            log.info("segment %d: %d of %d task(s) already complete, skipped", i, skipped, len(tasks))
        results.extend(seg_results)
        if not last:
            step = globals_[i]
            marker = join(workdir, "markers", f"reduce-{i}-{step.name}.json")
            summary = run_once(marker, lambda: step.reduce(workdir, keys, executor) or {})
            _remove_paths(step.reduce_inputs(workdir))
            reports[step.name] = {k: v for k, v in summary.items() if k != "skipped"}
            log.info("%s reduce: %s", step.name, reports[step.name])
    read_by_key = {r["key"]: r["stats"][READ_STAGE] for r in results if READ_STAGE in r["stats"]}
    acquired_stage = acquire_stage(input_dir, [(k, p) for k, (p, _) in zip(keys, shards)],
                                   read_by_key, wanted)
    stages = {ACQUIRE_STAGE: acquired_stage, **merge_stats(results)}
    check_stage = StageStats()
    check_stage.merge(acquired_stage)
    check_stage.check(ACQUIRE_STAGE)
    check_chain(stages)  # acquire -> read: every document acquisition left in a shard was read
    stats = {"stages": stages, "changes": merge_changes(results)}
    if "near_dedup" in reports:  # clusters, removed per source, example pairs
        stats["near_dedup"] = reports["near_dedup"]
    decontamination = [r["reports"][Decontaminate.name] for r in results
                       if Decontaminate.name in r.get("reports", {})]
    if decontamination:  # per benchmark: documents dropped/trimmed, n-gram hits, examples
        stats["decontamination"] = merge_reports(decontamination)
    acquired = join(input_dir, "acquire.json")
    if "://" not in acquired and os.path.exists(acquired):  # what each acquirer reported
        with open(acquired, "rb") as fh:
            stats["acquire"] = orjson.loads(fh.read())
    with atomic_write(join(output_dir, "stats.json")) as fh:
        # stages stay in pipeline order; everything inside is already sorted
        fh.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")
    with atomic_write(join(output_dir, "recipe.json")) as fh:
        fh.write(recipe_for_output(recipe) + b"\n")
    _remove_consumed(workdir, len(segs), globals_)
    return stats


def build_steps_segments(recipe: Recipe):
    return segments(build_steps(recipe))


def recipe_for_output(recipe: Recipe) -> bytes:
    """The recipe as run, with the tokenizer path made absolute so `mix` finds it from OUT."""
    data = dict(recipe.data)
    path = data["tokenizer"]["path"]
    if not path.startswith(("sample:", "hf:")):  # those spellings mean the same from anywhere
        data["tokenizer"] = {**data["tokenizer"], "path": recipe.tokenizer_path()}
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


def _consumed_marker(workdir: str) -> str:
    return join(workdir, "markers", "consumed.json")


def _remove_consumed(workdir: str, n_segments: int, globals_: list[GlobalStep]) -> None:
    """Once every shard is in clean/, only the markers are needed (a rerun reads nothing else):
    segment shards and the global steps' files go. The marker saying so is written first."""
    if globals_ and read_marker(_consumed_marker(workdir)) is None:
        write_marker(_consumed_marker(workdir), {"removed": "segment shards and global step files"})
    paths = [join(workdir, f"segment-{i}") for i in range(n_segments - 1)]
    for step in globals_:
        paths += step.reduce_inputs(workdir) + step.decisions(workdir)
    _remove_paths(paths)


def _reset_if_consumed(workdir: str, done: dict[str, list[bool]]) -> bool:
    """A clean shard that disappeared after a completed run cannot be rebuilt from the markers:
    the global steps' decisions it needs are gone. Start the work directory again (same bytes)."""
    if read_marker(_consumed_marker(workdir)) is None or all(d[-1] for d in done.values()):
        return False
    log.info("process: a clean shard is missing after a completed run; running every segment again")
    fs, path = filesystem(workdir)
    fs.rm(path, recursive=True)
    fs.makedirs(path, exist_ok=True)
    return True


def _remove_paths(paths: list[str]) -> None:
    for p in paths:
        fs, path = filesystem(p)
        if fs.exists(path):
            fs.rm(path, recursive=True)
