"""PMC quality up-sampling (docs/sources.md §6.3) as a stage: sets `meta["quality_weight"]`.

The factor of a paper is the sum of its publication-type factors, its MeSH factors (`Animals`
removes it), +1 for an approved journal, and, only when that running factor is already > 0, a
date bonus. The weight is `1 + factor × upfold` (the original `method1`); a negative factor
drops the paper with a reason. The core's mix turns weights into repeat counts with
probabilistic rounding on (seed, id). Everything is read from the recipe: every source with an
`upsampling` section (in the default recipe only `sources.papers`) is weighted by its own
settings; the approved-journals list ships as data in `gap_replay/`.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING

from gap_replay.document import Document
from gap_replay.resources import spec_dir
from gap_replay.stages.base import Stage

if TYPE_CHECKING:
    from gap_replay.recipe import Recipe

_JOURNAL_DELETE = re.compile(r"[:,.\-]")


def normalise_journal(name: str) -> str:
    """Appendix A: lower-case, '&' → 'and', delete ': , . -' — the same on both sides."""
    return _JOURNAL_DELETE.sub("", name.lower().replace("&", "and"))


def load_approved_journals(path: str | Path | None = None) -> frozenset[str]:
    path = Path(path) if path else spec_dir("gap_replay") / "approved_journals.txt"
    if not path.is_absolute() and not path.exists():
        path = spec_dir("gap_replay") / path
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    return frozenset(normalise_journal(n) for n in names if n and not n.startswith("#"))


def _parse_date(value) -> dt.date | None:
    """'2019-03-04', '2019-03' or '2019' (first day of the period); None if unreadable."""
    if not value:
        return None
    m = re.match(r"^(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?", str(value))
    if not m:
        return None
    try:
        return dt.date(int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1))
    except ValueError:
        return None


class QualityFactors:
    """One source's `upsampling` settings: the factor of each of its documents."""

    def __init__(self, config: dict) -> None:
        self.type_factors = {k.lower(): float(v) for k, v in (config.get("publication_types") or {}).items()}
        self.mesh_factors = {k.lower(): float(v) for k, v in (config.get("mesh") or {}).items()}
        journals = config.get("approved_journals") or {}
        self.journal_factor = float(journals.get("factor", 1.0))
        self.journals = load_approved_journals(journals.get("file")) if journals else frozenset()
        current = _parse_date(config.get("current_date") or "2023-07-15")
        self.current = dt.datetime(current.year, current.month, current.day)
        date = config.get("date") or {}
        self.recent = self.current - dt.timedelta(days=float(date.get("recent_days", 5.5 * 365)))
        self.older = self.current - dt.timedelta(days=float(date.get("older_days", 3650)))
        self.recent_factor = float(date.get("recent_factor", 1.0))
        self.older_factor = float(date.get("older_factor", 0.2))
        self.upfold = float(config.get("upfold", 1.0))

    def factor(self, doc: Document) -> tuple[float, str | None]:
        """(factor, the reason when a negative factor removes the paper)."""
        factor = 0.0
        worst: tuple[float, str] | None = None
        for t in doc.meta.get("publication_types") or []:
            f = self.type_factors.get(str(t).lower(), 0.0)
            factor += f
            if f < 0 and (worst is None or f < worst[0]):
                worst = (f, f"upsample:publication_type:{t}")
        for m in doc.meta.get("mesh") or []:
            f = self.mesh_factors.get(str(m).lower(), 0.0)
            factor += f
            if f < 0 and (worst is None or f < worst[0]):
                worst = (f, f"upsample:mesh:{m}")
        for key in ("journal", "venue"):
            name = doc.meta.get(key)
            if name and normalise_journal(str(name)) in self.journals:
                factor += self.journal_factor
                break
        if factor > 0:
            day = _parse_date(doc.meta.get("pub_date"))
            date = dt.datetime(day.year, day.month, day.day) if day else None
            if date is not None and date > self.recent:
                factor += self.recent_factor
            elif date is not None and date > self.older:
                factor += self.older_factor
        return factor, (worst[1] if factor < 0 and worst else ("upsample:negative" if factor < 0 else None))


