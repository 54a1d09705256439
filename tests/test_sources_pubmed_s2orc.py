"""The S2ORC formatter's output is pinned byte for byte on every sample row and its variants.

The expected files were written before the formatter was optimised; see tests/s2orc_golden_cases.py.
"""

from __future__ import annotations

import pytest

from gap_replay.sources.pubmed.s2orc import S2orcFormatError, format_s2orc
from gap_replay.sources.pubmed.s2records import s2orc_document
from s2orc_golden_cases import GOLDEN, _decoded, _real, _with, cases, golden_doc_json

CASES = list(cases())


def test_every_case_has_a_golden_file():
    assert len(CASES) >= 14
    assert sorted(p.name for p in GOLDEN.glob("*.txt")) == sorted(f"{n}.txt" for n, _, _ in CASES)


@pytest.mark.parametrize("name,row,paper", CASES, ids=[c[0] for c in CASES])
def test_formatted_output_is_unchanged(name, row, paper):
    doc = s2orc_document(row, paper)
    assert doc.text == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    assert golden_doc_json(doc, row, paper) == (GOLDEN / f"{name}.doc.json").read_bytes()


def test_variants_differ_from_the_real_row():
    """The variants really reach other paths: most of them change the output."""
    real = (GOLDEN / "real.txt").read_text(encoding="utf-8")
    changed = [p.name for p in GOLDEN.glob("variant_*.txt") if p.read_text(encoding="utf-8") != real]
    assert len(changed) >= 6, changed


def test_a_malformed_bibliography_title_fails_the_row_even_when_no_citation_needs_it():
    """Bibliography tokens are made only for cited entries, but the title and author spans are
    read whenever the row cites anything: a broken annotation is reported, not skipped."""
    row = _real()
    ann = _decoded(row)
    for ref in ann["bibref"]:
        ref["attributes"] = {"ref_id": "no-such-entry"}
    fine = _with(row, ann)
    format_s2orc(fine)  # the row formats while the annotation is intact
    fine["content"]["annotations"]["bibtitle"] = "[{broken"
    with pytest.raises(S2orcFormatError, match="not valid JSON"):
        format_s2orc(fine)
