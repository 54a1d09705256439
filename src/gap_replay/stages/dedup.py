"""`dedup` (exact): global across all shards and sources, by id, by normalised content, and by
normalised title within one site for the sources that ask for it (guidelines).

Map: each task writes one small record per document (key, priority, id, task, position) into
one of B buckets per kind chosen by the key's hash, all in ONE file per task: a JSON index line
({"<kind>-<bucket>": [offset, length]}) and the buckets' lines after it. One file, synced once
before the task's marker, instead of kinds x B small files each synced (that was ~5% of
`process` on small shards), and the reduce still reads only its bucket's bytes. Reduce, per bucket: the winner of every key is the
smallest (source priority, id, task, position), so the choice never depends on processing
order. The kinds are decided in order (id, content, title), each among the winners of the
earlier ones only, so a document is never lost because its twin was dropped for an unrelated
clash. Losers are written per task; the `dedup` stage of the next segment drops them with
reason `duplicate_id`, `duplicate_content` or `duplicate_title`.

Documents already published (refresh's reused ones, `process(prior=...)`) take part as prior
winners: `map_prior` writes their keys through the same observer, one pseudo-task per shard
(`@prior/NNNNN`), at a priority below every source, so they win every key they share. Their
own losers are ignored (published, not this run's to drop); the reduce's summary adds `prior`:
per kind, how many of this run's documents lost to one of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import orjson

from gap_replay.document import Document
from gap_replay.hashing import content_hash, stable_hash
from gap_replay.io import Quarantine, iter_documents
from gap_replay.io.paths import atomic_write, filesystem, join
from gap_replay.stages.base import Stage
from gap_replay.stages.global_step import GlobalStep, Observer
from gap_replay.tasks import key_file, run_once

if TYPE_CHECKING:
    from gap_replay.recipe import Recipe


def normalised_content_key(text: str) -> str:
    """Case and whitespace do not make a different document."""
    return content_hash(" ".join(text.lower().split()))


def normalised_title_key(doc: Document) -> str | None:
    """Same site, same title up to case, punctuation and whitespace: the same guideline (a print
    view, a moved page). Never across sites: "Asthma" on two sites is two documents."""
    words = "".join(c if c.isalnum() else " " for c in doc.title.lower()).split()
    return f"{doc.subset}\x1f{' '.join(words)}" if words else None


KINDS = ("id", "content", "title")
PRIOR_TASK = "@prior"  # task keys of published documents: no raw shard key starts with "@"


def is_prior(task: str) -> bool:
    return task.startswith(PRIOR_TASK + "/")


class _DedupObserver(Observer):
    def __init__(self, workdir: str, task_key: str, priorities: dict[str, int], buckets: int,
                 kinds: Sequence[str], title_sources: frozenset[str], priority: int | None = None) -> None:
        self.workdir = workdir
        self.task_key = task_key
        self.priorities = priorities
        self.buckets = buckets
        self.kinds = kinds
        self.title_sources = title_sources
        self.priority = priority  # fixed for every document (the prior), else by source
        self.lines: dict[tuple[str, int], list[bytes]] = {}

    def observe(self, doc: Document, ordinal: int) -> None:
        prio = self.priority if self.priority is not None else self.priorities.get(doc.source, len(self.priorities))
        for kind in self.kinds:
            if kind == "id":
                key = doc.id
            elif kind == "content":
                key = normalised_content_key(doc.text)
            else:
                key = normalised_title_key(doc) if doc.source in self.title_sources else None
                if key is None:
                    continue
            bucket = stable_hash("dedup", kind, key) % self.buckets
            self.lines.setdefault((kind, bucket), []).append(
                orjson.dumps([key, prio, doc.id, self.task_key, ordinal]))

    def close(self) -> None:
        # The task's one map file, written (and synced) before the task's marker.
        blocks = [(_section(kind, bucket), b"\n".join(lines) + b"\n")
                  for (kind, bucket), lines in sorted(self.lines.items())]
        index, offset = {}, 0
        for section, data in blocks:
            index[section] = [offset, len(data)]
            offset += len(data)
        with atomic_write(join(self.workdir, "dedup", "map", f"{key_file(self.task_key)}.jsonl")) as fh:
            fh.write(orjson.dumps(index) + b"\n")
            for _, data in blocks:
                fh.write(data)
        self.lines.clear()


def _section(kind: str, bucket: int) -> str:
    return f"{kind}-{bucket:04d}"


def _read_bucket(workdir: str, kind: str, bucket: int) -> list[list]:
    """One bucket's records from every task's map file, in task file order."""
    fs, root = filesystem(join(workdir, "dedup", "map"))
    records: list[list] = []
    if not fs.exists(root):
        return records
    files = [e["name"] for e in fs.ls(root, detail=True) if e["type"] == "file"]
    for path in sorted(p for p in files if p.endswith(".jsonl") and ".tmp-" not in p.rsplit("/", 1)[-1]):
        with fs.open(path, "rb") as fh:
            header = fh.readline()
            span = orjson.loads(header).get(_section(kind, bucket))
            if not span:
                continue
            fh.seek(len(header) + span[0])
            data = fh.read(span[1])
        records.extend(orjson.loads(line) for line in data.splitlines() if line.strip())
    return records


def _losers(records: list[list], skip: set[tuple[str, int]] | None = None) -> list[tuple[str, int, str, str]]:
    """(task, ordinal, id and task that beat it) of every record that is not the smallest of its key."""
    best: dict[str, tuple] = {}
    out = []
    for key, prio, doc_id, task, ordinal in records:
        if skip and (task, ordinal) in skip:
            continue
        rank = (prio, doc_id, task, ordinal)
        if key not in best:
            best[key] = rank
        elif rank < best[key]:
            out.append((best[key][2], best[key][3], doc_id, task))
            best[key] = rank
        else:
            out.append((task, ordinal, best[key][1], best[key][2]))
    return out


def reduce_bucket(args: tuple[str, str, int]) -> list[int]:
    """Decide one bucket of one kind among the winners of the earlier kinds; writes losers per
    task. Returns [losers, losers to a prior document]. Top-level so executors can run it."""
    workdir, kind, bucket = args
    skip: set[tuple[str, int]] = set()
    for earlier in KINDS[:KINDS.index(kind)]:
        fs, root = filesystem(join(workdir, "dedup", "losers", earlier))
        if fs.exists(root):
            for path in sorted(fs.find(root)):
                if ".tmp-" not in path:
                    with fs.open(path, "rb") as fh:
                        skip.update((t, o) for t, o in (orjson.loads(line) for line in fh if line.strip()))
    # a prior document that loses stays published: it is never a loser, not even for later kinds
    losers = sorted(loser for loser in _losers(_read_bucket(workdir, kind, bucket), skip)
                    if not is_prior(loser[0]))
    by_task: dict[str, list[bytes]] = {}
    for task, ordinal, winner, _ in losers:
        by_task.setdefault(task, []).append(orjson.dumps([ordinal, f"duplicate_{kind}", winner]))
    for task, lines in by_task.items():
        path = join(workdir, "dedup", "drop", key_file(task), f"{kind}-{bucket:04d}.jsonl")
        with atomic_write(path) as fh:
            fh.write(b"\n".join(lines) + b"\n")
    with atomic_write(join(workdir, "dedup", "losers", kind, f"{bucket:04d}.jsonl")) as fh:
        for task, ordinal, _, _ in losers:
            fh.write(orjson.dumps([task, ordinal]) + b"\n")
    return [len(losers), sum(is_prior(winner_task) for *_, winner_task in losers)]


def map_prior_shard(args: tuple[ExactDedup, str, str, str]) -> dict:
    """One shard of published documents into a prior map file, once (marker); streamed, so
    memory is that of one task. Top-level so executors can run it."""
    step, workdir, path, task_key = args

    def work() -> dict:
        observer = step.observer(workdir, task_key, priority=step.prior_priority())
        n = 0
        for n, doc in enumerate(iter_documents(path, Quarantine()), 1):
            observer.observe(doc, n - 1)
        observer.close()
        return {"documents": n}

    return run_once(join(workdir, "markers", "dedup-prior", key_file(task_key) + ".json"), work)


class DedupStage(Stage):
    """Drops the documents the reduce marked as losers for this task."""

    name = "dedup"

    def __init__(self, workdir: str, task_key: str) -> None:
        super().__init__()
        self.drop_reasons: dict[int, str] = {}
        fs, root = filesystem(join(workdir, "dedup", "drop", key_file(task_key)))
        if fs.exists(root):
            for path in sorted(fs.find(root)):
                if ".tmp-" in path:
                    continue
                with fs.open(path, "rb") as fh:
                    for line in fh:
                        if line.strip():
                            ordinal, reason, _winner = orjson.loads(line)
                            # decisions are exclusive across kinds; keep the first one read
                            self.drop_reasons.setdefault(ordinal, reason)
        self._ordinal = 0

    def run(self, docs):
        for doc in docs:
            ordinal = self._ordinal
            self._ordinal += 1
            reason = self.drop_reasons.get(ordinal)
            if reason:
                self.drop(doc, reason)
                continue
            yield doc


class ExactDedup(GlobalStep):
    name = "dedup"

    def __init__(self, priorities: dict[str, int], by_id: bool = True, by_content: bool = True,
                 buckets: int = 16, by_title: Sequence[str] = ()) -> None:
        self.priorities = priorities
        self.buckets = buckets
        self.title_sources = frozenset(by_title)
        self.kinds = tuple(k for k, on in zip(KINDS, (by_id, by_content, bool(by_title))) if on)

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> ExactDedup | None:
        """`dedup.exact`: off when by_id, by_content and by_title are all off."""
        dedup = recipe.dedup
        if not (dedup["by_id"] or dedup["by_content"] or dedup["by_title"]):
            return None
        buckets = int(recipe.section("dedup", {}).get("exact", {}).get("buckets", 16))
        return cls({s: recipe.priority(s) for s in recipe.sources}, dedup["by_id"],
                   dedup["by_content"], buckets=buckets, by_title=dedup["by_title"])

    def observer(self, workdir: str, task_key: str, priority: int | None = None) -> Observer:
        return _DedupObserver(workdir, task_key, self.priorities, self.buckets, self.kinds,
                              self.title_sources, priority)

    def prior_priority(self) -> int:
        """Below every source's: a published document wins every key it shares."""
        return min(self.priorities.values(), default=0) - 1

    def map_prior(self, workdir: str, shards: Sequence[str], executor) -> list[str]:
        """Map published documents (`shards`, e.g. refresh's reused clean shards) as prior
        winners before the reduce; returns their task keys (for `reduce`)."""
        keys = [f"{PRIOR_TASK}/{i:05d}" for i in range(len(shards))]
        executor.map(map_prior_shard, [(self, workdir, path, key) for path, key in zip(shards, keys)],
                     desc="dedup map (prior)")
        return keys

    def reduce(self, workdir: str, task_keys: Sequence[str], executor) -> dict:
        fs, root = filesystem(join(workdir, "dedup"))
        for stale in ("drop", "losers"):
            if fs.exists(join(root, stale)):
                fs.rm(join(root, stale), recursive=True)
        summary, prior = {}, {}
        for kind in self.kinds:
            counts = executor.map(reduce_bucket, [(workdir, kind, b) for b in range(self.buckets)],
                                  desc=f"dedup reduce ({kind})")
            summary[kind] = sum(n for n, _ in counts)
            prior[kind] = sum(n for _, n in counts)
        if any(is_prior(key) for key in task_keys):
            summary["prior"] = prior
        return summary

    def stage(self, workdir: str, task_key: str) -> Stage:
        return DedupStage(workdir, task_key)

    def reduce_inputs(self, workdir: str) -> list[str]:
        return [join(workdir, "dedup", "map"), join(workdir, "dedup", "losers")]

    def decisions(self, workdir: str) -> list[str]:
        return [join(workdir, "dedup")]


__all__ = ["ExactDedup", "DedupStage", "PRIOR_TASK", "is_prior", "map_prior_shard", "normalised_content_key",
           "normalised_title_key", "reduce_bucket"]
