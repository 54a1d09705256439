"""`gap-replay download --dry-run`: which route each source takes and what it will cost.

The estimates are a linear model over the figures in FIGURES, kept here and nowhere else, so
a new benchmark changes them in one place. They are orders of magnitude for planning, not
promises: the wall time of a live run is bound by the sites' politeness limits (requests per
second per host), the CPU time by the measured per-core throughput of the shared stages.
"""

from __future__ import annotations

from dataclasses import dataclass

from gap_replay.recipe import Recipe


@dataclass(frozen=True)
class Figures:
    documents: int               # documents the route fetches for the whole source
    tokens: int                  # their train + validation tokens
    requests: int                # requests to fetch them all (listings and files included)
    requests_per_second: float   # the route's politeness default, per host
    hosts: int                   # hosts it fetches from side by side (bounds --workers)
    parse_docs_per_second: float  # per-core parse/format throughput of the route's records
    bytes_per_token: float       # raw/ + clean/ bytes on disk per token
    budget_driven: bool = False  # stops at the budget (replay); the others fetch the whole source


# Sources of the figures (2026-12-05):
# * documents and tokens: the paper's corpus, README "What it builds" (train + validation).
# * requests and rates: the routes' defaults in code (guideline sites 1 request/s per host,
#   16 hosts; S2 API 1 request per 3 s, pre-signed files unpaced, assumed ~30 files per
#   dataset and a few API calls (not measured); NCBI file server 3/s; PMC
#   Cloud bucket 10/s, 2 requests per article version: metadata JSON + JATS XML; RedPajama
#   1/s per host). Guidelines: one request per article plus listings (docs/guidelines.md
#   "Measured", `scripts/bench_guidelines.py`: WikiDoc's ~33K pages take ~9 h at 1/s).
#   NCBI: the 2025 PubMed baseline has 1,274 MEDLINE files (+ ~1,500 daily updates), each
#   fetched with its .md5 (2 requests). PMC Cloud: at least 2 requests per open-access paper.
#   RedPajama: the URL lists plus the chosen subsets' files read for the budget, with resumes
#   (~200: an estimate, not measured; `scripts/bench_replay.py` read 52 of 64 files of a
#   generated site; docs/replay.md).
# * parse throughput per core: S2ORC formatting 300 docs/s and JATS parsing 114 articles/s
#   (`scripts/bench_pubmed.py`, docs/pubmed.md), guideline extraction 44 pages/s under load
#   (`scripts/bench_guidelines.py`), replay sampling 2,400 documents/s (`scripts/bench_replay.py`),
#   abstracts ~2,000 records/s (`run_ingest("medline", ...)` on
#   tests/fixtures/pubmed/medline/pubmed20n1016.xml.gz: 522 records in 0.24 s CPU, 2026-12-05;
#   used for the S2 abstracts too, whose JSON lines are cheaper to read).
# * bytes per token: raw/ + clean/ of `gap-replay download --sample` (measured 2026-12-05:
#   abstracts 2.1+2.1, guidelines 6.5+6.3, papers 1.2+1.2, replay 6.4+6.4 bytes per token).
FIGURES: dict[tuple[str, str], Figures] = {
    ("guidelines", "sites"): Figures(46_469, 113_000_000, 50_000, 1.0, 16, 44, 12.8),
    ("abstracts", "s2"): Figures(16_100_000, 5_650_000_000, 80, 1 / 3, 1, 2_000, 4.2),
    ("abstracts", "ncbi"): Figures(16_100_000, 5_650_000_000, 5_600, 3.0, 1, 2_000, 4.2),
    ("papers", "s2"): Figures(4_900_000, 41_930_000_000, 80, 1 / 3, 1, 300, 2.4),
    ("papers", "ncbi"): Figures(4_900_000, 41_930_000_000, 9_800_000, 10.0, 1, 114, 2.4),
    ("replay", "url-lists"): Figures(494_000, 420_000_000, 200, 1.0, 3, 2_400, 12.8, True),
    ("replay", "hub"): Figures(494_000, 420_000_000, 200, 1.0, 3, 2_400, 12.8, True),
}
# The shared stages per core: clean + filter 4,536 docs/s (`scripts/bench_core.py`), near-dedup
# 1,467 docs/s (`scripts/bench_near_dedup.py`), decontamination 3,089 docs/s
# (`scripts/bench_decontaminate.py`): README "Performance".
PROCESS_DOCS_PER_SECOND = 1 / (1 / 4_536 + 1 / 1_467)
DECONTAMINATE_DOCS_PER_SECOND = 3_089
# Output shards (jsonl.gz of token ids) per mixed token, measured on the sample run.
SHARD_BYTES_PER_TOKEN = 1.3
# The whole sample run (`time gap-replay download --sample`, 2026-12-05, 2-core VM): 10.7 s, 1.4 MB.
SAMPLE_SECONDS, SAMPLE_BYTES = 10.7, 1_441_102


