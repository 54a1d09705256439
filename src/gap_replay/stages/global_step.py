"""Steps that need a view of every shard, run as map (per shard) + reduce + per-shard filter.

A GlobalStep splits the process pipeline into segments. In the segment before it, every task
calls `observer(...)` and feeds it the documents it writes (with their position in the task's
output shard); the observer writes small key files. Then `reduce` runs once over those files
(itself split into independent buckets that any executor can run). In the segment after it,
`stage(...)` returns an ordinary Stage that applies the decision to each task's documents.
Everything goes through files, so the step runs the same locally, on Ray, or resumed.
"""

from __future__ import annotations

from typing import Sequence

from gap_replay.document import Document
from gap_replay.stages.base import Stage, Step


class Observer:
    """Collects what the reduce needs from one task; `close` writes it atomically."""

    def observe(self, doc: Document, ordinal: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass


class GlobalStep(Step):
    """The contract of `Step` (from_recipe, input_fingerprint) plus map, reduce and filter."""

    name = "global"

    def observer(self, workdir: str, task_key: str) -> Observer:  # pragma: no cover - interface
        raise NotImplementedError

    def reduce(self, workdir: str, task_keys: Sequence[str], executor) -> dict:  # pragma: no cover
        """Decide globally from the observers' files; returns a small summary for the logs."""
        raise NotImplementedError

    def stage(self, workdir: str, task_key: str) -> Stage:  # pragma: no cover - interface
        raise NotImplementedError

    def map_prior(self, workdir: str, shards: Sequence[str], executor) -> list[str]:
        """Map already published documents (`shards`) before the reduce; returns the task keys
        to add to `reduce`'s. By default they take no part (only exact dedup uses them)."""
        return []

    def reduce_inputs(self, workdir: str) -> list[str]:
        """What only the reduce reads: `process` deletes it once the reduce's marker is written."""
        return []

    def decisions(self, workdir: str) -> list[str]:
        """What `stage` reads: `process` deletes it once every shard's last segment is done."""
        return []
