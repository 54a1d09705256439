"""Semantic Scholar fidelity: S2ORC paragraphs before the first header are body when there is no
abstract (errata, short notes), the 2023 and s2orc_v2 shapes agree on it, and S2 publication
types reach the up-sampling weights under MEDLINE's names."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gap_replay.document import Document
from gap_replay.sources.pubmed.s2orc import format_s2orc
from gap_replay.sources.pubmed.s2records import (
    medline_publication_types,
    paper_meta,
    s2orc_document,
)
from gap_replay.stages.upsample import Upsample

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
from make_s2orc_v2_fixture import v2_from_2023  # noqa: E402

REAL_2023 = ROOT / "tests" / "fixtures" / "pubmed" / "s2orc" / "s2orc-sample.line3.jsonl"

ERRATUM = ("Erratum: A trial of drug X in adults\nA. Author, B. Author\nUniversity of Somewhere\n"
           "The authors regret that Table 2 reported the wrong doses.\n"
           "The corrected table is below; the conclusions are unchanged.\n"
           "Acknowledgements\nWe thank the readers who noticed.\n"
           "Figure 1. Corrected doses by group.")
PARAGRAPHS = ["The authors regret that Table 2 reported the wrong doses.",
              "The corrected table is below; the conclusions are unchanged."]


def _span(text: str, part: str) -> dict:
    start = text.index(part)
    return {"start": start, "end": start + len(part)}


def _erratum(header: str | None) -> dict:
    """A 2023 row with a title, an author block, two paragraphs, no abstract annotation and
    either no header, a figure-label header (not printed) or one late header."""
    ann = {"title": [_span(ERRATUM, "Erratum: A trial of drug X in adults")],
           "author": [_span(ERRATUM, "A. Author, B. Author")],
           "paragraph": [_span(ERRATUM, p) for p in PARAGRAPHS],
           "figure": [_span(ERRATUM, "Figure 1. Corrected doses by group.")],
           "figurecaption": [_span(ERRATUM, "Corrected doses by group.")]}
    if header:
        ann["sectionheader"] = [_span(ERRATUM, header)]
        ann["paragraph"].append(_span(ERRATUM, "We thank the readers who noticed."))
    return {"corpusid": 7, "externalids": {"pubmed": "123"},
            "content": {"text": ERRATUM, "annotations": {k: json.dumps(v) for k, v in ann.items()}}}


@pytest.mark.parametrize("header", [None, "Acknowledgements"])
def test_erratum_without_abstract_keeps_its_paragraphs_in_order(header):
    text, info = format_s2orc(_erratum(header))
    assert info["title"] == "Erratum: A trial of drug X in adults"
    lines = text.split("\n")
    assert lines[:4] == ["Erratum: A trial of drug X in adults", "", *PARAGRAPHS]
    assert "A. Author" not in text and "University of Somewhere" not in text  # front matter
    if header:
        assert "# Acknowledgements" in lines and lines[-1] == "We thank the readers who noticed."


def test_a_figure_label_taken_for_a_header_does_not_hide_the_paragraphs_before_it():
    """GROBID may annotate a figure label as the only header: it is not printed, and it must
    not make the paragraphs above it front matter."""
    row = _erratum(None)
    ann = {k: json.loads(v) for k, v in row["content"]["annotations"].items()}
    ann["sectionheader"] = [_span(ERRATUM, "Figure 1.")]
    row["content"]["annotations"] = {k: json.dumps(v) for k, v in ann.items()}
    text, _ = format_s2orc(row)
    assert all(p in text for p in PARAGRAPHS) and "# Figure" not in text


def test_with_an_abstract_the_title_page_before_it_stays_out():
    """The new rule only applies without an abstract: the real row (abstract annotated) still
    starts its body at the abstract, not at a paragraph of the title page."""
    row = json.loads(REAL_2023.read_text(encoding="utf-8").splitlines()[0])
    text = s2orc_document(row).text
    assert "\n# Abstract\n" in text and "Allen Institute for AI" not in text


def test_2023_and_v2_shapes_agree_without_an_abstract():
    """The same paper with no abstract annotation, as a 2023 row and as an s2orc_v2 row (whose
    body marks its start at offset 0), gives the same text: both keep the paragraphs that come
    before the first header."""
    row = json.loads(REAL_2023.read_text(encoding="utf-8").splitlines()[0])
    ann = row["content"]["annotations"]
    ann["abstract"] = None
    old = s2orc_document(row)
    new = s2orc_document(v2_from_2023(row))
    assert new.text == old.text
    assert "CiteSee augments inline citations to known papers" in old.text.split("# ")[0]


# -- publication types ------------------------------------------------------------------------

@pytest.mark.parametrize("s2,medline", [
    (["JournalArticle", "Review"], ["Journal Article", "Review"]),
    (["MetaAnalysis"], ["Meta-Analysis"]),
    (["ClinicalTrial", "JournalArticle"], ["Clinical Trial", "Journal Article"]),
    (["CaseReport"], ["Case Reports"]),
    (["LettersAndComments"], ["Letter"]),
    (["Editorial", "News"], ["Editorial", "News"]),
    (["Conference", "Dataset", "Book"], ["Congress", "Dataset", "Book"]),
    (["Study", "BookSection"], ["Study", "BookSection"]),  # no MEDLINE counterpart: unchanged
    (["Review", "Review"], ["Review"]),
    (["Meta-Analysis"], ["Meta-Analysis"]),  # already MEDLINE's name (an older index)
])
def test_s2_publication_types_get_medline_names(s2, medline):
    assert medline_publication_types(s2) == medline


def test_s2_papers_get_their_upsampling_weight():
    row = {"corpusid": 5, "externalids": {"PubMed": "77"}, "title": "T",
           "publicationtypes": ["MetaAnalysis", "JournalArticle"]}
    meta = paper_meta(row)
    assert meta["publication_types"] == ["Meta-Analysis", "Journal Article"]
    assert meta["s2_publication_types"] == ["MetaAnalysis", "JournalArticle"]
    stage = Upsample({"papers": {"publication_types": {"Meta-Analysis": 1, "Review": 0.5}}})
    doc = Document(id="pmid:77", source="papers", text="x", meta=meta)
    assert stage.factor(doc)[0] == 1.0
    unmapped = Document(id="pmid:78", source="papers", text="x",
                        meta={"publication_types": ["MetaAnalysis"]})
    assert Upsample({"papers": {"publication_types": {"Meta-Analysis": 1}}}).factor(unmapped)[0] == 0.0


def test_an_older_papers_index_with_s2_names_is_mapped_at_join():
    row = _erratum(None)
    doc = s2orc_document(row, {"corpusid": "7", "publication_types": ["CaseReport"]})
    assert doc.meta["publication_types"] == ["Case Reports"]


def test_publication_types_as_a_bare_string_are_not_split_into_letters():
    meta = paper_meta({"corpusid": 1, "publicationtypes": "Review"})
    assert meta["publication_types"] == ["Review"]
