"""`process`: the shared stages over `OUT/raw/**` into `OUT/clean/` and `OUT/stats.json`.

The step list is ONE tuple, `STEPS`: every entry is a Stage or GlobalStep class that configures
itself from the recipe (`from_recipe`, None when the recipe turns it off; stages/base.py).
Global steps cut the list into segments; every segment is one task per raw shard, run by any
executor; a global step's reduce runs between its two segments. `run_stages` is that driver and
the only one (`decontaminate` and near-dedup alone run through it too).

    read -> clean -> filter -> [dedup map] | reduce | dedup -> split -> OUT/clean/<source>/...
"""

from __future__ import annotations

import copy
import logging
import os
from dataclasses import dataclass

import orjson

from gap_replay.executors import map_largest_first
from gap_replay.io import Quarantine, ShardWriter, iter_documents, list_shards
from gap_replay.io.jsonl import shard_key
from gap_replay.io.paths import atomic_write, exists, filesystem, join, remove
from gap_replay.recipe import Recipe, recipe_from_dict
from gap_replay.sources.ledger import acquire_stage
from gap_replay.stages.base import Stage, StageStats
from gap_replay.stages.clean import CleanStage
from gap_replay.stages.decontaminate import Decontaminate, merge_reports
from gap_replay.stages.dedup import ExactDedup
from gap_replay.stages.filter import FilterStage
from gap_replay.stages.global_step import GlobalStep
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


# The shared processing steps, in order. Insert a new step here: a Stage (per document) or a
# GlobalStep (map + reduce + filter) with its own `from_recipe`. Decontamination comes before
# dedup, so contaminated text never wins a duplicate cluster; upsample sets meta.quality_weight,
# read by the mix.
STEPS: tuple[type[Step], ...] = (CleanStage, FilterStage, Decontaminate, ExactDedup, NearDedupStep,
                                 Upsample, SplitStage)


def build_steps(recipe: Recipe) -> list[Step]:
    """The steps of STEPS the recipe turns on, each configured from it.

    Called in every task (stages count per task), so it must be cheap and deterministic.
    """
    return [step for cls in STEPS if (step := cls.from_recipe(recipe)) is not None]


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


@dataclass(frozen=True)
class RecipePlan:
    """`process`'s steps: rebuilt from the recipe in every task, raw shards read by its rules."""

    recipe: dict
    origin: str | None

    def steps(self) -> list[Step]:
        return build_steps(recipe_from_dict(self.recipe, self.origin))

    def read(self, task: SegmentTask, quarantine: Quarantine, read_stats: StageStats):
        return _read_raw(task, recipe_from_dict(self.recipe, self.origin), quarantine, read_stats)


@dataclass(frozen=True)
class StepsPlan:
    """Given steps (`decontaminate`, near-dedup alone): a fresh copy per task, so no two tasks
    share a stage's counts on an in-process executor; shards read as they are."""

    given: tuple[Step, ...]

    def steps(self) -> list[Step]:
        return copy.deepcopy(list(self.given))

    def read(self, task: SegmentTask, quarantine: Quarantine, read_stats: StageStats):
        return _read_shard(task, quarantine, read_stats)


@dataclass(frozen=True)
class Shard:
    """One input shard of a run and where its result goes; `output == path` rewrites it in
    place (written below the work directory, moved over the input once its marker exists)."""

    path: str
    key: str            # relative shard path without suffix, e.g. guidelines/nice/part-00000
    output: str
    source: str = "unknown"  # the source directory the shard sits in


@dataclass
class SegmentTask:
    """One shard through one segment (picklable: plain data and a plan)."""

    plan: RecipePlan | StepsPlan
    segment: int
    key: str
    source: str
    input: str
    output: str
    workdir: str
    quarantine: str
    check_output: bool = True  # False when the next segment is done for the key (its input is gone)
    publish: str | None = None  # in place: move `output` here once the marker is written


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
    _count_quarantined(quarantine, read_stats)


def _read_shard(task: SegmentTask, quarantine: Quarantine, read_stats: StageStats):
    """Documents of any shard; bad lines are quarantined and counted."""
    for doc in iter_documents(task.input, quarantine, source=task.source):
        counts = read_stats.by_source[doc.source]
        counts.n_in += 1
        counts.n_out += 1
        yield doc
    _count_quarantined(quarantine, read_stats)


