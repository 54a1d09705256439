#!/usr/bin/env python
"""Benchmark PDF text extraction (pdf.extract_pdf) on a generated long guideline PDF.

    PYTHONPATH=src python scripts/bench_pdf.py [--pages 60] [--repeat 3]

Builds one multi-page PDF with the fixture generator's layout (reportlab, invariant mode),
extracts it `--repeat` times and prints pages/s and KB/s. Numbers go in docs/guidelines.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from make_guideline_pdfs import DOCS, render  # noqa: E402

from gap_replay.sources.guidelines.pdf import extract_pdf  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pages", type=int, default=60, help="approximate page count")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    base = DOCS["who/server/api/core/bitstreams/4f0c6a1e-8b7d-4c2a-9e51-3d2b7a6c9f10/content"]
    lines = list(base["lines"])
    body = [line for line in lines if line != "PAGE"]
    doc = dict(base, lines=[*lines, *(["PAGE", *body[1:]] * max(1, args.pages // 3))])
    data = render(doc)
    best = float("inf")
    result = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        result = extract_pdf(data, "https://example.org/bench.pdf")
        best = min(best, time.perf_counter() - start)
    assert result is not None
    print(f"pdf: {len(data) / 1024:.0f} KB, {result.pages} pages, {len(result.text):,} characters of text")
    print(f"extract_pdf: best of {args.repeat}: {best:.3f} s = {result.pages / best:.1f} pages/s, "
          f"{len(data) / 1024 / best:.0f} KB/s")


if __name__ == "__main__":
    main()
