"""The S2ORC formatter's output is pinned byte for byte on every sample row and its variants.

The expected files were written before the formatter was optimised; see tests/s2orc_golden_cases.py.
"""

from __future__ import annotations

import pytest

import s2orc_golden_cases
from gap_replay.sources.pubmed import s2orc, s2records
from gap_replay.sources.pubmed.s2records import s2orc_document
from s2orc_golden_cases import GOLDEN, cases, golden_doc_json

CASES = list(cases())
# the Python formatter, and its compiled copy when the install built one (hatch_build.py)
_COMPILED = s2orc.load_compiled()
IMPLEMENTATIONS = {"python": s2orc._format_s2orc,
                   **({"compiled": _COMPILED._format_s2orc} if _COMPILED else {})}


def test_every_case_has_a_golden_file():
    assert len(CASES) >= 14
    assert sorted(p.name for p in GOLDEN.glob("*.txt")) == sorted(f"{n}.txt" for n, _, _ in CASES)


@pytest.mark.parametrize("implementation", sorted(IMPLEMENTATIONS))
@pytest.mark.parametrize("name,row,paper", CASES, ids=[c[0] for c in CASES])
def test_formatted_output_is_unchanged(name, row, paper, implementation, monkeypatch):
    for module in (s2records, s2orc_golden_cases):
        monkeypatch.setattr(module, "format_s2orc", IMPLEMENTATIONS[implementation])
    doc = s2orc_document(row, paper)
    assert doc.text == (GOLDEN / f"{name}.txt").read_text(encoding="utf-8")
    assert golden_doc_json(doc, row, paper) == (GOLDEN / f"{name}.doc.json").read_bytes()


def test_variants_differ_from_the_real_row():
    """The variants really reach other paths: most of them change the output."""
    real = (GOLDEN / "real.txt").read_text(encoding="utf-8")
    changed = [p.name for p in GOLDEN.glob("variant_*.txt") if p.read_text(encoding="utf-8") != real]
    assert len(changed) >= 6, changed
