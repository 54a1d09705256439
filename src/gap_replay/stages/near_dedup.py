"""Near-duplicate removal: MinHash-LSH over word 5-grams, as disk-based map/reduce phases.

    NearDedupStep(config)     # a GlobalStep: (a) signatures observed while a segment writes,
                              # (b) buckets + (c) clusters as its reduce, (d) the filter stage

It runs only through `process`'s driver (`process.run_stages`; alone: `StepsPlan((step,))`).
Every phase writes atomically and leaves a marker, so a run killed in any phase resumes where it
stopped and gives the same bytes. Which document of a cluster survives is decided by
`NearDedupConfig.keep_key`.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import TYPE_CHECKING

from gap_replay.document import Document
from gap_replay.io import join
from gap_replay.io.paths import remove_stale_temporaries
from gap_replay.stages.base import Stage
from gap_replay.stages.global_step import GlobalStep, Observer
from gap_replay.stages.minhash.config import NearDedupConfig

# gap_replay.stages.minhash.phases (numpy, datasketch, which imports scipy: ~0.5 s) is imported
# where a phase runs, so `process` with near dedup off does not pay for it.

if TYPE_CHECKING:
    from gap_replay.recipe import Recipe

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


# ---------------------------------------------------------------- inside `process` (a GlobalStep)


class _SignatureObserver(Observer):
    """Phase (a) inside a process segment: signs the documents a task writes."""

    def __init__(self, work: str, task_key: str, config: NearDedupConfig) -> None:
        from gap_replay.stages.minhash.phases import ShardSigner, shard_dir

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

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> NearDedupStep | None:
        """`near_dedup:` (on unless `enabled: false`)."""
        config = NearDedupConfig.from_recipe(recipe.data)
        return cls(config) if config.enabled else None

    @staticmethod
    def _work(workdir: str) -> str:
        return join(workdir, "near_dedup")

    def observer(self, workdir: str, task_key: str) -> Observer:
        return _SignatureObserver(self._work(workdir), task_key, self.config)

    def warm(self) -> None:
        import gap_replay.stages.minhash.phases  # noqa: F401  (numpy, datasketch: ~0.4 s)

    def reduce(self, workdir: str, task_keys, executor) -> dict:
        from gap_replay.stages.minhash.phases import ClusterTask, ReduceTask, cluster, reduce_band

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
        from gap_replay.stages.minhash.phases import load_removals

        return NearDuplicateFilter(load_removals(self._work(workdir), task_key))

    def reduce_inputs(self, workdir: str) -> list[str]:  # signatures, buckets, candidate pairs
        return [join(self._work(workdir), "map"), join(self._work(workdir), "pairs")]

    def decisions(self, workdir: str) -> list[str]:
        return [self._work(workdir)]
