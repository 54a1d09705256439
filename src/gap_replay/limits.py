"""Memory limits of one run: what a single input may make the process hold, whatever the input.

Defaults suit every real source; a run config may change them (`limits:` in configs/*.yaml). The
values travel to worker processes and Ray workers in the environment (`GAP_REPLAY_LIMITS`), so a
task reads the same limits wherever it runs. The size of one document's text is part of the
corpus definition instead: `sources.<s>.max_chars` in the recipe.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass

ENV = "GAP_REPLAY_LIMITS"


@dataclass(frozen=True)
class Limits:
    max_line_bytes: int = 64 << 20        # one JSON line; longer lines are quarantined unread
    max_file_bytes: int = 1 << 40         # decompressed bytes of one input file
    http_page_bytes: int = 64 << 20       # one HTML/JSON/XML/text answer held in memory
    http_pdf_bytes: int = 256 << 20       # one PDF held in memory (data files stream to disk)
    quarantine_raw_bytes: int = 8 << 10   # kept of each quarantined record (+ length, sha256)
    near_dedup_pairs_bytes: int = 64 << 20  # candidate pairs (16 B each) near-dedup holds at once; more spill to disk


def _from_env() -> Limits:
    raw = os.environ.get(ENV)
    return Limits(**json.loads(raw)) if raw else Limits()


_current = _from_env()


def current() -> Limits:
    return _current


def configure(values: dict | None) -> Limits:
    """Set this process's limits (and its future workers') from a run config's `limits:`.
    Raises ValueError naming an unknown key or a value that is not a positive integer."""
    global _current
    values = dict(values or {})
    known = {f.name for f in dataclasses.fields(Limits)}
    for key, value in values.items():
        if key not in known:
            raise ValueError(f"limits.{key}: unknown limit; known: {', '.join(sorted(known))}")
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"limits.{key}: must be a positive integer (bytes), got {value!r}")
    _current = dataclasses.replace(Limits(), **values)
    os.environ[ENV] = json.dumps(dataclasses.asdict(_current))
    return _current
