#!/usr/bin/env python
"""Benchmark the PubMed parsers: S2ORC formatting, JATS and MEDLINE throughput, memory vs size.

    PYTHONPATH=src python scripts/bench_pubmed.py [--rows 200] [--rounds 9] [--skip-memory]

* S2ORC formatting (pure Python), docs/s and MB/s of JSON rows on one core (CPU time), on the
  real S2ORC v2 sample row replicated, next to `original_style`, a re-implementation of the
  original per-character labelling algorithm (docs/sources.md §5.5) run on the same rows and
  machine, for an honest ratio; the two alternate in short rounds so a shared machine's
  changing load hits both alike. The original research code reported about 57 docs/s.
* JATS: articles/s and MB/s over the three real JATS samples.
* Memory: peak RSS of a fresh process that ingests an input at 1x and 10x its size (S2ORC
  JSON lines, a JATS pmc-articleset, MEDLINE XML); flat memory means the two peaks are close.
"""

from __future__ import annotations

import argparse
import gzip
import io
import itertools
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "pubmed"
sys.path.insert(0, str(ROOT / "src"))

from gap_replay.sources.pubmed import jats  # noqa: E402
from gap_replay.sources.pubmed.s2orc import format_s2orc  # noqa: E402


# -- the original algorithm, re-implemented from its description (baseline only) ---------------

def original_style(record: dict) -> str:
    """Per-character labels, later annotation types overwrite earlier ones, then runs of equal
    labels are grouped and emitted (docs/sources.md §5.5). Used only as the benchmark baseline."""
    content = record["content"]
    text = content["text"]
    ann = {k: (json.loads(v) if v else []) for k, v in content["annotations"].items()}
    labels = ["T"] * len(text)

    def mark(spans, label_of):
        for s in spans:
            lab = label_of(s)
            for i in range(int(s["start"]), min(int(s["end"]), len(text))):
                labels[i] = lab

    for key in ("authorfirstname", "authorlastname", "authoraffiliation"):
        mark(ann.get(key, []), lambda s: "RM")
    mark(ann.get("bibentry", []), lambda s: "BIB")
    mark(ann.get("formula", []), lambda s: "FML")
    mark(ann.get("sectionheader", []), lambda s: "SEC")
    for key in ("bibref", "figureref", "tableref"):
        mark(ann.get(key, []), lambda s: (s.get("attributes") or {}).get("ref_id", "b?"))
    mark(ann.get("figure", []), lambda s: (s.get("attributes") or {}).get("id", "fig_x").upper())
    starts = [s["start"] for s in ann.get("abstract", [])[:1] + ann.get("sectionheader", [])[:1]]
    if starts:
        for i in range(min(starts)):
            if labels[i] == "T":
                labels[i] = "P"
    bib_entries = {(s.get("attributes") or {}).get("id"): s for s in ann.get("bibentry", [])}

    def inside(key, outer):
        for s in ann.get(key, []):
            if s["start"] >= outer["start"] and s["end"] <= outer["end"]:
                return text[s["start"]:s["end"]]
        return None

    out, cache, at_figures, pos = [], {}, False, 0
    for label, group in itertools.groupby(labels):
        n = len(list(group))
        chunk = text[pos:pos + n].strip().replace("•", "- ")
        pos += n
        if not chunk:
            continue
        if label == "T" and not at_figures:
            out.append(chunk)
        elif label == "SEC":
            head = chunk[0].upper() + chunk[1:].lower()
            main = len(head.split()) <= 3 and any(w in head.lower() for w in ("introduction", "method", "result", "discussion", "conclusion"))
            out.append(("\n# " if main else "\n## ") + head + "\n")
        elif label.startswith("b") and label != "b?":
            if label not in cache:
                entry = bib_entries.get(label)
                title = inside("bibtitle", entry) if entry else None
                last = inside("bibauthorlastname", entry) if entry else None
                cache[label] = f" [bib_ref] {' '.join((title or '').split()[:12])}, {last} [/bib_ref] " if title and last else ""
            out.append(cache[label])
        elif label.startswith(("FIG_", "TAB_")):
            at_figures = True
        elif label == "FML":
            out.append(f"\n[formula] {chunk} [/formula]\n")
        elif label.startswith(("fig_", "tab_")):
            out.append(f" [fig_ref] {label} [/fig_ref] ")
    result = "".join(out)
    result = re.sub(r"\n+", "\n", result)
    return re.sub(r" +", " ", result)


def _rate(fn, items, min_seconds: float = 3.0) -> float:
    """Items per CPU-second, repeating the list until at least `min_seconds` of CPU time."""
    done, start = 0, time.process_time()
    while True:
        for item in items:
            fn(item)
        done += len(items)
        spent = time.process_time() - start
        if spent >= min_seconds:
            return done / spent