def _count_quarantined(quarantine: Quarantine, read_stats: StageStats) -> None:
    """Quarantined lines entered `read` and left it as quarantined (the chain reconciles)."""
    for src, n in quarantine.by_source.items():
        read_stats.by_source[str(src)].n_in += n
        read_stats.by_source[str(src)].quarantined += n


def _run_segment(task: SegmentTask) -> dict:
    from gap_replay.stages.base import Pipeline

    segs, globals_ = segments(task.plan.steps())
    stages = list(segs[task.segment])
    if task.segment > 0:
        stages.insert(0, globals_[task.segment - 1].stage(task.workdir, task.key))
    observer = globals_[task.segment].observer(task.workdir, task.key) if task.segment < len(globals_) else None
    quarantine = Quarantine()
    read_stats = StageStats()
    if task.segment == 0:
        docs = task.plan.read(task, quarantine, read_stats)
    else:
        docs = iter_documents(task.input, quarantine, source=task.source)
    pipeline = Pipeline(stages)
    n = 0
    with ShardWriter(task.output, fast=True) as writer:  # read back by the next stage
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
    reports = {s.name: s.report() for s in stages}
    if task.segment == 0:
        read_stats.check(READ_STAGE)
        stats = {READ_STAGE: read_stats.to_dict(), **stats}
    # per-stage detail, empty for most stages (clean: documents changed per rule)
    changes = {s.name: s.changes() for s in stages}
    return {"key": task.key, "documents": n, "stats": stats, "changes": changes, "reports": reports}


def run_segment_task(task: SegmentTask) -> dict:
    """Executor entry point: skip if the marker exists, else run and mark.

    Once the marker is written the previous segment's shard (this task's input) is consumed and
    deleted, so `process` holds about one intermediate copy of the corpus, not one per segment.
    """
    result = run_once(segment_marker(task.workdir, task.segment, task.key), lambda: _run_segment(task),
                      outputs=(task.output,) if task.check_output else ())
    if task.publish is not None and exists(task.output):  # in place: after the marker
        fs, path = filesystem(task.output)
        fs.mv(path, filesystem(task.publish)[1])
    if task.segment > 0:
        remove(task.input)
    return result


def _segments_done(workdir: str, shard: Shard, n_segments: int) -> list[bool]:
    """Per segment: is its work for the shard complete and its output still there or no longer
    needed (the next segment is complete)? A segment whose successor must run has to
    provide its output again, so it only counts as done while that output exists. An in-place
    result counts once marked: its task moves it over the input if the move is still pending."""
    done = [False] * n_segments
    for i in reversed(range(n_segments)):
        last = i == n_segments - 1
        out = shard.output if last else intermediate_path(workdir, i, shard.key)
        done[i] = read_marker(segment_marker(workdir, i, shard.key)) is not None and (
            (not last and done[i + 1]) or (last and shard.output == shard.path) or exists(out))
    return done


def _staged_path(workdir: str, shard: Shard) -> str:
    """Where an in-place result is written before it replaces its input (same suffix)."""
    name = shard.output.rsplit("/", 1)[-1]
    return join(workdir, "staged", shard.key + name[name.index(".jsonl"):] if ".jsonl" in name else shard.key)


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
                sources: list[str] | None = None, prior: list[str] | None = None) -> dict:
    """Run the shared stages; returns the stats dict also written to OUT/stats.json.

    `prior`: clean shards of documents already published (refresh's reused ones); exact dedup
    counts them as winners, so a document here that duplicates one of them is dropped."""
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
    inputs = [i for step in build_steps(recipe) if (i := step.input_fingerprint()) is not None]
    identity = file_fingerprint([p for p, _ in shards])
    if prior:  # the prior's identity too: other published documents, other decisions
        inputs.append(["prior", file_fingerprint(list(prior))])
    fp = fingerprint("process", recipe.fingerprint(), identity, *inputs)
    workdir, resumed = prepare_workdir(output_dir, "process", fp, ["clean", "quarantine/process"])
    log.info("process: %d raw shard(s), work dir %s%s", len(shards), workdir, " (resuming)" if resumed else "")

    keys = [shard_key(raw_root, p) for p, _ in shards]
    jobs = [Shard(path, key, join(output_dir, "clean", key + ".jsonl.gz"), source)
            for (path, source), key in zip(shards, keys)]
    results, reports = run_stages(jobs, RecipePlan(recipe.data, recipe.origin), executor, workdir,
                                  join(output_dir, "quarantine", "process"), prior=prior or ())
    read_by_key = {r["key"]: r["stats"][READ_STAGE] for r in results if READ_STAGE in r["stats"]}
    acquired_stage = acquire_stage(input_dir, [(k, p) for k, (p, _) in zip(keys, shards)],
                                   read_by_key, wanted)
    stages = {ACQUIRE_STAGE: acquired_stage, **merge_stats(results)}
    check_stage = StageStats()
    check_stage.merge(acquired_stage)
    check_stage.check(ACQUIRE_STAGE)
    check_chain(stages)  # acquire -> read: every document acquisition left in a shard was read
    stats = {"stages": stages, "changes": merge_changes(results)}
    if prior and ExactDedup.name in reports:  # per kind; `prior`: dropped as twins of published ones
        stats[ExactDedup.name] = reports[ExactDedup.name]
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
    return stats