def routes(recipe: Recipe, sources: list[str], sample: bool = False, base_url: str | None = None,
           options: dict | None = None) -> dict[str, str]:
    """The route each source will take, decided as the acquirers decide it (`options` as
    passed to them: `pubmed_route`, `api_key_file`)."""
    from gap_replay.sources import AcquireContext
    from gap_replay.sources.pubmed.acquire import _route as pubmed_route

    out = {}
    for source in sources:
        if sample:
            out[source] = "sample"
        elif source in ("abstracts", "papers"):
            ctx = AcquireContext(output="", recipe=recipe.data, base_url=base_url,
                                 options=dict(options or {}))
            try:
                out[source] = pubmed_route(ctx)[0]
            except (OSError, RuntimeError, ValueError):  # a key file that cannot be read: the
                out[source] = "s2"  # S2 route was meant; the credentials check names the file
        elif source == "replay":
            out[source] = "hub" if (recipe.section("replay") or {}).get("hub") else "url-lists"
        else:
            out[source] = "sites"
    return out


@dataclass
class Row:
    source: str
    route: str
    budget: int
    requests: int | None
    disk: float
    seconds: float


def estimate(recipe: Recipe, routes_by_source: dict[str, str], workers: int = 1,
             decontaminate: bool = False) -> list[Row]:
    rows = []
    for source, route in routes_by_source.items():
        budget = recipe.target_tokens(source)
        parts = ("s2", "ncbi") if route == "both" else (route,)
        figures = [FIGURES[(source, p)] for p in parts if (source, p) in FIGURES]
        if not figures:  # the sample, or a route without figures
            rows.append(Row(source, route, budget, None, 0.0, 0.0))
            continue
        requests = disk = seconds = 0.0
        for f in figures:
            share = min(1.0, budget / f.tokens) if f.budget_driven else 1.0
            documents, tokens = f.documents * share, f.tokens * share
            requests += f.requests * share
            fetch = f.requests * share / (f.requests_per_second * min(workers, f.hosts))
            per_doc = 1 / f.parse_docs_per_second + 1 / PROCESS_DOCS_PER_SECOND + (
                1 / DECONTAMINATE_DOCS_PER_SECOND if decontaminate else 0)
            seconds += max(fetch, documents * per_doc / workers)
            disk += tokens * f.bytes_per_token
        disk += budget * SHARD_BYTES_PER_TOKEN
        rows.append(Row(source, route, budget, int(requests), disk, seconds))
    return rows


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _size(n: float) -> str:
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{n / 1e3:,.1f} KB"


def render(rows: list[Row], free: int | None, sample: bool = False) -> str:
    """The plan as a table, then the disk need against the free space."""
    table = [("source", "route", "budget (tokens)", "requests", "disk", "time")]
    for r in rows:
        table.append((r.source, r.route, f"{r.budget:,}",
                      "local" if r.requests is None else f"~{r.requests:,}",
                      "-" if r.requests is None else f"~{_size(r.disk)}",
                      "-" if r.requests is None else f"~{_duration(r.seconds)}"))
    need = SAMPLE_BYTES if sample else sum(r.disk for r in rows)
    seconds = SAMPLE_SECONDS if sample else sum(r.seconds for r in rows)  # sources run in turn
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))
             for row in table]
    what = "the bundled sample on 127.0.0.1, as measured" if sample else "estimates from measured throughput"
    lines.append(f"total: ~{_size(need)} disk, ~{_duration(seconds)} ({what})")
    if any(r.route in ("s2", "both", "url-lists", "hub") for r in rows):
        lines.append("note: times exclude transferring large files (the S2 release's, RedPajama's); "
                     "that is bound by your bandwidth")
    if free is None:
        lines.append("free space: unknown")
    else:
        verdict = "enough" if free >= need else "NOT enough"
        lines.append(f"free space: {_size(free)} ({verdict} for ~{_size(need)})")
    return "\n".join(lines)
