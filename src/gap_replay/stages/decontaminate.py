"""`decontaminate`: drop documents that contain benchmark text, or cut the overlapping spans out.

A document is contaminated by a benchmark when it shares at least `min_hits` distinct word
n-grams (13 by default) with it. `mode: drop` removes the document; `mode: trim` removes every
span covered by a matching n-gram and keeps the rest (a document left empty is dropped). Each
decision is counted per benchmark (documents dropped/trimmed, n-gram hits, characters removed,
per source, a few examples with the benchmark items they matched).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from gap_replay.decontam.benchmarks import BenchmarkFile, resolve
from gap_replay.decontam.index import NgramIndex, ngram_hashes, tokens_with_spans, words
from gap_replay.document import Document
from gap_replay.hashing import content_hash
from gap_replay.recipe import Recipe, reject_unknown
from gap_replay.stages.base import Stage

log = logging.getLogger(__name__)

REASON = "contaminated"
MODES = ("drop", "trim")


KEYS = ("benchmarks", "mode", "ngram", "min_hits", "max_item_frequency", "examples")


class DecontaminationConfigError(ValueError):
    """A bad `decontamination:` recipe value; the message names the key."""


def validate_section(value, key: str = "decontamination") -> None:
    """The recipe's check of this section at load (gap_replay.recipe), with the same rules as
    `DecontaminationConfig.from_recipe`; benchmark files are checked by the preflight."""
    DecontaminationConfig.from_recipe({"decontamination": value})


@dataclass(frozen=True)
class DecontaminationConfig:
    benchmarks: tuple[str, ...] = ()
    mode: str = "drop"
    ngram: int = 13
    min_hits: int = 1
    max_item_frequency: int = 10
    examples: int = 5
    base_dir: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.benchmarks)

    @classmethod
    def from_recipe(cls, recipe: dict, origin: str | None = None) -> "DecontaminationConfig":
        section = recipe.get("decontamination") or {}
        if not isinstance(section, dict):
            raise DecontaminationConfigError("decontamination: must be a mapping")
        reject_unknown(section, KEYS, "decontamination.", DecontaminationConfigError)
        benchmarks = section.get("benchmarks") or []
        if isinstance(benchmarks, str):
            benchmarks = [benchmarks]
        if not isinstance(benchmarks, list) or not all(isinstance(b, str) for b in benchmarks):
            raise DecontaminationConfigError("decontamination.benchmarks: expected a list of paths (or NAME=PATH)")
        kwargs: dict[str, Any] = {"benchmarks": tuple(benchmarks),
                                  "base_dir": str(Path(origin).parent) if origin else None}
        if "mode" in section:
            kwargs["mode"] = section["mode"]
        for key in ("ngram", "min_hits", "max_item_frequency", "examples"):
            if key in section:
                kwargs[key] = section[key]
        return cls(**kwargs).validated()

    def validated(self) -> "DecontaminationConfig":
        if self.mode not in MODES:
            raise DecontaminationConfigError(f"decontamination.mode: expected drop or trim, got {self.mode!r}")
        for key in ("ngram", "min_hits", "max_item_frequency", "examples"):
            value = getattr(self, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DecontaminationConfigError(
                    f"decontamination.{key}: expected a positive integer, got {value!r}")
        return self

    def with_overrides(self, **overrides: Any) -> "DecontaminationConfig":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None}).validated()

    def files(self) -> list[BenchmarkFile]:
        return resolve(list(self.benchmarks), self.base_dir)

    def fingerprint(self) -> str:
        """Settings and benchmark file identities (path, size, mtime): a changed file rebuilds."""
        parts = [self.mode, self.ngram, self.min_hits, self.max_item_frequency]
        for f in self.files():
            st = Path(f.path).stat()
            parts.append((f.name, f.kind, str(Path(f.path).resolve()), st.st_size, st.st_mtime_ns))
        return content_hash(repr(parts))[:16]


_INDEX_CACHE: dict[str, NgramIndex] = {}


def load_index(config: DecontaminationConfig) -> NgramIndex:
    """Build the index once per process (tasks in the same worker reuse it)."""
    key = config.fingerprint()
    if key not in _INDEX_CACHE:
        _INDEX_CACHE.clear()
        _INDEX_CACHE[key] = NgramIndex.build(config.files(), config.ngram, config.max_item_frequency)
    return _INDEX_CACHE[key]


def _empty_report() -> dict:
    return {"documents_dropped": 0, "documents_trimmed": 0, "ngram_hits": 0, "chars_removed": 0,
            "by_source": {}, "examples": []}


def _covered_spans(text: str, hit_positions: np.ndarray, n: int, spans: list[tuple[int, int]]
                   ) -> list[tuple[int, int]]:
    """Character spans covered by the n-grams starting at `hit_positions` (merged, in order),
    each extended over the punctuation that closes it (".", "?", ")")."""
    marks = np.zeros(len(spans) + 1, dtype=np.int32)
    np.add.at(marks, hit_positions, 1)
    np.add.at(marks, hit_positions + n, -1)
    covered = np.cumsum(marks)[:-1] > 0
    out: list[tuple[int, int]] = []
    i = 0
    while i < len(spans):
        if covered[i]:
            j = i
            while j + 1 < len(spans) and covered[j + 1]:
                j += 1
            end = spans[j][1]
            while end < len(text) and not text[end].isspace() and not text[end].isalnum() and text[end] != "_":
                end += 1
            out.append((spans[i][0], end))
            i = j + 1
        else:
            i += 1
    return out


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    pieces, prev = [], 0
    for start, end in spans:
        pieces.append(text[prev:start])
        prev = end
    pieces.append(text[prev:])
    out = pieces[0]
    for piece in pieces[1:]:
        left, right = out.rstrip(" \t"), piece.lstrip(" \t")
        sep = " " if left and right and not left.endswith("\n") and not right.startswith("\n") else ""
        out = left + sep + right
    return out


class Decontaminate(Stage):
    """Per-document check against every benchmark of the index; `report()` has the decisions."""

    name = "decontaminate"

    def __init__(self, config: DecontaminationConfig, index: NgramIndex | None = None) -> None:
        super().__init__()
        self.config = config
        self._index = index
        self._report: dict[str, dict] = {}

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> Decontaminate | None:
        """On when `decontamination.benchmarks` lists a file (relative paths: beside the recipe)."""
        config = DecontaminationConfig.from_recipe(recipe.data, recipe.origin)
        return cls(config) if config.enabled else None

    @property
    def index(self) -> NgramIndex:
        if self._index is None:
            self._index = load_index(self.config)
            for name in self._index.benchmarks:
                self._report.setdefault(name, _empty_report())
        return self._index

    def _hits(self, hashes: np.ndarray) -> dict[str, np.ndarray]:
        """Benchmark -> mask of the n-grams it shares, for benchmarks that pass `min_hits`."""
        hits: dict[str, np.ndarray] = {}
        for name, bench in self.index.benchmarks.items():
            mask = bench.lookup(hashes)
            if mask.any() and np.unique(hashes[mask]).size >= self.config.min_hits:
                hits[name] = mask
        return hits

    def process(self, doc: Document) -> Document | None:
        index = self.index
        n = index.ngram
        hashes = ngram_hashes(words(doc.text), n)
        hits = self._hits(hashes) if hashes.size else {}
        if not hits:
            return doc
        cut: list[tuple[int, int]] = []
        if self.config.mode == "trim":  # only now: tokens with their spans, to cut them out
            tokens, spans = tokens_with_spans(doc.text)
            hashes = ngram_hashes(tokens, n)
            hits = self._hits(hashes) or hits
            if hashes.size:
                any_hit = np.logical_or.reduce([index.benchmarks[b].lookup(hashes) for b in hits])
                cut = _covered_spans(doc.text, np.flatnonzero(any_hit), n, spans)
        chars = sum(e - s for s, e in cut)
        new_text = _cut(doc.text, cut) if cut else ""
        dropped = self.config.mode == "drop" or not new_text.strip()
        action = "dropped" if dropped else "trimmed"
        for name, mask in hits.items():
            hit_hashes = hashes[mask] if mask.shape == hashes.shape else hashes[:0]
            rep = self._report[name]
            rep[f"documents_{action}"] += 1
            rep["ngram_hits"] += int(mask.sum())
            rep["chars_removed"] += len(doc.text) if dropped else chars
            rep["by_source"][doc.source] = rep["by_source"].get(doc.source, 0) + 1
            if len(rep["examples"]) < self.config.examples:
                rep["examples"].append({"id": doc.id, "source": doc.source, "action": action,
                                        "ngram_hits": int(mask.sum()),
                                        "items": index.benchmarks[name].items_of(hit_hashes)})
        if dropped:
            self.drop(doc, REASON)
            return None
        meta = {**doc.meta, "decontamination": {"benchmarks": sorted(hits), "chars_removed": chars}}
        return replace(doc, text=new_text, meta=meta)

    def input_fingerprint(self) -> str:
        """Changes when a benchmark file changes, so `process` does not reuse stale markers."""
        return self.config.fingerprint()

    def report(self) -> dict[str, dict]:
        return {name: {**r, "by_source": dict(sorted(r["by_source"].items()))}
                for name, r in sorted(self._report.items())}


def merge_reports(reports: list[dict[str, dict]], examples: int = 5) -> dict[str, dict]:
    """Sum per-task reports; examples sorted by document id so the result is order-independent."""
    out: dict[str, dict] = {}
    for report in reports:
        for name, rep in report.items():
            acc = out.setdefault(name, _empty_report())
            for key in ("documents_dropped", "documents_trimmed", "ngram_hits", "chars_removed"):
                acc[key] += rep[key]
            src = Counter(acc["by_source"])
            src.update(rep["by_source"])
            acc["by_source"] = dict(sorted(src.items()))
            acc["examples"].extend(rep["examples"])
    for acc in out.values():
        acc["examples"] = sorted(acc["examples"], key=lambda e: e["id"])[:examples]
    return dict(sorted(out.items()))
