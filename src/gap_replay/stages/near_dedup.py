"""Near-duplicate removal: MinHash-LSH over word 5-grams, as disk-based map/reduce phases.

    NearDedup(config, work_root).run(executor, shards)     # phases (a) signatures, (b) buckets, (c) clusters
    NearDuplicateFilter(removals).run(docs)                 # phase (d), per shard, inside a pipeline

`run_near_dedup(...)` chains all four over a list of shards for a standalone run. Every phase writes
atomically and leaves a marker, so a run killed in any phase resumes where it stopped and gives the
same bytes. Which document of a cluster survives is decided by `NearDedupConfig.keep_key`.
"""

from __future__ import annotations

import logging
import os
import signal
from dataclasses import dataclass

import orjson

from gap_replay.document import Document
from gap_replay.hashing import content_hash
from gap_replay.io import Quarantine, ShardWriter, iter_documents, join
from gap_replay.io.paths import exists, filesystem, read_json, remove_stale_temporaries
from gap_replay.stages.base import Pipeline, Stage, StageStats
from gap_replay.stages.global_step import GlobalStep, Observer
from gap_replay.stages.minhash.config import NearDedupConfig
from gap_replay.stages.minhash.phases import (ClusterTask, MapTask, ReduceTask, ShardSigner, cluster,
                                              load_removals, map_shard, reduce_band, shard_dir, write_json)

log = logging.getLogger(__name__)

REASON = "near_duplicate"
# Test hook: "near_dedup.map" or "near_dedup.reduce" SIGKILLs the process right after that phase.
FAIL_AFTER_ENV = "GAP_REPLAY_FAIL_AFTER"


def _maybe_die(phase: str) -> None:
    if os.environ.get(FAIL_AFTER_ENV) == phase:
        log.warning("%s=%s: killing this process (test hook)", FAIL_AFTER_ENV, phase)
        os.kill(os.getpid(), signal.SIGKILL)


class NearDuplicateFilter(Stage):
    """Phase (d): drops the documents phase (c) marked as non-kept members of a cluster."""

    name = "near_dedup"

    def __init__(self, removals: dict[str, dict]) -> None:
        super().__init__()
        self.removals = removals

    def process(self, doc: Document) -> Document | None:
        if doc.id in self.removals:
            self.drop(doc, REASON)
            return None
        return doc


class NearDedup:
    """Phases (a)-(c) over a fixed, ordered list of shards; intermediates under `work_root`.

    The work directory is named by a fingerprint of the settings and the input shards (path and
    size), so changed inputs or settings never reuse stale markers.
    """

    def __init__(self, config: NearDedupConfig, work_root: str) -> None:
        self.config = config
        self.work_root = str(work_root)
        self.work: str | None = None
        self.shards: list[str] = []
        self.names: tuple[str, ...] = ()

    def _fingerprint(self, shards: list[str]) -> str:
        parts = [self.config.fingerprint()]
        for shard in shards:
            fs, p = filesystem(shard)
            parts.append(f"{shard}\x1f{fs.size(p)}")
        return content_hash("\x1e".join(parts))[:16]

    def prepare(self, shards: list[str]) -> str:
        self.shards = list(shards)
        self.names = tuple(f"shard-{i:05d}" for i in range(len(self.shards)))
        self.work = join(self.work_root, self._fingerprint(self.shards))
        remove_stale_temporaries(self.work)
        return self.work

    def run(self, executor, shards: list[str]) -> dict:
        work = self.prepare(shards)
        config = self.config
        maps = executor.map(map_shard, [MapTask(s, n, work, config) for s, n in zip(self.shards, self.names)],
                            desc="near-dedup: signatures")
        _maybe_die("near_dedup.map")
        executor.map(reduce_band, [ReduceTask(work, b, self.names, config) for b in range(config.bands)],
                     desc="near-dedup: buckets")
        _maybe_die("near_dedup.reduce")
        report = executor.map(cluster, [ClusterTask(work, self.names, config)],
                              desc="near-dedup: clusters")[0]
        report = {k: v for k, v in report.items() if k != "skipped"}
        report["documents"] = sum(m["documents"] for m in maps)
        report["signed"] = sum(m["signed"] for m in maps)
        log.info("near-dedup: %d clusters, %d of %d documents removed", report["clusters"],
                 report["removed"], report["documents"])
        return report

    def removals(self, index: int) -> dict[str, dict]:
        if self.work is None:
            raise RuntimeError("NearDedup.run (or prepare) must come first")
        return load_removals(self.work, self.names[index])

    def stage(self, index: int) -> NearDuplicateFilter:
        return NearDuplicateFilter(self.removals(index))