class Upsample(Stage):
    """Sets the quality weight of the documents of every source with `upsampling` settings;
    other sources pass unchanged."""

    name = "upsample"

    def __init__(self, config_by_source: dict[str, dict]) -> None:
        super().__init__()
        self.by_source = {src: QualityFactors(config) for src, config in config_by_source.items()
                          if config.get("enabled", True)}

    @classmethod
    def from_recipe(cls, recipe: Recipe) -> Upsample | None:
        """`sources.<s>.upsampling` of every source that has it; off when none has it on."""
        stage = cls({s: c for s in recipe.sources if (c := recipe.source(s).get("upsampling"))})
        return stage if stage.by_source else None

    def factor(self, doc: Document) -> tuple[float, str | None]:
        """(factor, the reason when a negative factor removes the paper) by the document's source."""
        return self.by_source[doc.source].factor(doc)

    def process(self, doc: Document) -> Document | None:
        rules = self.by_source.get(doc.source)
        if rules is None:
            return doc
        factor, reason = rules.factor(doc)
        if reason:
            self.drop(doc, reason)
            return None
        doc.meta["quality_factor"] = round(factor, 6)
        doc.meta["quality_weight"] = round(1.0 + factor * rules.upfold, 6)
        return doc


KEYS = ("enabled", "upfold", "current_date", "publication_types", "mesh", "approved_journals", "date")
DATE_KEYS = ("recent_days", "recent_factor", "older_days", "older_factor")


def validate_section(config, key: str = "sources.papers.upsampling") -> None:
    """The recipe's check of `sources.<s>.upsampling` at load (gap_replay.recipe): known
    keys, numbers where the stage reads numbers, a readable date, an existing journals file."""
    from gap_replay.recipe import reject_unknown

    def number(value, name: str, minimum: float | None = None) -> None:
        if not isinstance(value, (int, float)) or isinstance(value, bool) or (
                minimum is not None and value < minimum):
            raise ValueError(f"{key}.{name}: must be a number{f' >= {minimum}' if minimum is not None else ''}"
                             f", got {value!r}")

    def mapping(value, name: str) -> dict:
        if not isinstance(value, dict):
            raise ValueError(f"{key}.{name}: must be a mapping, got {value!r}")
        return value

    if config is None:
        return
    if not isinstance(config, dict):
        raise ValueError(f"{key}: must be a mapping, got {config!r}")
    reject_unknown(config, KEYS, f"{key}.", ValueError)
    if not isinstance(config.get("enabled", True), bool):
        raise ValueError(f"{key}.enabled: must be true or false, got {config['enabled']!r}")
    number(config.get("upfold", 1.0), "upfold", 0)
    if "current_date" in config and _parse_date(config["current_date"]) is None:
        raise ValueError(f"{key}.current_date: must be a date like 2023-07-15, got {config['current_date']!r}")
    for table in ("publication_types", "mesh"):
        for name, factor in mapping(config.get(table) or {}, table).items():
            number(factor, f"{table}.{name}")
    journals = mapping(config.get("approved_journals") or {}, "approved_journals")
    reject_unknown(journals, ("file", "factor"), f"{key}.approved_journals.", ValueError)
    number(journals.get("factor", 1.0), "approved_journals.factor")
    if journals.get("file") is not None:
        path = Path(str(journals["file"]))
        if not path.exists() and not (spec_dir("gap_replay") / path).exists():
            raise ValueError(f"{key}.approved_journals.file: {path} not found (looked in the current "
                             f"directory and {spec_dir('gap_replay')})")
    date = mapping(config.get("date") or {}, "date")
    reject_unknown(date, DATE_KEYS, f"{key}.date.", ValueError)
    for name in DATE_KEYS:
        if name in date:
            number(date[name], f"date.{name}", 0 if name.endswith("_days") else None)
