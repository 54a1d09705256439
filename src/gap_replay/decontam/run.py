"""`gap-replay decontaminate` over an existing `OUT/clean/`: one task per clean shard.

Each task writes the decontaminated shard to a staging file, records its result in a marker,
then renames the staging file over the clean shard; a rerun of a killed run finishes any pending
rename and skips completed shards. The counts are merged into OUT/stats.json once per run
(stage `decontaminate_clean`, after the process stages, plus the per-benchmark
`decontamination` report).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import orjson

from gap_replay.io import Quarantine, ShardWriter, iter_documents, join, list_shards
from gap_replay.io.paths import atomic_write, exists, filesystem, read_json, remove_stale_temporaries
from gap_replay.stages.base import Pipeline, StageStats
from gap_replay.stages.decontaminate import Decontaminate, DecontaminationConfig, merge_reports
from gap_replay.tasks import fingerprint, key_file, read_marker, write_marker

log = logging.getLogger(__name__)

STAGE = "decontaminate_clean"


@dataclass(frozen=True)
class CleanShardTask:
    shard: str
    key: str
    staged: str
    marker: str
    quarantine: str
    config: DecontaminationConfig


def _move(src: str, dst: str) -> None:
    fs, s = filesystem(src)
    fs.mv(s, filesystem(dst)[1])


def decontaminate_shard(task: CleanShardTask) -> dict:
    done = read_marker(task.marker)
    if done is not None:
        if exists(task.staged):  # killed between the marker and the rename
            _move(task.staged, task.shard)
        return {**done, "skipped": True}
    quarantine = Quarantine()
    stage = Decontaminate(task.config)
    pipeline = Pipeline([stage])
    with ShardWriter(task.staged) as writer:
        for doc in pipeline.run(iter_documents(task.shard, quarantine)):
            writer.write(doc)
    stats = pipeline.stats()[stage.name]
    for source, n in quarantine.by_source.items():
        counts = stats.setdefault(source, {"in": 0, "out": 0, "dropped": {}, "quarantined": 0})
        counts["in"] += n
        counts["quarantined"] += n
    if len(quarantine):
        quarantine.flush(task.quarantine)
    result = {"key": task.key, "stats": stats, "report": stage.report()}
    write_marker(task.marker, result)
    _move(task.staged, task.shard)
    return {**result, "skipped": False}


def _chain_merge(previous: dict, new: dict) -> dict:
    """A second pass over the same clean/ extends the first: in stays, out is the new out."""
    merged = {}
    for source in sorted(set(previous) | set(new)):
        old = previous.get(source, {"in": 0, "out": 0, "dropped": {}, "quarantined": 0})
        cur = new.get(source, {"in": old["out"], "out": old["out"], "dropped": {}, "quarantined": 0})
        dropped = dict(old["dropped"])
        for reason, n in cur["dropped"].items():
            dropped[reason] = dropped.get(reason, 0) + n
        merged[source] = {"in": old["in"] if source in previous else cur["in"], "out": cur["out"],
                          "dropped": dict(sorted(dropped.items())),
                          "quarantined": old["quarantined"] + cur["quarantined"]}
    return merged


def run_decontaminate(output_dir: str, config: DecontaminationConfig, executor) -> dict:
    """Decontaminate OUT/clean in place; returns {"stage": counts, "benchmarks": report}."""
    clean = join(output_dir, "clean")
    shards = list_shards(clean)
    if not shards:
        raise FileNotFoundError(f"no clean shards below {clean}: run `gap-replay process` first")
    keys = [s[len(clean.rstrip('/')) + 1:] for s in shards]
    fp = fingerprint("decontaminate", config.fingerprint(), keys)
    workdir = join(output_dir, "work", f"decontaminate-{fp}")
    remove_stale_temporaries(clean)
    remove_stale_temporaries(workdir)
    tasks = [CleanShardTask(shard, key, join(workdir, "staged", key), join(workdir, "markers", key_file(key) + ".json"),
                            join(output_dir, "quarantine", "decontaminate", key_file(key) + ".jsonl"), config)
             for shard, key in zip(shards, keys)]
    results = executor.map(decontaminate_shard, tasks, desc="decontaminate")
    skipped = sum(r["skipped"] for r in results)
    if skipped:
        log.info("decontaminate: %d of %d shard(s) already done, skipped", skipped, len(tasks))
    merged = StageStats()
    for r in results:
        merged.merge(r["stats"])
    merged.check(STAGE)
    stage = merged.to_dict()
    report = merge_reports([r["report"] for r in results], config.examples)

    stats_path = join(output_dir, "stats.json")
    stats = read_json(stats_path, missing={"stages": {}})
    runs = stats.setdefault("decontamination_runs", [])
    if fp not in runs:  # a rerun after a kill must not count the same pass twice
        stats["stages"][STAGE] = _chain_merge(stats["stages"].get(STAGE, {}), stage)
        stats["decontamination"] = merge_reports([stats.get("decontamination", {}), report], config.examples)
        runs.append(fp)
        with atomic_write(stats_path) as fh:
            fh.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")
    fs, p = filesystem(workdir)
    if fs.exists(p):
        fs.rm(p, recursive=True)
    return {"stage": stage, "benchmarks": report}
