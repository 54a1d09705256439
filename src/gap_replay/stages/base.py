"""A pipeline step is a small object with a name and a `run(docs)` generator that counts.

Counts reconcile by construction: the Pipeline counts what enters and leaves each stage, the
stage itself only says why it dropped something, and anything else is a bug that `check` finds.

Every step `process` runs (a Stage, or a GlobalStep in stages/global_step.py) declares the same
contract on `Step`: it configures itself from the recipe (`from_recipe`, None when the recipe
turns it off) and names the files it reads besides the documents (`input_fingerprint`). A Stage
also has `report()` and `changes()`: empty unless the stage has detail for stats.json.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Iterable, Iterator, Self

from gap_replay.document import Document

if TYPE_CHECKING:
    from gap_replay.recipe import Recipe


class SourceCounts:
    __slots__ = ("n_in", "n_out", "dropped", "quarantined")

    def __init__(self) -> None:
        self.n_in = 0
        self.n_out = 0
        self.dropped: dict[str, int] = defaultdict(int)
        self.quarantined = 0

    def to_dict(self) -> dict:
        return {"in": self.n_in, "out": self.n_out, "dropped": dict(sorted(self.dropped.items())),
                "quarantined": self.quarantined}

    def merge(self, other: dict) -> None:
        self.n_in += other["in"]
        self.n_out += other["out"]
        for reason, n in other["dropped"].items():
            self.dropped[reason] += n
        self.quarantined += other["quarantined"]


class StageStats:
    """Per-source counts of one stage: in, out, dropped by reason, quarantined."""

    def __init__(self) -> None:
        self.by_source: dict[str, SourceCounts] = defaultdict(SourceCounts)

    def drop(self, source: str, reason: str, n: int = 1) -> None:
        self.by_source[source].dropped[reason] += n

    def to_dict(self) -> dict:
        return {src: c.to_dict() for src, c in sorted(self.by_source.items())}

    def merge(self, other: dict) -> None:
        for src, counts in other.items():
            self.by_source[src].merge(counts)

    def check(self, stage: str) -> None:
        for src, c in self.by_source.items():
            accounted = c.n_out + sum(c.dropped.values()) + c.quarantined
            if c.n_in != accounted:
                raise AssertionError(
                    f"stage {stage!r}, source {src!r}: in={c.n_in} but out+dropped+quarantined={accounted}")


class Step:
    """What `process` may ask of every step it builds (process.STEPS), without probing."""

    name = "step"

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> Self | None:
        """This step as the recipe configures it; None when the recipe turns it off."""
        raise NotImplementedError(f"{cls.__name__} is made by its GlobalStep, not from a recipe")

    def warm(self) -> None:
        """Import the modules and load the models its tasks need, once in the driver before the
        workers fork, so each worker starts with them (default: nothing to load)."""

    def input_fingerprint(self) -> str | None:
        """Identity of the files it reads besides the documents (benchmark files), so a changed
        file starts `process` again; None when it reads none."""
        return None


class Stage(Step):
    """Base class: subclasses set `name` and implement `process(doc)` or override `run`.

    `process` returns the (possibly changed) document, or None after calling `self.drop`.
    """

    name = "stage"

    def __init__(self) -> None:
        self.stats = StageStats()

    def report(self) -> dict:
        """Per-task detail merged into stats.json by `process` (decontamination's decisions)."""
        return {}

    def changes(self) -> dict[str, dict[str, int]]:
        """{source: {rule: documents changed}} for stats.json `changes` (clean's rules)."""
        return {}

    def drop(self, doc: Document, reason: str) -> None:
        self.stats.drop(doc.source, reason)

    def process(self, doc: Document) -> Document | None:  # pragma: no cover - interface
        raise NotImplementedError

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        for doc in docs:
            out = self.process(doc)
            if out is not None:
                yield out


class _Counted:
    """Wraps an iterator to count documents per source as they pass a point."""

    def __init__(self, docs: Iterable[Document], stats: StageStats, attr: str) -> None:
        self.docs = docs
        self.stats = stats
        self.attr = attr

    def __iter__(self) -> Iterator[Document]:
        by_source = self.stats.by_source
        attr = self.attr
        for doc in self.docs:
            counts = by_source[doc.source]
            setattr(counts, attr, getattr(counts, attr) + 1)
            yield doc


class Pipeline:
    """Chains stages lazily; documents stream through, nothing is held."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages

    def run(self, docs: Iterable[Document]) -> Iterator[Document]:
        stream: Iterable[Document] = docs
        for stage in self.stages:
            stream = _Counted(stage.run(_Counted(stream, stage.stats, "n_in")), stage.stats, "n_out")
        yield from stream

    def stats(self) -> dict[str, dict]:
        for stage in self.stages:
            stage.stats.check(stage.name)
        return {stage.name: stage.stats.to_dict() for stage in self.stages}
