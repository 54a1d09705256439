#!/usr/bin/env python
"""Write tests/fixtures/pubmed/s2orc/s2orc_v2-sample.line3.jsonl: the real 2023 S2ORC sample row
(s2orc-sample.line3.jsonl) re-expressed in the s2orc_v2 shape (docs/pubmed.md, "s2orc_v2").

    python scripts/make_s2orc_v2_fixture.py

No real s2orc_v2 row is stored anywhere we could read, so the fixture is derived: the same text
and spans, cut where the public clients say v2 cuts them. The body is the text from the abstract
to the first bibliography entry (v2 has no front matter in the body; title and authors are row
fields), the bibliography the text from there on. The abstract becomes the body's first
`paragraph` (v2 rows show no `abstract` annotation). Annotation names get underscores
(`section_header`, `bib_ref`, `bib_entry`, `bib_author_last_name`; `figure_ref`, `figure_caption`,
`table_ref` are a guess by the same rule), values stay JSON-encoded strings. `sentence` spans are
not made up; the formatter does not read them. Output is byte-stable.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "pubmed" / "s2orc"
SOURCE = FIX / "s2orc-sample.line3.jsonl"
TARGET = FIX / "s2orc_v2-sample.line3.jsonl"

BODY_TYPES = ("paragraph", "sectionheader", "bibref", "figure", "figurecaption", "figureref",
              "table", "tableref", "formula")
BIB_TYPES = ("bibentry", "bibtitle", "bibvenue", "bibauthor", "bibauthorfirstname",
             "bibauthorlastname")
V2_NAME = {"sectionheader": "section_header", "bibref": "bib_ref",
           "figurecaption": "figure_caption", "figureref": "figure_ref", "tableref": "table_ref", "bibentry": "bib_entry",
           "bibtitle": "bib_title", "bibvenue": "bib_venue", "bibauthor": "bib_author",
           "bibauthorfirstname": "bib_author_first_name",
           "bibauthorlastname": "bib_author_last_name"}


def _spans(raw) -> list:
    return json.loads(raw) if isinstance(raw, str) and raw else (raw or [])


def _cut(spans: list, lo: int, hi: int) -> list:
    return [{**s, "start": s["start"] - lo, "end": s["end"] - lo} for s in spans
            if lo <= s["start"] and s["end"] <= hi]


def _encode(spans: list) -> str:
    return json.dumps(spans, separators=(",", ":"), ensure_ascii=False)


def v2_from_2023(row: dict, *, keep_abstract: bool = False) -> dict:
    """The 2023 row in the s2orc_v2 shape. `keep_abstract` keeps an `abstract` span instead of
    turning it into a paragraph (the same-paper test uses it to compare outputs exactly)."""
    content = row["content"]
    text, ann = content["text"], content["annotations"]
    abstract = _spans(ann.get("abstract"))
    paragraphs = _spans(ann["paragraph"])
    body_start = abstract[0]["start"] if abstract else min(s["start"] for s in paragraphs)
    bib_start = min(s["start"] for s in _spans(ann["bibentry"]))
    body_ann = {}
    for key in BODY_TYPES:
        spans = _cut(_spans(ann.get(key)), body_start, bib_start)
        if key == "paragraph" and abstract and not keep_abstract:
            spans = _cut(abstract, body_start, bib_start) + spans
        if spans:
            body_ann[V2_NAME.get(key, key)] = _encode(spans)
    if abstract and keep_abstract:
        body_ann["abstract"] = _encode(_cut(abstract, body_start, bib_start))
    bib_ann = {V2_NAME[key]: _encode(_cut(_spans(ann.get(key)), bib_start, len(text)))
               for key in BIB_TYPES if ann.get(key)}
    titles = _spans(ann.get("title"))
    title = " ".join(text[titles[0]["start"]:titles[0]["end"]].split()) if titles else None
    ids = {str(k).lower(): v for k, v in (row.get("externalids") or {}).items()}
    return {
        "corpusid": row["corpusid"],
        "title": title,
        "authors": [],
        "openaccessinfo": {"externalids": ids, "license": None, "url": None, "status": None},
        "body": {"text": text[body_start:bib_start], "annotations": body_ann},
        "bibliography": {"text": text[bib_start:], "annotations": bib_ann},
    }


def _authors(row: dict) -> list[dict]:
    """`authors` as [{"authorId", "name"}] from the 2023 author spans (ids unknown: null)."""
    text, ann = row["content"]["text"], row["content"]["annotations"]
    names = []
    for s in _spans(ann.get("author")):
        name = re.sub(r"\S+@\S+", "", text[s["start"]:s["end"]].split("\n")[0]).strip()
        if name and name not in names:
            names.append(name)
    return [{"authorId": None, "name": n} for n in names]


def main() -> None:
    row = json.loads(SOURCE.read_text(encoding="utf-8").splitlines()[0])
    v2 = v2_from_2023(row)
    v2["authors"] = _authors(row)
    TARGET.write_text(json.dumps(v2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {TARGET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
