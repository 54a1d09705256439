"""The S2ORC rows whose formatted output is pinned by tests/test_sources_pubmed_s2orc.py.

Every real S2ORC sample row (the fixture row, the rows of the bundled S2 site, the legacy 2020
JSON) plus deterministic variants of the real v2 row that push it through the formatter's
careful paths (decoded lists, string offsets, unsorted spans, missing attributes, malformed
spans, nulls, no paragraphs, overlapping references, non-BMP characters). The expected outputs
were written by the formatter *before* it was optimised (`scripts/make_s2orc_golden.py`), so a
speed-up that changes any byte fails the test.
"""

from __future__ import annotations

import copy
import gzip
import json
import random
from pathlib import Path
from typing import Callable, Iterator

from gap_replay.resources import sample_sites_dir
from gap_replay.sources.pubmed.s2orc import format_s2orc
from gap_replay.sources.pubmed.s2orc_legacy import is_legacy

FIX = Path(__file__).parent / "fixtures" / "pubmed"
GOLDEN = FIX / "golden" / "s2orc"
REAL_ROW = FIX / "s2orc" / "s2orc-sample.line3.jsonl"
LEGACY_ROW = FIX / "s2orc" / "legacy_v2020_example_paper.json"
SITE_S2ORC = "s2api/staging/2023-08-29/s2orc"


def _real() -> dict:
    return json.loads(REAL_ROW.read_text(encoding="utf-8").splitlines()[0])


def _decoded(row: dict) -> dict[str, list | None]:
    return {k: (json.loads(v) if isinstance(v, str) else v)
            for k, v in row["content"]["annotations"].items()}


def _with(row: dict, ann: dict[str, list | None], encode: bool = True) -> dict:
    row = copy.deepcopy(row)
    row["content"]["annotations"] = {
        k: (json.dumps(v) if encode and v is not None else v) for k, v in ann.items()}
    return row


def _as_lists(row: dict) -> dict:
    return _with(row, _decoded(row), encode=False)


def _string_offsets(row: dict) -> dict:
    ann = _decoded(row)
    for spans in ann.values():
        for i, s in enumerate(spans or []):
            if i % 5 == 0:
                s["start"], s["end"] = str(s["start"]), str(s["end"])
    return _with(row, ann)


def _shuffled(row: dict) -> dict:
    rng = random.Random(4)
    ann = _decoded(row)
    for spans in ann.values():
        if spans:
            rng.shuffle(spans)
    return _with(row, ann)


def _no_attributes(row: dict) -> dict:
    ann = _decoded(row)
    for key in ("bibref", "figureref", "tableref", "bibentry", "figure", "table"):
        for i, s in enumerate(ann.get(key) or []):
            if i % 3 == 1:
                s.pop("attributes", None)
            elif i % 3 == 2 and "attributes" in s:
                s["attributes"] = None
    return _with(row, ann)


def _malformed_spans(row: dict) -> dict:
    ann = _decoded(row)
    n = len(row["content"]["text"])
    for key, spans in ann.items():
        if not spans:
            continue
        if key not in ("abstract", "bibentry", "figure", "table"):  # these would cut the body
            spans[0] = dict(spans[0], start=-7)
        spans.append({"start": n - 3, "end": n + 50, "attributes": spans[-1].get("attributes")})
        spans.extend([None, 5, {"start": 10}, {"start": 40, "end": 40}, {"start": "x", "end": 2}])
        spans.insert(1, {"start": spans[0]["end"], "end": spans[0]["start"]})
    return _with(row, ann)


def _nulls_and_title_twice(row: dict) -> dict:
    ann = _decoded(row)
    ann["title"] = (ann.get("title") or []) * 2
    ann["figurecaption"] = None
    ann["tableref"] = None
    ann["formula"] = None
    row = _with(row, ann)
    row["content"]["annotations"]["table"] = "null"
    row["content"]["annotations"]["abstract"] = ""
    return row


def _no_paragraphs(row: dict) -> dict:
    ann = _decoded(row)
    ann["paragraph"] = None
    return _with(row, ann)


def _overlapping_refs(row: dict) -> dict:
    """A citation over every figure reference, and formulas over some citations."""
    ann = _decoded(row)
    figs = ann.get("figureref") or []
    ann["bibref"] = (ann.get("bibref") or []) + [
        {"start": s["start"] + 1, "end": s["end"] + 2, "attributes": {"ref_id": "b3"}}
        for s in figs]
    ann["formula"] = [{"start": s["start"] - 2, "end": s["end"]}
                      for s in (ann.get("bibref") or [])[::9]]
    return _with(row, ann)


def _non_bmp(row: dict) -> dict:
    """Non-BMP characters replace some letters (offsets are code points, so spans still fit)."""
    row = copy.deepcopy(row)
    text = row["content"]["text"]
    chars = list(text)
    for i in range(200, len(chars), 997):
        if chars[i].isalpha():
            chars[i] = "\U0001d504"
    row["content"]["text"] = "".join(chars)
    return row


def _headers_and_brackets(row: dict) -> dict:
    """Every second citation drops its reference id (the citation is removed, brackets too)."""
    ann = _decoded(row)
    for i, s in enumerate(ann.get("bibref") or []):
        if i % 2:
            s["attributes"] = {"ref_id": "b999"}
    return _with(row, ann)


VARIANTS: dict[str, Callable[[dict], dict]] = {
    "as_lists": _as_lists,
    "string_offsets": _string_offsets,
    "shuffled": _shuffled,
    "no_attributes": _no_attributes,
    "malformed_spans": _malformed_spans,
    "nulls_and_title_twice": _nulls_and_title_twice,
    "no_paragraphs": _no_paragraphs,
    "overlapping_refs": _overlapping_refs,
    "non_bmp": _non_bmp,
    "unresolved_citations": _headers_and_brackets,
}


def cases() -> Iterator[tuple[str, dict, dict | None]]:
    """(name, row, joined paper or None) for every pinned case."""
    yield "real", _real(), None
    yield "real_joined_title", _real(), {"title": "Joined title", "pmid": "90000001",
                                         "corpusid": "256868353"}
    site = sample_sites_dir() / SITE_S2ORC
    for path in sorted(site.glob("*.jsonl.gz")):
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for i, line in enumerate(fh):
                yield f"site_{path.name.split('.')[0]}_{i}", json.loads(line), None
    yield "legacy_2020", json.loads(LEGACY_ROW.read_text(encoding="utf-8")), None
    for name, make in VARIANTS.items():
        yield f"variant_{name}", make(_real()), None


def golden_doc_json(doc, row: dict, paper: dict | None) -> bytes:
    """The Document's JSON without its text (pinned separately in the readable `.txt`), plus
    the formatter's token counts for v2 rows."""
    fields = json.loads(doc.to_json())
    fields.pop("text")
    if not is_legacy(row):
        fields["format_info"] = format_s2orc(row, title=(paper or {}).get("title"))[1]
    return (json.dumps(fields, sort_keys=True, ensure_ascii=False, indent=1) + "\n").encode()
