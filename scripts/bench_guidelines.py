"""Benchmark the guideline engine on the bundled fixture sites (no network).

Prints, per source, the records and seconds of a full scrape at --rate 0 from a local
SiteServer, then the extraction + cleaning throughput on one article page repeated N times:

    PYTHONPATH=src python scripts/bench_guidelines.py [--repeat 300]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from gap_replay.resources import sample_sites_dir
from gap_replay.sample.server import SiteServer
from gap_replay.sources.guidelines.site_rules import apply_site_rules
from gap_replay.sources.guidelines.extract import extract_page
from gap_replay.sources.guidelines.scrape import ScrapeOptions, scrape_source
from gap_replay.sources.guidelines.spec import get_spec, load_specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=300)
    args = parser.parse_args()
    specs = load_specs()
    with tempfile.TemporaryDirectory() as tmp, SiteServer(sample_sites_dir()) as server:
        print(f"{'source':8} {'records':>7} {'requests':>8} {'seconds':>8}")
        for tag, spec in specs.items():
            if not (sample_sites_dir() / tag).is_dir():
                continue
            s = scrape_source(spec, Path(tmp) / tag, ScrapeOptions(base_url=server.base_url(tag), rate=0,
                                                                   progress=False))
            print(f"{tag:8} {s.records:7d} {s.requests:8d} {s.seconds:8.2f}")
    spec = get_spec("idsa")
    page = (sample_sites_dir() / "idsa/practice-guideline/community-acquired-pneumonia-in-adults/index.html").read_bytes()
    started = time.perf_counter()
    for _ in range(args.repeat):
        extracted = extract_page(page, "https://www.idsociety.org/x", spec.article)
        apply_site_rules(extracted.text, extracted.title, spec.clean)
    elapsed = time.perf_counter() - started
    print(f"extract+site rules: {args.repeat / elapsed:.0f} pages/s ({len(page)} bytes/page, {elapsed:.2f}s)")


if __name__ == "__main__":
    main()