@dataclass(frozen=True)
class FilterTask:
    source_shard: str
    output_shard: str
    work: str
    name: str


def filter_shard(task: FilterTask) -> dict:
    """Phase (d) as a standalone task: copy a shard without its near-duplicates; returns stage stats."""
    marker = join(task.work, "filter", f"{task.name}.json")
    if exists(marker) and exists(task.output_shard):
        return read_json(marker)
    quarantine = Quarantine()
    stage = NearDuplicateFilter(load_removals(task.work, task.name))
    pipeline = Pipeline([stage])
    with ShardWriter(task.output_shard) as writer:
        for doc in pipeline.run(iter_documents(task.source_shard, quarantine)):
            writer.write(doc)
    stats = pipeline.stats()[stage.name]
    for source, n in quarantine.by_source.items():  # bad lines count as quarantined inputs
        counts = stats.setdefault(source, {"in": 0, "out": 0, "dropped": {}, "quarantined": 0})
        counts["in"] += n
        counts["quarantined"] += n
    if len(quarantine):
        quarantine.flush(join(task.work, "filter", f"{task.name}.quarantine.jsonl"))
    write_json(marker, stats)
    return stats


def run_near_dedup(executor, shards: list[str], outputs: list[str], config: NearDedupConfig,
                   work_root: str) -> dict:
    """All four phases: `shards[i]` is copied to `outputs[i]` without its near-duplicates.

    Returns {"report": clusters report, "stats": {source: in/out/dropped/quarantined}}.
    """
    if len(shards) != len(outputs):
        raise ValueError("one output path per input shard is needed")
    dedup = NearDedup(config, work_root)
    report = dedup.run(executor, shards)
    results = executor.map(filter_shard, [FilterTask(s, o, dedup.work, n)
                                          for s, o, n in zip(shards, outputs, dedup.names)],
                           desc="near-dedup: filter")
    merged = StageStats()
    for stats in results:
        merged.merge(stats)
    merged.check(NearDuplicateFilter.name)
    return {"report": report, "stats": merged.to_dict()}


def report_json(report: dict) -> bytes:
    return orjson.dumps(report, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


# ---------------------------------------------------------------- inside `process` (a GlobalStep)


class _SignatureObserver(Observer):
    """Phase (a) inside a process segment: signs the documents a task writes."""

    def __init__(self, work: str, task_key: str, config: NearDedupConfig) -> None:
        self.out = shard_dir(work, task_key)
        self.signer = ShardSigner(config)

    def observe(self, doc: Document, ordinal: int) -> None:
        self.signer.add(doc, ordinal)

    def close(self) -> None:
        self.signer.write(self.out)


class NearDedupStep(GlobalStep):
    """`process`'s near-duplicate step: signatures while the previous segment writes its shards,
    (b)+(c) as the reduce, and the filter as the first stage of the next segment.

    The process work directory is already named by the recipe and input fingerprint, so the
    phase files live directly below it in `near_dedup/`; the report lands in stats.json.
    """

    name = "near_dedup"

    def __init__(self, config: NearDedupConfig) -> None:
        self.config = config

    @staticmethod
    def _work(workdir: str) -> str:
        return join(workdir, "near_dedup")

    def observer(self, workdir: str, task_key: str) -> Observer:
        return _SignatureObserver(self._work(workdir), task_key, self.config)

    def reduce(self, workdir: str, task_keys, executor) -> dict:
        _maybe_die("near_dedup.map")
        work, names, config = self._work(workdir), tuple(task_keys), self.config
        remove_stale_temporaries(work)
        executor.map(reduce_band, [ReduceTask(work, b, names, config) for b in range(config.bands)],
                     desc="near-dedup: buckets")
        _maybe_die("near_dedup.reduce")
        report = executor.map(cluster, [ClusterTask(work, names, config)], desc="near-dedup: clusters")[0]
        report = {k: v for k, v in report.items() if k != "skipped"}
        log.info("near-dedup: %d clusters, %d documents removed %s", report["clusters"],
                 report["removed"], report["removed_by_source"])
        return report

    def stage(self, workdir: str, task_key: str) -> Stage:
        return NearDuplicateFilter(load_removals(self._work(workdir), task_key))

    def reduce_inputs(self, workdir: str) -> list[str]:  # signatures, buckets, candidate pairs
        return [join(self._work(workdir), "map"), join(self._work(workdir), "pairs")]

    def decisions(self, workdir: str) -> list[str]:
        return [self._work(workdir)]
