"""`split`: train or validation by a hash of (seed, id), so a document never changes sides.

Adding, removing or reordering other documents cannot move a document: its side depends only
on its own id, the seed and its source's `validation_fraction`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gap_replay.document import Document
from gap_replay.hashing import unit_interval
from gap_replay.stages.base import Stage

if TYPE_CHECKING:
    from gap_replay.recipe import Recipe


def assign_split(seed: int, doc_id: str, validation_fraction: float) -> str:
    return "validation" if unit_interval(seed, "split", doc_id) < validation_fraction else "train"


class SplitStage(Stage):
    """Sets `meta.split`; drops nothing."""

    name = "split"

    def __init__(self, seed: int, validation_fraction: dict[str, float]) -> None:
        super().__init__()
        self.seed = seed
        self.validation_fraction = validation_fraction

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> SplitStage:
        """The recipe's seed and every source's `validation_fraction` (always on)."""
        return cls(recipe.seed, {s: recipe.validation_fraction(s) for s in recipe.sources})

    def process(self, doc: Document) -> Document:
        doc.meta["split"] = assign_split(self.seed, doc.id, self.validation_fraction.get(doc.source, 0.0))
        return doc