def run_stages(shards: list[Shard], plan: RecipePlan | StepsPlan, executor, workdir: str,
               quarantine_dir: str, name: str = "process", keep_work: bool = False,
               prior: list[str] | tuple[str, ...] = ()) -> tuple[list[dict], dict[str, dict]]:
    """The one driver of stages over shards (`process`, `decontaminate`, near-dedup alone):
    one task per shard and segment with a marker (`run_once`), atomic shard writes, a global
    step's reduce between its segments. Returns (per-task results, reduce reports by step).
    `keep_work` keeps the global steps' files (tests and benchmarks inspect them). `prior`:
    published clean shards, mapped by exact dedup as winners before its reduce (run_process)."""
    segs, globals_ = segments(plan.steps())
    for step in [stage for seg in segs for stage in seg] + globals_:
        step.warm()  # before the first map forks the workers: each starts with the models
    keys = [s.key for s in shards]
    sizes = [size for _, size, _ in file_fingerprint([s.path for s in shards])]
    done = {s.key: _segments_done(workdir, s, len(segs)) for s in shards}
    if globals_ and _reset_if_consumed(workdir, done):
        done = {s.key: _segments_done(workdir, s, len(segs)) for s in shards}
    results: list[dict] = []
    reports: dict[str, dict] = {}
    for i in range(len(segs)):
        last = i == len(segs) - 1
        tasks = []
        for shard in shards:
            in_place = last and shard.output == shard.path
            src_path = shard.path if i == 0 else intermediate_path(workdir, i - 1, shard.key)
            out = (_staged_path(workdir, shard) if in_place else shard.output) if last \
                else intermediate_path(workdir, i, shard.key)
            tasks.append(SegmentTask(plan, i, shard.key, shard.source, src_path, out, workdir,
                                     join(quarantine_dir, key_file(shard.key) + f".segment-{i}.jsonl"),
                                     check_output=not in_place and (last or not done[shard.key][i + 1]),
                                     publish=shard.output if in_place else None))
        names = [s.name for s in segs[i]] or ["copy"]
        seg_results = map_largest_first(executor, run_segment_task, tasks, sizes,
                                        desc=f"{name} [{' '.join(names)}]")
        skipped = sum(r["skipped"] for r in seg_results)
        if skipped:
            log.info("segment %d: %d of %d task(s) already complete, skipped", i, skipped, len(tasks))
        results.extend(seg_results)
        if not last:
            step = globals_[i]
            marker = join(workdir, "markers", f"reduce-{i}-{step.name}.json")
            task_keys = keys + (step.map_prior(workdir, prior, executor) if prior else [])
            summary = run_once(marker, lambda: step.reduce(workdir, task_keys, executor) or {})
            if not keep_work:
                _remove_paths(step.reduce_inputs(workdir))
            reports[step.name] = {k: v for k, v in summary.items() if k != "skipped"}
            log.info("%s reduce: %s", step.name, reports[step.name])
    if not keep_work:
        _remove_consumed(workdir, len(segs), globals_)
    return results, reports


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
        remove(p)
