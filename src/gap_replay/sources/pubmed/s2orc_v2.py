"""Semantic Scholar `s2orc_v2` rows → the 2023 `content` shape, so one formatter serves both.

An `s2orc_v2` row (releases of 2025–26; schema and sources in docs/pubmed.md, "s2orc_v2") keeps
the paper in two texts instead of one:

* `body` {`text`, `annotations`}: section headers, paragraphs, sentences, inline citations;
* `bibliography` {`text`, `annotations`}: entries, their titles, authors, venues;
* `title`, `authors`, `openaccessinfo` {`externalids`, `license`, ...} at the top level.

Annotation names are the 2023 names with underscores (`section_header` for `sectionheader`,
`bib_ref` for `bibref`, `bib_author_last_name` for `bibauthorlastname`); values are JSON-encoded
span lists, as in 2023. This module joins the two texts (body, a blank line, bibliography),
shifts the bibliography spans by the body's length and drops the underscores, so the 2023
formatter's rules (title first, `#`/`##` headers, citation and figure tokens, no bibliography
in the output: the body stops at the first bibliography entry) apply unchanged.

The body text of a v2 row has no front matter (title and authors are row fields), so the body
starts at offset 0: a blank header span at offset 0 tells the formatter so (it skips headers
with no words), and paragraphs before the first real header are kept, not taken for a title
page. The 2023 rule agrees (s2orc._body_start): without an abstract annotation its body starts
at the first paragraph after the title, so the same paper in either shape keeps the same
paragraphs; the mark still matters for a v2 body that annotates an abstract after some
paragraphs, or has no paragraph annotations at all.
"""

from __future__ import annotations

from typing import Any

import orjson

from gap_replay.sources.pubmed.s2orc import S2orcFormatError

# Annotation types the 2023 formatter reads (see s2orc.USED_ANNOTATIONS); the others
# (`sentence`, `bib_venue`, first names...) are never decoded.
_WANTED = frozenset(("abstract", "title", "sectionheader", "paragraph", "formula", "bibref",
                     "bibentry", "bibtitle", "bibauthorlastname", "figure", "figurecaption",
                     "figureref", "tableref", "table"))
_SEPARATOR = "\n\n"


def is_v2_row(record: dict) -> bool:
    """An s2orc_v2 row: a `body` object and no 2023 `content` object."""
    return isinstance(record.get("body"), dict) and not isinstance(record.get("content"), dict)


def _part(record: dict, key: str) -> tuple[str, dict]:
    part = record.get(key)
    if part is None:
        return "", {}
    if not isinstance(part, dict):
        raise S2orcFormatError(f"'{key}' is a {type(part).__name__}, expected an object")
    text = part.get("text") or ""
    if not isinstance(text, str):
        raise S2orcFormatError(f"{key}.text is not a string")
    annotations = part.get("annotations") or {}
    if isinstance(annotations, (str, bytes)):  # some exports encode the whole object
        try:
            annotations = orjson.loads(annotations) or {}
        except orjson.JSONDecodeError as exc:
            raise S2orcFormatError(f"{key}.annotations is not valid JSON: {exc}") from None
    if not isinstance(annotations, dict):
        raise S2orcFormatError(f"{key}.annotations is not an object")
    return text, annotations


def _decoded(raw: Any, where: str) -> tuple[list, bool]:
    """(spans, owned): owned when decoded here, so the dicts may be changed in place."""
    if raw is None or raw in ("", "null", b""):
        return [], True
    owned = isinstance(raw, (str, bytes))
    if owned:
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise S2orcFormatError(f"{where} is not valid JSON: {exc}") from None
    if raw is None:
        return [], True
    if not isinstance(raw, list):
        raise S2orcFormatError(f"{where} is a {type(raw).__name__}, expected a list")
    return raw, owned


def _shifted(raw: Any, by: int, where: str) -> list:
    """The spans of `raw` moved `by` code points (in place when they were decoded here: no
    copy per span); items that are not spans pass through for the formatter to skip."""
    items, owned = _decoded(raw, where)
    if not by:
        return items
    out = items if owned else []
    for i, item in enumerate(items):
        if type(item) is dict and "start" in item and "end" in item:
            start, end = item["start"], item["end"]
            if type(start) is not int or type(end) is not int:
                try:
                    start, end = int(start), int(end)
                except (TypeError, ValueError):
                    start = None  # left as it is: the formatter drops a span it cannot read
            if start is not None:
                if not owned:
                    item = dict(item)
                item["start"], item["end"] = start + by, end + by
        if owned:
            out[i] = item
        else:
            out.append(item)
    return out


def _merge(target: dict[str, Any], annotations: dict, offset: int, where: str) -> None:
    for name, raw in annotations.items():
        key = str(name).replace("_", "").lower()
        if key not in _WANTED:
            continue
        if offset == 0 and key not in target:
            target[key] = raw  # passed on as is (usually a JSON string the formatter decodes)
            continue
        spans = _shifted(raw, offset, f"{where}.{name}")
        target[key] = _decoded(target[key], where)[0] + spans if key in target else spans


def to_content_row(record: dict) -> dict:
    """The v2 row as a 2023-shaped row: `content` {`text`, `annotations`} plus the row's ids;
    `title` stays at the top level (the caller passes it as the title when no join has one)."""
    body_text, body_ann = _part(record, "body")
    bib_text, bib_ann = _part(record, "bibliography")
    if not body_text.strip():
        raise S2orcFormatError("empty body.text (s2orc_v2 row)")
    lead = 0
    if not body_text[:1].isspace():
        body_text = "\n" + body_text  # room for the blank header that marks the body start
        lead = 1
    annotations: dict[str, Any] = {}
    _merge(annotations, body_ann, lead, "body.annotations")
    start_mark = {"start": 0, "end": 1}
    annotations["sectionheader"] = [start_mark] + _decoded(
        annotations.get("sectionheader"), "body.annotations.section_header")[0]
    if bib_text:
        _merge(annotations, bib_ann, len(body_text) + len(_SEPARATOR), "bibliography.annotations")
        text = body_text + _SEPARATOR + bib_text
    else:
        text = body_text
    oa = record.get("openaccessinfo") if isinstance(record.get("openaccessinfo"), dict) else {}
    return {"corpusid": record.get("corpusid"), "externalids": oa.get("externalids"),
            "content": {"text": text, "annotations": annotations,
                        "source": {"oainfo": {"license": oa.get("license")} if oa.get("license")
                                   else None}}}


def row_title(record: dict) -> str | None:
    title = record.get("title")
    return title if isinstance(title, str) and title.strip() else None
