#!/usr/bin/env python
"""Write the pinned S2ORC outputs (tests/fixtures/pubmed/golden/s2orc/) from the current formatter.

    PYTHONPATH=src python scripts/make_s2orc_golden.py

Run it only when a formatting change is intended (and review the diff): the golden test exists
so that speed work cannot change a byte of the output.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from s2orc_golden_cases import GOLDEN, cases, golden_doc_json  # noqa: E402

from gap_replay.sources.pubmed.s2records import s2orc_document  # noqa: E402


def main() -> None:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name, row, paper in cases():
        doc = s2orc_document(row, paper)
        (GOLDEN / f"{name}.txt").write_text(doc.text, encoding="utf-8")
        (GOLDEN / f"{name}.doc.json").write_bytes(golden_doc_json(doc, row, paper))
        print(name, len(doc.text))


if __name__ == "__main__":
    main()
