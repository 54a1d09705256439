"""`filter`: drop documents their source marked, too short, or not in the source's languages."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gap_replay.document import Document
from gap_replay.stages.base import Stage
from gap_replay.stages.language import LanguageDetector

if TYPE_CHECKING:
    from gap_replay.recipe import Recipe

# A source that knows a record is not corpus text (a retraction, an abstract whose full text is
# in the corpus) extracts it anyway with this meta key set to the reason (sources/base.py).
DROP_REASON = "drop_reason"


class FilterStage(Stage):
    """Per-source rules from the recipe: `min_chars` and `languages` (null keeps every language).

    The detected language is stored in `meta.language` when the source filters on language.
    A document carrying `meta.drop_reason` is dropped first, under that reason. Length is
    checked next: it is cheap and short texts are where detectors disagree.
    """

    name = "filter"

    def __init__(self, min_chars: dict[str, int], languages: dict[str, list[str] | None],
                 detector: LanguageDetector | None = None) -> None:
        super().__init__()
        self.min_chars = min_chars
        self.languages = {src: (set(langs) if langs is not None else None)
                          for src, langs in languages.items()}
        self.detector = detector or LanguageDetector()

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> FilterStage:
        """Every source's `min_chars` and `languages` (always on: a drop_reason must drop)."""
        srcs = recipe.sources
        return cls({s: recipe.min_chars(s) for s in srcs}, {s: recipe.languages(s) for s in srcs})

    def warm(self) -> None:
        if any(langs is not None for langs in self.languages.values()):
            self.detector.warm()

    def process(self, doc: Document) -> Document | None:
        marked = doc.meta.get(DROP_REASON)
        if marked:
            self.drop(doc, str(marked))
            return None
        if len(doc.text) < self.min_chars.get(doc.source, 0):
            self.drop(doc, "too_short")
            return None
        allowed = self.languages.get(doc.source)
        if allowed is not None:
            lang = self.detector.detect(doc.text)
            if doc.meta.get("language") and "language_declared" not in doc.meta:
                doc.meta["language_declared"] = doc.meta["language"]  # declared kept, not overwritten
            doc.meta["language"] = lang
            if lang not in allowed:
                self.drop(doc, f"language_{lang}")
                return None
        return doc
