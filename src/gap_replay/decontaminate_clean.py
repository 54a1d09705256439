"""`gap-replay decontaminate` over an existing `OUT/clean/`: the Decontaminate stage run in place
by `process`'s driver (`run_stages`: one task per clean shard, markers, atomic writes).

Each task writes the decontaminated shard below the work directory, records its result in a
marker, then moves it over the clean shard; a rerun of a killed run finishes any pending move
and skips completed shards. The counts are merged into OUT/stats.json once per run (stage
`decontaminate_clean`, after the process stages, plus the per-benchmark `decontamination` report).
"""

from __future__ import annotations

import orjson

from gap_replay.io import join, list_shards
from gap_replay.io.jsonl import shard_key
from gap_replay.io.paths import atomic_write, read_json, remove, remove_stale_temporaries
from gap_replay.process import READ_STAGE, Shard, StepsPlan, merge_stats, run_stages
from gap_replay.stages.decontaminate import Decontaminate, DecontaminationConfig, merge_reports
from gap_replay.tasks import fingerprint

STAGE = "decontaminate_clean"


def _as_one_stage(read: dict, stage: dict) -> dict:
    """read -> decontaminate as one stage: what was read goes in, what the stage kept comes out."""
    merged = {}
    for source in sorted(set(read) | set(stage)):
        r = read.get(source, {"in": 0, "out": 0, "dropped": {}, "quarantined": 0})
        s = stage.get(source, {"in": 0, "out": 0, "dropped": {}, "quarantined": 0})
        merged[source] = {"in": r["in"], "out": s["out"], "dropped": s["dropped"],
                          "quarantined": r["quarantined"] + s["quarantined"]}
    return merged


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
    paths = list_shards(clean)
    if not paths:
        raise FileNotFoundError(f"no clean shards below {clean}: run `gap-replay process` first")
    fp = fingerprint("decontaminate", config.fingerprint(), [p[len(clean.rstrip("/")) + 1:] for p in paths])
    workdir = join(output_dir, "work", f"decontaminate-{fp}")
    remove_stale_temporaries(clean)
    remove_stale_temporaries(workdir)
    shards = [Shard(p, shard_key(clean, p), p) for p in paths]  # output == path: in place
    results, _ = run_stages(shards, StepsPlan((Decontaminate(config),)), executor, workdir,
                            join(output_dir, "quarantine", "decontaminate"), name="decontaminate")
    counts = merge_stats(results)  # every stage reconciles
    stage = _as_one_stage(counts[READ_STAGE], counts.get(Decontaminate.name, {}))
    report = merge_reports([r["reports"].get(Decontaminate.name, {}) for r in results], config.examples)

    stats_path = join(output_dir, "stats.json")
    stats = read_json(stats_path, missing={"stages": {}})
    runs = stats.setdefault("decontamination_runs", [])
    if fp not in runs:  # a rerun after a kill must not count the same pass twice
        stats["stages"][STAGE] = _chain_merge(stats["stages"].get(STAGE, {}), stage)
        stats["decontamination"] = merge_reports([stats.get("decontamination", {}), report], config.examples)
        runs.append(fp)
        with atomic_write(stats_path) as fh:
            fh.write(orjson.dumps(stats, option=orjson.OPT_INDENT_2) + b"\n")
    remove(workdir)
    return {"stage": stage, "benchmarks": report}