def bench_s2orc(rows: int, rounds: int = 9) -> dict:
    """Ours and `original_style` measured in alternating short rounds, so both see the same
    machine load (on a shared machine the load moves between two long back-to-back runs);
    the reported numbers are medians over the rounds, the speed-up the median per-round ratio."""
    line = (FIX / "s2orc/s2orc-sample.line3.jsonl").read_bytes().splitlines()[0]
    lines = [line] * rows
    ours, base, ratios = [], [], []
    for _ in range(rounds):
        ours.append(_rate(lambda l: format_s2orc(orjson.loads(l)), lines, min_seconds=0.5))
        base.append(_rate(lambda l: original_style(orjson.loads(l)), lines[: max(2, rows // 20)],
                          min_seconds=0.5))
        ratios.append(ours[-1] / base[-1])
    ours_rate, base_rate = statistics.median(ours), statistics.median(base)
    return {"s2orc_docs_per_s_per_core": round(ours_rate, 1),
            # the JSON rows read (`orjson.loads` is part of the timed work)
            "s2orc_mb_per_s_per_core": round(ours_rate * len(line) / 1e6, 1),
            "original_style_docs_per_s_per_core": round(base_rate, 1),
            "speedup_vs_original_style": round(statistics.median(ratios), 2),
            "speedup_vs_original_style_range": [round(min(ratios), 2), round(max(ratios), 2)],
            "speedup_vs_reported_57": round(ours_rate / 57, 2),
            "rounds": rounds,
            "chars_per_doc": len(orjson.loads(line)["content"]["text"]),
            "bytes_per_row": len(line)}


def bench_jats() -> dict:
    blobs = [p.read_bytes() for p in sorted((FIX / "pmc_jats").iterdir())]

    def parse(blob: bytes) -> None:
        for item in jats._guarded(io.BytesIO(blob), "bench"):
            assert not isinstance(item, Exception), item

    rate = _rate(parse, blobs)
    mean_mb = sum(len(b) for b in blobs) / len(blobs) / 1e6
    return {"jats_articles_per_s_per_core": round(rate, 1),
            "jats_mb_per_s_per_core": round(rate * mean_mb, 2)}


# -- memory: a fresh process per measurement ---------------------------------------------------

_CHILD = r"""
import resource, sys
sys.path.insert(0, {src!r})
from gap_replay.sources.ingest import run_ingest
report = run_ingest({fmt!r}, [{path!r}], {out!r}, all_records=True)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, report.records_in)
"""


def _peak_rss(fmt: str, path: Path, out: Path) -> tuple[int, int]:
    code = _CHILD.format(src=str(ROOT / "src"), fmt=fmt, path=str(path), out=str(out))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rss, n = res.stdout.split()
    return int(rss) // 1024, int(n)


def _make_inputs(tmp: Path, factor: int) -> dict[str, Path]:
    line = (FIX / "s2orc/s2orc-sample.line3.jsonl").read_bytes().splitlines()[0]
    row = orjson.loads(line)
    s2 = tmp / f"s2orc-{factor}x.jsonl.gz"
    with gzip.open(s2, "wb") as fh:
        for i in range(20 * factor):
            row["corpusid"] = 1_000_000 + i
            fh.write(orjson.dumps(row) + b"\n")
    articles = [p.read_bytes() for p in sorted((FIX / "pmc_jats").iterdir())]
    bodies = [re.sub(rb"^(<\?xml[^>]*\?>)?\s*(<!DOCTYPE[^>]*>)?", b"", a).strip() for a in articles]
    js = tmp / f"articleset-{factor}x.xml"
    with open(js, "wb") as fh:
        fh.write(b'<?xml version="1.0"?>\n<pmc-articleset>')
        for i in range(10 * factor):
            body = bodies[i % len(bodies)]
            fh.write(re.sub(rb'pub-id-type="doi">[^<]*<', f'pub-id-type="doi">10.9/{i}<'.encode(), body, count=1))
        fh.write(b"</pmc-articleset>")
    med = gzip.decompress((FIX / "medline/pubmed20n1016.xml.gz").read_bytes()).decode()
    head, rest = med.split("<PubmedArticleSet>", 1)
    records = rest.split("<DeleteCitation>")[0]
    ml = tmp / f"medline-{factor}x.xml.gz"
    with gzip.open(ml, "wt", encoding="utf-8") as fh:
        fh.write(head + "<PubmedArticleSet>")
        for i in range(20 * factor):
            fh.write(re.sub(r'<PMID Version="1">(\d+)', lambda m: f'<PMID Version="1">{int(m.group(1)) + i * 10**8}', records))
        fh.write("</PubmedArticleSet>\n")
    return {"s2orc": s2, "jats": js, "medline": ml}


def bench_memory() -> dict:
    out: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for factor in (1, 10):
            for fmt, path in _make_inputs(tmp, factor).items():
                rss, n = _peak_rss(fmt, path, tmp / f"out-{fmt}-{factor}")
                out[f"{fmt}_{factor}x"] = {"input_mb": round(path.stat().st_size / 1e6, 1),
                                           "records": n, "peak_rss_mb": rss}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=9,
                        help="alternating rounds of ours and the baseline (S2ORC)")
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    results = {"s2orc": bench_s2orc(args.rows, args.rounds), "jats": bench_jats()}
    if not args.skip_memory:
        results["memory"] = bench_memory()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
